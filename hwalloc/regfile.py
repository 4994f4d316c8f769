"""The register file: SPEC §6's registers on the strobe bus, built from the
register map of :mod:`hwalloc.regs`.

It sees addresses and strobes only; what happens to the allocator is asked of
the core through a request port (register ALLOC and FREE) and learnt from the
core's responses (counters, the error log, interrupts). It never looks inside
the pipeline.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import __version__
from .axil import strobe_signature
from ._rtl import any_of, ge_chunks, or_all, predecode
from .model import Err, Op
from .regs import HANDLE_FIELDS, IRQ_BITS, LOW_WATER_BITS, POOL_BASE, constant_value, register_map

__all__ = ["RegisterFile", "REGISTER_EXTRA"]

#: Cycles a register ALLOC (FREE) adds to L from its AR (AW and W) handshake to
#: its R (B) handshake, with a master that never stalls: the adapter's request
#: register, the decode stages here (three for a read, two for a write), the
#: request to the core, and the response register. A FREE takes one less.
REGISTER_EXTRA = 6


def _field(fields, name):
    return next(f for f in fields if f.name == name)


class RegisterFile(wiring.Component):
    """Registers, counters, error log and interrupt of one core.

    Members
    -------
    bus : the register strobe bus (:func:`hwalloc.axil.strobe_signature`).
    req_alloc, req_free : pulses: a register ALLOC / FREE wants the pipeline;
        the request's fields are held in ``req_*`` until the next request.
    rsp_* : the core's responses (every source), at the response stage.
    busy, ready : core status for STATUS.
    irq : the interrupt line.
    """

    def __init__(self, config):
        self._config = config
        self._map = register_map(config)
        P, A, T, U = config.pool_bits, config.addr_width, config.tag_bits, config.user_bits
        super().__init__(wiring.Signature({
            "bus": Out(strobe_signature()),
            "req_alloc": Out(1), "req_alloc_pool": Out(P), "req_alloc_size": Out(config.size_bits),
            "req_free": Out(1), "req_free_addr": Out(A), "req_free_tag": Out(max(T, 1)),
            "req_free_oor": Out(1), "req_free_pool": Out(P),
            "req_flush": Out(1), "req_flush_pool": Out(P),
            "rsp_grant_valid": In(1), "rsp_grant_ok": In(1), "rsp_grant_err": In(4),
            "rsp_grant_pool": In(P), "rsp_grant_slot": In(config.slot_bits),
            "rsp_grant_tag": In(max(T, 1)), "rsp_grant_user": In(U), "rsp_grant_src": In(1),
            "rsp_grant_size": In(min(config.size_bits, 32)), "rsp_grant_overwrite": In(1),
            "rsp_freed_valid": In(1), "rsp_freed_ok": In(1), "rsp_freed_err": In(4),
            "rsp_freed_pool": In(P), "rsp_freed_in_pool": In(1), "rsp_freed_user": In(U),
            "rsp_freed_src": In(1), "rsp_freed_addr": In(min(A, 32)), "rsp_freed_tag": In(max(T, 1)),
            "rsp_flushed_valid": In(1), "rsp_flushed_ok": In(1), "rsp_flushed_err": In(4),
            "rsp_flushed_pool": In(P), "rsp_flushed_user": In(U), "rsp_flushed_src": In(1),
            "busy": In(1), "ready": In(1),
            "irq": Out(1),
        }))

        # the interrupt's state, for the formal harness (hwalloc.formal): the
        # causes, the events that set them and the write-1-to-clear, each cycle
        self.irq_status, self.irq_set, self.irq_clear = (Signal(IRQ_BITS) for _ in range(3))

    @property
    def register_map(self):
        return self._map

    def elaborate(self, platform):
        m = Module()
        cfg, bus = self._config, self.bus
        # Every step below is registered and small: a request is decoded in one
        # cycle and carried out in the next; a response from the core is turned
        # into per-pool flags and log entries in one cycle and counted, logged
        # and raised in the next (SPEC 6 allows L+4). No path is more than a few
        # LUTs deep; see `hwalloc synth`.

        # ---- cycle counter; the core's status, registered -------------------------
        cycle = Signal(32)
        busy, ready = Signal(), Signal()
        m.d.sync += [cycle.eq(cycle + 1), busy.eq(self.busy), ready.eq(self.ready)]

        # ---- responses, stage E1: what each one means, as registered flags --------
        free_err = self.rsp_freed_valid & (self.rsp_freed_err != Err.OK)
        flush_err = self.rsp_flushed_valid & (self.rsp_flushed_err != Err.OK)
        alloc_err = self.rsp_grant_valid & ~self.rsp_grant_ok & (self.rsp_grant_err != Err.EXHAUSTED)
        exhausted = self.rsp_grant_valid & (self.rsp_grant_err == Err.EXHAUSTED)
        entry_bits = 4 + 3 + 2 + 8 + 8 + 32 + 32 + 32

        def entry(code, op, src, pool, tag, info, user, stamp):
            # code 4 | op 3 | source 2 | pool 8 | tag 8 | address or size 32 | user 32 | cycle 32
            return Cat(code, Const(op, 3), src, Const(0, 1), pool, Const(0, 8 - len(pool)), tag,
                       Const(0, 8 - len(tag)), info, Const(0, 32 - len(info)), user,
                       Const(0, 32 - len(user)), stamp)

        stamp = (cycle - cfg.latency)[:32]      # CYCLE at the request's handshake
        free_entry = entry(self.rsp_freed_err, Op.FREE, self.rsp_freed_src,
                           Mux(self.rsp_freed_in_pool, self.rsp_freed_pool, 0xFF)[:8],
                           self.rsp_freed_tag, self.rsp_freed_addr, self.rsp_freed_user, stamp)
        flush_entry = entry(self.rsp_flushed_err, Op.FLUSH, self.rsp_flushed_src, self.rsp_flushed_pool,
                            Const(0, 1), Const(0, 1), self.rsp_flushed_user, stamp)
        alloc_entry = entry(self.rsp_grant_err, Op.ALLOC, self.rsp_grant_src,
                            self.rsp_grant_pool, Const(0, 1), self.rsp_grant_size,
                            self.rsp_grant_user, stamp)
        # Within a cycle the free was accepted first, then the flush, then the
        # alloc: their errors are logged in that order, packed from ``new[0]``.
        new = [Signal(entry_bits, name=f"e1_new{k}") for k in range(3)]
        n_new, e1_exhausted = Signal(2), Signal()
        m.d.sync += [
            new[0].eq(Mux(free_err, free_entry, Mux(flush_err, flush_entry, alloc_entry))),
            new[1].eq(Mux(free_err & flush_err, flush_entry, alloc_entry)),
            new[2].eq(alloc_entry),
            n_new.eq(free_err + flush_err + alloc_err),
            e1_exhausted.eq(exhausted),
        ]
        events = []
        for pool in cfg.pools:
            granted = self.rsp_grant_valid & self.rsp_grant_ok & (self.rsp_grant_pool == pool.index)
            freed = self.rsp_freed_valid & self.rsp_freed_ok & (self.rsp_freed_pool == pool.index)
            flushed = self.rsp_flushed_valid & self.rsp_flushed_ok & (self.rsp_flushed_pool == pool.index)
            ev = {name: Signal(name=f"{pool.name}_ev_{name}") for name in ("grant", "fail", "free", "flush")}
            m.d.sync += [ev["grant"].eq(granted), ev["free"].eq(freed), ev["flush"].eq(flushed),
                         ev["fail"].eq(exhausted & (self.rsp_grant_pool == pool.index))]
            # a freelist pool never overwrites
            ev["overwrite"] = Const(0)
            if pool.kind == "ring":
                ev["overwrite"] = Signal(name=f"{pool.name}_ev_overwrite")
                m.d.sync += ev["overwrite"].eq(granted & self.rsp_grant_overwrite)
            events.append(ev)

        # ---- commands from the write side (registered pulses, defined below) ------
        irq_bits = IRQ_BITS
        clear, pop, w1c = Signal(), Signal(), self.irq_clear

        # ---- error log, stage E2: four banks, so three errors can enter in one cycle
        # Entry i lives in bank i % 4, row i // 4 (of a ring of at least four
        # entries; ``space`` keeps at most ``depth`` of them): consecutive entries
        # never share a bank. ``room[k]`` says whether k entries fit, kept as
        # flags so that the decision of how many to keep is one LUT.
        depth = cfg.error_log_depth
        ring = max(depth, 4)
        ring_bits = ring.bit_length() - 1       # ring is a power of two
        rows = ring // 4
        # (at least two rows a bank: a one-row memory would have a zero-width address)
        banks = [Memory(shape=entry_bits, depth=max(rows, 2), init=[]) for _ in range(4)]
        for b, bank in enumerate(banks):
            m.submodules[f"log_bank{b}"] = bank
        bank_w = [bank.write_port() for bank in banks]
        bank_r = [bank.read_port() for bank in banks]

        def row(value):
            return value if rows > 1 else Const(0, 1)
        head, tail = Signal(ring_bits), Signal(ring_bits)
        # the tail's row and the next one (for banks behind the tail's bank)
        tail_row, tail_next_row = Signal(max(1, ring_bits - 2)), Signal(max(1, ring_bits - 2), init=1 % rows)
        space = Signal(range(depth + 1), init=depth)
        # space >= j for j = 1..6 as registers (thermometer): room[k] is ge[k]
        ge = {j: Signal(init=int(depth >= j), name=f"space_ge{j}") for j in range(1, 7)}
        room = [Const(1), ge[1], ge[2], ge[3]]
        err_count, err_dropped = Signal(32), Signal(32)
        n_kept, popped = Signal(2), Signal()
        n_dropped = Signal(2)                   # counted a cycle later, apart from the room decision
        empty = space[depth.bit_length() - 1]   # space == depth (a power of two): nothing logged
        m.d.comb += [
            n_kept.eq(Mux(room[3], n_new, Mux(room[2], Mux(n_new > 2, 2, n_new),
                                              Mux(room[1] & (n_new != 0), 1, 0)))),
            popped.eq(pop & ~empty),
        ]
        for b in range(4):
            # which of this cycle's entries lands in bank b: the (b - tail) % 4-th
            k = Signal(2, name=f"log_bank{b}_k")
            m.d.comb += k.eq(b - tail[:2])
            m.d.comb += [
                bank_w[b].addr.eq(row(Mux(b < tail[:2], tail_next_row, tail_row) if b < 3 else tail_row)),
                bank_w[b].data.eq(Mux(k == 0, new[0], Mux(k == 1, new[1], new[2]))),
                bank_w[b].en.eq(k < n_kept),
                bank_r[b].addr.eq(row(head[2:])), bank_r[b].en.eq(1),
            ]
        # space changes by popped - n_kept (-3..1); the flags of the new value are
        # flags of the old one (or, for ge[4..6], comparisons of it with small
        # constants), chosen by the change: the room flags that decide n_kept
        # come from registers only.
        def at_least_now(j):
            return Const(1) if j <= 0 else ge[j] if j <= 6 else space >= j
        with m.Switch(Cat(popped, n_kept)):
            for kept in range(4):
                for out in range(2):
                    with m.Case(out | kept << 1):
                        change = out - kept
                        m.d.sync += [ge[j].eq(at_least_now(j - change)) for j in range(1, 7)]
        new_tail = (tail + n_kept)[:ring_bits]
        crosses = (Cat(tail[:2], Const(0, 1)) + n_kept)[2]     # the tail moves to the next row
        m.d.sync += [
            space.eq(space + popped - n_kept),
            tail.eq(new_tail),
            err_count.eq(err_count + n_kept),
            n_dropped.eq(n_new - n_kept),
            err_dropped.eq(err_dropped + n_dropped),
        ]
        if rows > 1:
            with m.If(crosses):
                m.d.sync += [tail_row.eq(tail_next_row), tail_next_row.eq(tail_next_row + 1)]
        with m.If(popped):
            m.d.sync += head.eq(head + 1)
        with m.If(clear):
            m.d.sync += [err_count.eq(0), err_dropped.eq(0)]
        # The head as shown: the state two edges ago, valid bit and data alike
        # (the banks' read registers, then the one chosen, in a register of its
        # own so that the read decode sees registers only).
        head_valid, head_bank = Signal(), Signal(2)
        m.d.sync += [head_valid.eq(~empty), head_bank.eq(head[:2])]
        head_entry = Signal(entry_bits)
        m.d.sync += head_entry.eq(Mux(head_valid, Mux(head_bank[1], Mux(head_bank[0], bank_r[3].data,
                                                                             bank_r[2].data),
                                                      Mux(head_bank[0], bank_r[1].data, bank_r[0].data)), 0))
        code, op, src = head_entry[0:4], head_entry[4:7], head_entry[7:9]
        pool, tag = head_entry[9:17], head_entry[17:25]
        info, user, when = head_entry[25:57], head_entry[57:89], head_entry[89:121]
        # [7:0] tag, [15:8] pool, [23:20] code, [27:26] source, [30:28] op, [31] valid
        err_head0 = Cat(tag, pool, Const(0, 4), code, Const(0, 2), src, op, head_valid)

        # ---- interrupt ---------------------------------------------------------------
        irq_status, irq_set, irq_enable = self.irq_status, self.irq_set, Signal(irq_bits)
        low_water_hit = Signal()                # defined with the counters below
        m.d.comb += irq_set.eq(Cat(n_new != 0, e1_exhausted, n_kept != n_new,
                                   or_all(ev["overwrite"] for ev in events), low_water_hit))
        # set wins over clear: an event in the cycle of a W1C write is not lost
        m.d.sync += irq_status.eq((irq_status & ~w1c) | irq_set)
        # from registers only: no path from any input to the pin
        m.d.comb += self.irq.eq((irq_status & irq_enable).any())

        # ---- per-pool counters, stage E2 ---------------------------------------------
        counters, low_hits = [], []
        for pool, ev in zip(cfg.pools, events, strict=True):
            c = {name: Signal(32, name=f"{pool.name}_{name.lower()}")
                 for name in ("ALLOCS", "FAILS", "FREES", "FLUSHES")}
            if pool.kind == "ring":
                c["OVERWRITES"] = Signal(32, name=f"{pool.name}_overwrites")
            else:
                c["OVERWRITES"] = Const(0, 32)  # a freelist pool never overwrites
            # IN_USE and HIGH_WATER never pass SLOTS: as wide as that, no wider
            for name in ("IN_USE", "HIGH_WATER"):
                c[name] = Signal(range(pool.slots + 1), name=f"{pool.name}_{name.lower()}")
            in_use = c["IN_USE"]
            # LOW_WATER: a grant that leaves fewer than the threshold not held, i.e.
            # IN_USE > SLOTS - LOW_WATER after it (the grant is its cycle's last
            # request). The difference is kept in a register of its own, the
            # compare is registered, and the grant is delayed to meet it.
            c["LOW_WATER"] = Signal(LOW_WATER_BITS, name=f"{pool.name}_low_water")
            below = Signal(signed(LOW_WATER_BITS + 1), name=f"{pool.name}_lw_limit")
            short, granted_1, granted_2 = (Signal(name=f"{pool.name}_lw_{n}")
                                           for n in ("short", "granted_1", "granted_2"))
            m.d.sync += [below.eq(pool.slots - c["LOW_WATER"]), short.eq(in_use > below),
                         granted_1.eq(ev["grant"]), granted_2.eq(granted_1)]
            low_hits.append(granted_2 & short)
            # a grant that overwrote a held ring slot changes its holder only
            added = ev["grant"] & ~ev["overwrite"]
            step = Mux(added == ev["free"], 0, Mux(added, 1, Const(-1, len(in_use))))
            # a flush empties the pool after the free and before the alloc of its cycle
            m.d.sync += in_use.eq(Mux(ev["flush"], added, in_use + step))
            # The high-water mark follows IN_USE two cycles late, so that the compare
            # and the update are apart: ``grow`` (registered) says that the IN_USE
            # of a cycle ago, ``was``, is above the mark. While an update is pending
            # the mark is about to be ``was``, and IN_USE (which moves by one a
            # cycle) is above that exactly when its last step was up.
            was, grow, rose = (Signal.like(in_use, name=f"{pool.name}_in_use_was"),
                               Signal(name=f"{pool.name}_hw_grow"), Signal(name=f"{pool.name}_in_use_rose"))
            m.d.sync += [was.eq(in_use),
                         rose.eq(Mux(ev["flush"], added & ~any_of(in_use), added & ~ev["free"])),
                         grow.eq(~clear & Mux(grow, rose, in_use > c["HIGH_WATER"]))]
            with m.If(clear):
                m.d.sync += [c["HIGH_WATER"].eq(in_use), c["ALLOCS"].eq(0),
                             c["FAILS"].eq(0), c["FREES"].eq(0), c["FLUSHES"].eq(0)]
                if pool.kind == "ring":
                    m.d.sync += c["OVERWRITES"].eq(0)
            with m.Else():
                with m.If(grow):
                    m.d.sync += c["HIGH_WATER"].eq(was)
                m.d.sync += [c["ALLOCS"].eq(c["ALLOCS"] + ev["grant"]),
                             c["FAILS"].eq(c["FAILS"] + ev["fail"]),
                             c["FREES"].eq(c["FREES"] + ev["free"]),
                             c["FLUSHES"].eq(c["FLUSHES"] + ev["flush"])]
                if pool.kind == "ring":
                    m.d.sync += c["OVERWRITES"].eq(c["OVERWRITES"] + ev["overwrite"])
            counters.append(c)
        m.d.comb += low_water_hit.eq(or_all(low_hits))

        # ---- read, stages R1 and R2: decode ------------------------------------------
        # R1 splits the address into small one-hot groups; R2 turns them into one
        # select flag a register (an AND of four group bits: one LUT).
        values = {"STATUS": Cat(ready, busy), "IRQ_STATUS": irq_status,
                  "IRQ_ENABLE": irq_enable, "ERR_COUNT": err_count,
                  "ERR_DROPPED": err_dropped, "ERR_HEAD0": err_head0, "ERR_HEAD1": info,
                  "ERR_HEAD2": user, "ERR_HEAD3": when, "CYCLE": cycle}
        r_match = predecode(m, bus.r_addr, "r1")
        r1_valid, r2_valid, r2_alloc = Signal(), Signal(), Signal()
        r1_pool, r2_pool = Signal(cfg.pool_bits), Signal(cfg.pool_bits)
        # pool p's block is POOL_BASE / 64 + p
        m.d.sync += [r1_valid.eq(bus.r_req), r1_pool.eq(bus.r_addr[6:] - (POOL_BASE >> 6)),
                     r2_valid.eq(r1_valid), r2_pool.eq(r1_pool)]
        blocks = {}                             # 64-byte block -> [(select flag, value)]
        allocs = []
        for register in self._map:
            select = Signal(name=f"r2_sel_{register.name.lower()}")
            m.d.sync += select.eq(r_match(register.offset))
            if register.access == "RO_ALLOC":
                allocs.append(select)
                continue
            constant = constant_value(cfg, register, __version__)
            if register.access == "WO":
                value = Const(0, 32)            # reads as 0, OKAY
            elif constant is not None:
                value = Const(constant, 32)
            elif register.pool is not None:
                value = counters[register.pool][register.kind]
            else:
                value = values[register.name]
            blocks.setdefault(register.offset >> 6, []).append((select, value))
        m.d.comb += r2_alloc.eq(or_all(allocs))

        # ---- read, stage R3: the selected value within each block ---------------------
        r3_valid, r3_alloc = Signal(), Signal()
        r3_pool = Signal(cfg.pool_bits)
        r3_blocks = [Signal(32, name=f"r3_block{number}") for number in blocks]
        r3_found_in = Signal(len(blocks))
        m.d.sync += [r3_valid.eq(r2_valid), r3_alloc.eq(r2_alloc), r3_pool.eq(r2_pool)]
        for i, (r3_block, selected) in enumerate(zip(r3_blocks, blocks.values(), strict=True)):
            m.d.sync += [r3_block.eq(or_all(Mux(select, value, 0) for select, value in selected)),
                         r3_found_in[i].eq(or_all(select for select, _ in selected))]

        # ---- read, stage R4: answer a plain read, or ask the pipeline ------------------
        # register ALLOC: ask the pipeline, answer with its grant
        alloc_waiting = Signal()
        r_data, r_err, r_ack = Signal(32), Signal(), Signal()
        m.d.sync += [self.req_alloc.eq(r3_valid & r3_alloc), r_ack.eq(0)]
        with m.If(r3_valid & r3_alloc):
            m.d.sync += [alloc_waiting.eq(1), self.req_alloc_pool.eq(r3_pool)]
            with m.Switch(r3_pool):
                for pool in cfg.pools:
                    with m.Case(pool.index):
                        m.d.sync += self.req_alloc_size.eq(pool.slot_size)
        with m.Elif(r3_valid):
            m.d.sync += [r_ack.eq(1), r_data.eq(or_all(r3_blocks)), r_err.eq(~r3_found_in.any())]
        axi_grant = self.rsp_grant_valid & self.rsp_grant_src
        handle = Signal(32)
        slot_f, tag_f = (_field(HANDLE_FIELDS, n) for n in ("SLOT", "TAG"))
        m.d.comb += handle.eq(Cat(self.rsp_grant_slot, Const(0, slot_f.width - len(self.rsp_grant_slot)),
                                  self.rsp_grant_tag if cfg.tag_bits else Const(0, 1),
                                  Const(0, tag_f.width - len(self.rsp_grant_tag)),
                                  self.rsp_grant_err, self.rsp_grant_ok))
        with m.If(alloc_waiting & axi_grant):
            m.d.sync += [alloc_waiting.eq(0), r_ack.eq(1), r_data.eq(handle), r_err.eq(0)]
        m.d.comb += [bus.r_ack.eq(r_ack), bus.r_data.eq(r_data), bus.r_err.eq(r_err)]

        # ---- write, stages W1 and W2: decode -----------------------------------------
        # As for reads: address groups, then one flag a writable register. The slot
        # field of a FREE is compared with each pool's size in chunks of up to six
        # bits (one LUT each), joined in W2; its address is formed in W2 and W3.
        w_match = predecode(m, bus.w_addr, "w1")
        w1_valid, w1_full_word, w1_strb = Signal(), Signal(), Signal(4)
        w1_data, w1_pool = Signal(32), Signal(cfg.pool_bits)
        slot_field = bus.w_data[slot_f.lsb:slot_f.lsb + slot_f.width]
        w1_cmp = [ge_chunks(m, slot_field, pool.slots, f"w1_{pool.name}_oor") for pool in cfg.pools]
        m.d.sync += [w1_valid.eq(bus.w_req), w1_data.eq(bus.w_data), w1_full_word.eq(bus.w_strb == 0b1111),
                     w1_strb.eq(bus.w_strb), w1_pool.eq(bus.w_addr[6:] - (POOL_BASE >> 6))]
        writable = [r for r in self._map if r.writable]
        w2_is = {r.offset: Signal(name=f"w2_is_{r.name.lower()}") for r in writable}
        w2_valid, w2_full_word, w2_strb = Signal(), Signal(), Signal(4)
        w2_data, w2_pool = Signal(32), Signal(cfg.pool_bits)
        w2_free, w2_flush, w2_command, w2_plain = Signal(), Signal(), Signal(), Signal()
        w2_oor = Signal(len(cfg.pools))         # bit p: the slot field is past pool p's end
        slot = w1_data[slot_f.lsb:slot_f.lsb + slot_f.width]
        w2_offset = Signal(cfg.addr_width)      # the slot's offset in its pool
        w2_base = Signal(cfg.addr_width)
        m.d.sync += [w2_valid.eq(w1_valid), w2_full_word.eq(w1_full_word), w2_strb.eq(w1_strb),
                     w2_data.eq(w1_data), w2_pool.eq(w1_pool),
                     w2_oor.eq(Cat(cmp() for cmp in w1_cmp))]
        for register in writable:
            m.d.sync += w2_is[register.offset].eq(w_match(register.offset))
        m.d.sync += [
            w2_free.eq(or_all(w_match(r.offset) for r in writable if r.kind == "FREE")),
            w2_flush.eq(or_all(w_match(r.offset) for r in writable if r.kind == "FLUSH")),
            w2_command.eq(or_all(w_match(r.offset) for r in writable if r.access == "WO")),
            w2_plain.eq(or_all(w_match(r.offset) for r in writable if r.access != "WO")),
        ]
        with m.Switch(w1_pool):
            for pool in cfg.pools:
                with m.Case(pool.index):
                    m.d.sync += [w2_offset.eq(slot << pool.offset_bits), w2_base.eq(pool.base)]

        def writing(name):
            return w2_is[self._map[name].offset]

        # ---- write, stage W3: carry out ---------------------------------------------
        free_waiting, flush_waiting = Signal(), Signal()
        w_err, w_ack = Signal(), Signal()
        command = w2_valid & w2_full_word
        start_free = command & w2_free
        start_flush = command & w2_flush
        m.d.sync += [
            clear.eq(command & writing("CTRL") & w2_data[0]),
            pop.eq(command & writing("ERR_POP")),
            w1c.eq(Mux(w2_valid & writing("IRQ_STATUS") & w2_strb[0], w2_data[:irq_bits], 0)),
            self.req_free.eq(start_free),
            self.req_flush.eq(start_flush),
            w_ack.eq(w2_valid & ~start_free & ~start_flush),
        ]
        with m.If(w2_valid & writing("IRQ_ENABLE") & w2_strb[0]):
            m.d.sync += irq_enable.eq(w2_data[:irq_bits])
        for pool, c in zip(cfg.pools, counters, strict=True):
            # byte by byte, as the strobes say
            threshold = c["LOW_WATER"]
            for byte in range(3):
                bits = slice(8 * byte, min(8 * byte + 8, LOW_WATER_BITS))
                with m.If(w2_valid & writing(f"POOL{pool.index}_LOW_WATER") & w2_strb[byte]):
                    m.d.sync += threshold[bits].eq(w2_data[bits])
        with m.If(w2_valid):
            # a read-only or unmapped address, or a command written in part
            m.d.sync += w_err.eq(~w2_plain & ~(w2_command & w2_full_word))
        with m.If(start_free):
            m.d.sync += [free_waiting.eq(1), self.req_free_pool.eq(w2_pool),
                         self.req_free_tag.eq(w2_data[tag_f.lsb:tag_f.lsb + max(cfg.tag_bits, 1)]
                                              if cfg.tag_bits else 0),
                         self.req_free_addr.eq(w2_base + w2_offset),
                         self.req_free_oor.eq((w2_oor >> w2_pool)[0])]
        with m.If(start_flush):
            m.d.sync += [flush_waiting.eq(1), self.req_flush_pool.eq(w2_pool)]
        axi_freed = self.rsp_freed_valid & self.rsp_freed_src
        with m.If(free_waiting & axi_freed):
            m.d.sync += [free_waiting.eq(0), w_ack.eq(1), w_err.eq(~self.rsp_freed_ok)]
        axi_flushed = self.rsp_flushed_valid & self.rsp_flushed_src
        with m.If(flush_waiting & axi_flushed):
            m.d.sync += [flush_waiting.eq(0), w_ack.eq(1), w_err.eq(~self.rsp_flushed_ok)]
        m.d.comb += [bus.w_ack.eq(w_ack), bus.w_err.eq(w_err)]
        return m
