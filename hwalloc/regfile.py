"""The register file: SPEC §6's registers on the strobe bus, built from the
register map of :mod:`hwalloc.regs`.

It sees addresses and strobes only; what happens to the allocator is asked of
the core through a request port (register ALLOC and FREE) and learnt from the
core's responses (counters, the error log, interrupts). It never looks inside
the pipeline.
"""

from itertools import product

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import __version__
from .axil import strobe_signature
from ._rtl import RamQueue, any_of, at_least, choose_one_hot, equal, or_all, predecode
from .model import Err, Op
from .regs import (HANDLE_FIELDS, irq_bits, LOW_WATER_BITS, PLAIN_READ, PLAIN_WRITE, POOL_BASE,
                   REGISTER_EXTRA, constant_value, register_map)

__all__ = ["RegisterFile", "REGISTER_EXTRA", "PLAIN_READ", "PLAIN_WRITE", "read_depth"]


def read_depth(config):
    """Reads (and writes) open at once: enough for one register ALLOC (FREE) a clock."""
    return config.latency + REGISTER_EXTRA + 1


def _guard_members(config):
    """What the register file learns from the access guard (hwalloc.guard):
    per direction, a registered event a burst judged (LOG_DELAY edges after
    its handshake), and the lock; what it tells it: GUARD_CTRL, an unlock."""
    members = {"guard_lock_on": Out(1), "guard_unlock": Out(1), "guard_locked": In(1)}
    for d in ("ar", "aw"):
        members.update({f"guard_{d}_checked": In(1), f"guard_{d}_refused": In(1),
                        f"guard_{d}_err": In(4), f"guard_{d}_id": In(config.guard.id_width),
                        f"guard_{d}_addr": In(min(config.addr_width, 32)),
                        f"guard_{d}_tag": In(max(config.tag_bits, 1)), f"guard_{d}_pool": In(8)})
    return members


def _count(flags):
    """The number of set bits of ``flags`` (five at most) as a table: a LUT a
    bit of the count, where an adder tree would be a chain of them."""
    return Array(Const(bin(v).count("1"), 3) for v in range(1 << len(flags)))[flags]


def _field(fields, name):
    return next(f for f in fields if f.name == name)


class RegisterFile(wiring.Component):
    """Registers, counters, error log and interrupt of one core.

    Members
    -------
    bus : the register strobe bus (:func:`hwalloc.axil.strobe_signature`).
    req_alloc, req_free, req_flush : a register ALLOC / FREE / FLUSH takes the
        pipeline in this cycle (round robin with the native side, which
        ``native_*_valid`` says wants it); its fields are in ``req_*``.
    rsp_* : the core's responses (every source), at the response stage.
    busy, ready : core status for STATUS.
    irq : the interrupt line.
    """

    def __init__(self, config, *, depth):
        self._config = config
        self._depth = depth             # register requests waiting at most (the reads or writes open)
        self._map = register_map(config)
        P, A, T, U = config.pool_bits, config.addr_width, config.tag_bits, config.user_bits
        super().__init__(wiring.Signature({
            "bus": Out(strobe_signature()),
            "req_alloc": Out(1), "req_alloc_pool": Out(P), "req_alloc_size": Out(config.size_bits),
            "req_free": Out(1), "req_free_addr": Out(A), "req_free_tag": Out(max(T, 1)),
            "req_free_oor": Out(1), "req_free_pool": Out(P), "req_free_hit": Out(len(config.pools)),
            "req_flush": Out(1), "req_flush_pool": Out(P), "req_flush_select": Out(len(config.pools)),
            "rsp_grant_valid": In(1), "rsp_grant_ok": In(1), "rsp_grant_err": In(4),
            "rsp_grant_pool": In(P), "rsp_grant_slot": In(config.slot_bits),
            "rsp_grant_tag": In(max(T, 1)), "rsp_grant_user": In(U), "rsp_grant_src": In(1),
            "rsp_grant_size": In(min(config.size_bits, 32)), "rsp_grant_overwrite": In(1),
            "rsp_freed_valid": In(1), "rsp_freed_ok": In(1), "rsp_freed_err": In(4),
            "rsp_freed_pool": In(P), "rsp_freed_in_pool": In(1), "rsp_freed_user": In(U),
            "rsp_freed_src": In(1), "rsp_freed_addr": In(min(A, 32)), "rsp_freed_tag": In(max(T, 1)),
            "rsp_flushed_valid": In(1), "rsp_flushed_ok": In(1), "rsp_flushed_err": In(4),
            "rsp_flushed_pool": In(P), "rsp_flushed_user": In(U), "rsp_flushed_src": In(1),
            # valid & src of each, a register of its own (the answer queues take them)
            "rsp_grant_cpu": In(1), "rsp_freed_cpu": In(1), "rsp_flushed_cpu": In(1),
            "native_alloc_valid": In(1), "native_free_valid": In(1), "native_flush_valid": In(1),
            "busy": In(1), "ready": In(1),
            "irq": Out(1),
            **(_guard_members(config) if config.guard is not None else {}),
        }))

        # the interrupt's state, for the formal harness (hwalloc.formal): the
        # causes, the events that set them and the write-1-to-clear, each cycle
        self.irq_status, self.irq_set, self.irq_clear = (Signal(irq_bits(config)) for _ in range(3))

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
        # (each a LUT of its own, which the counts below are tables of: left to
        # it, the mapper spread them over a chain of small LUTs)
        free_err, flush_err, alloc_err = (Signal(name=f"e0_{n}_err", attrs={"keep": 1})
                                          for n in ("free", "flush", "alloc"))
        m.d.comb += [
            free_err.eq(self.rsp_freed_valid & (self.rsp_freed_err != Err.OK)),
            flush_err.eq(self.rsp_flushed_valid & (self.rsp_flushed_err != Err.OK)),
            alloc_err.eq(self.rsp_grant_valid & ~self.rsp_grant_ok & (self.rsp_grant_err != Err.EXHAUSTED)),
        ]
        exhausted = self.rsp_grant_valid & (self.rsp_grant_err == Err.EXHAUSTED)
        entry_bits = 4 + 3 + 2 + 8 + 8 + 32 + 32 + 32
        # an entry in four parts of about a quarter each (see the banks' writes)
        quarters = [(entry_bits * c // 4, entry_bits * (c + 1) // 4) for c in range(4)]

        def entry(code, op, src, pool, tag, info, user, stamp):
            # code 4 | op 3 | source 2 | pool 8 | tag 8 | address or size 32 | user 32 | cycle 32
            return Cat(code, Const(op, 3), src, Const(0, 2 - len(src)), pool, Const(0, 8 - len(pool)), tag,
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
        # (not reset: they are loaded every cycle, and read only as far as the
        # count, which is, says)
        new = [Signal(entry_bits, name=f"e1_new{k}", reset_less=True) for k in range(3)]
        n_new, e1_exhausted = Signal(2), Signal(name="e1_exhausted")
        m.d.sync += [
            new[0].eq(Mux(free_err, free_entry, Mux(flush_err, flush_entry, alloc_entry))),
            new[1].eq(Mux(free_err & flush_err, flush_entry, alloc_entry)),
            new[2].eq(alloc_entry),
            n_new.eq(free_err + flush_err + alloc_err),
            e1_exhausted.eq(exhausted),
        ]
        # With a guard, its refusals (AR before AW) enter beside them, behind
        # this cycle's allocation errors: up to five entries a cycle (HEAD3's
        # stamps order the two sources).
        guard = cfg.guard is not None
        n_all, e1_access = n_new, Const(0)
        if guard:
            from .guard import LOG_DELAY
            gstamp = (cycle - LOG_DELAY)[:32]
            access = {d: entry(getattr(self, f"guard_{d}_err"), op, Const(2, 2),
                               getattr(self, f"guard_{d}_pool"), getattr(self, f"guard_{d}_tag"),
                               getattr(self, f"guard_{d}_addr"), getattr(self, f"guard_{d}_id"), gstamp)
                      for d, op in (("ar", Op.READ_ACCESS), ("aw", Op.WRITE_ACCESS))}
            ar_refused, aw_refused = self.guard_ar_refused, self.guard_aw_refused
            guard_new = [Signal(entry_bits, name=f"e1_guard{k}", reset_less=True) for k in range(2)]
            n_guard, e1_access = Signal(2, name="e1_n_guard"), Signal(name="e1_access")
            n_all = Signal(3, name="e1_n_all")
            # n_all >= j, j = 1..5, and n_all == j, j = 0..5, as registers (a
            # thermometer and a one-hot of the count)
            n_at_least = Signal(5, name="e1_n_at_least")
            n_is = Signal(6, init=1, name="e1_n_is")
            flags = Cat(free_err, flush_err, alloc_err, ar_refused, aw_refused)
            m.d.sync += [
                guard_new[0].eq(Mux(ar_refused, access["ar"], access["aw"])),
                guard_new[1].eq(access["aw"]),
                n_guard.eq(ar_refused + aw_refused),
                # (a count of five flags as a table: a LUT a bit, not a chain of adders)
                n_all.eq(_count(flags)),
                n_at_least.eq(Cat(Array(Const(int(bin(v).count("1") >= j), 1) for v in range(32))[flags]
                                  for j in range(1, 6))),
                n_is.eq(Cat(Array(Const(int(bin(v).count("1") == j), 1) for v in range(32))[flags]
                            for j in range(6))),
                e1_access.eq(ar_refused | aw_refused),
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
        irq_bits = len(self.irq_status)
        clear, pop, w1c = Signal(), Signal(), self.irq_clear

        # ---- error log, stage E2: four banks, so three errors can enter in one cycle
        # (eight and five with a guard). Entry i lives in bank i % 4, row i // 4
        # (of a ring of at least four entries; ``space`` keeps at most ``depth``
        # of them): consecutive entries never share a bank. ``room[k]`` says
        # whether k entries fit, kept as flags so that the decision of how many
        # to keep is one LUT.
        depth = cfg.error_log_depth
        most = 5 if guard else 3                # entries a cycle, at most
        nb = 8 if guard else 4                  # banks
        nbb = nb.bit_length() - 1
        ring = max(depth, nb)
        ring_bits = ring.bit_length() - 1       # ring is a power of two
        rows = ring // nb
        # (at least two rows a bank: a one-row memory would have a zero-width address)
        if guard:
            # each bank in four memories, a quarter of the entry each, with
            # registers of their own (see below)
            parts = [[Memory(shape=hi - lo, depth=max(rows, 2), init=[]) for lo, hi in quarters]
                     for _ in range(nb)]
            for b, c in product(range(nb), range(len(quarters))):
                m.submodules[f"log_bank{b}_{c}"] = parts[b][c]
        else:
            banks = [Memory(shape=entry_bits, depth=max(rows, 2), init=[]) for _ in range(nb)]
            for b, bank in enumerate(banks):
                m.submodules[f"log_bank{b}"] = bank
        # A bank's write is registered beside it (address, data and enable from
        # registers: place and route showed the choice of an entry and its room
        # flags, chained into a LUT RAM's write pins, as the worst path of small
        # cores; with a guard, the data is a choice among registers by registers
        # instead), so an entry counted at edge e is in its bank at e+1. The read
        # port is transparent to it: the head shown at e+1 is already the entry.
        # (With a guard, the read is asynchronous from a row register of each
        # part's own, which is the same: one register fanned out to every LUT
        # RAM of the eight banks was the guarded core's worst path.)
        if guard:
            part_w = [[part.write_port() for part in bank] for bank in parts]
            part_r = [[part.read_port(domain="comb") for part in bank] for bank in parts]
        else:
            bank_w = [bank.write_port() for bank in banks]
            bank_r = [bank.read_port(transparent_for=(w,)) for bank, w in zip(banks, bank_w, strict=True)]

        def row(value):
            return value if rows > 1 else Const(0, 1)
        head, tail = Signal(ring_bits, name="head"), Signal(ring_bits, name="tail")
        if guard:
            # the tail's bank as one-hot flags too: with five entries a cycle, a
            # select of a bank is then a LUT of a flag or two and the counts
            tail_at = Signal(nb, init=1, name="tail_bank")
        # the tail's row and the next one (for banks behind the tail's bank)
        tail_row = Signal(max(1, ring_bits - nbb))
        tail_next_row = Signal(max(1, ring_bits - nbb), init=1 % rows)
        space = Signal(range(depth + 1), init=depth)
        # space >= j for j = 1..2*most as registers (thermometer; with a guard,
        # every j up to the depth): room[k] is ge[k]
        ge = {j: Signal(init=int(depth >= j), name=f"space_ge{j}")
              for j in range(1, (max(depth, most) if guard else 2 * most) + 1)}
        room = [Const(1), *(ge[j] for j in range(1, most + 1))]
        err_count, err_dropped = Signal(32), Signal(32)
        n_kept, popped = Signal(len(n_all)), Signal(name="popped")
        n_kept_q = Signal(len(n_all), name="n_kept_q")
        n_dropped = Signal(len(n_all))          # counted a cycle later, apart from the room decision
        # space == depth (a power of two): nothing logged (with a guard, its flag)
        empty = ge[depth] if guard else space[depth.bit_length() - 1]
        if guard:
            # as many as there are, or as fit: at least j kept when n_all >= j and
            # j fit (a thermometer, a LUT a bit), then its count
            # (each a LUT of registers of its own, which the tail's turn and the
            # banks' enables are formed from, so that the mapper cannot fold
            # them into deeper shared logic)
            kept = [Const(1), *(Signal(name=f"log_kept_ge{j}", attrs={"keep": 1})
                                for j in range(1, most + 1))]
            m.d.comb += [kept[j].eq(n_at_least[j - 1] & room[j]) for j in range(1, most + 1)]
            m.d.comb += n_kept.eq(Cat((kept[1] & ~kept[2]) | (kept[3] & ~kept[4]) | kept[5],
                                      kept[2] & ~kept[4], kept[4]))
        else:
            m.d.comb += n_kept.eq(Mux(room[3], n_new, Mux(room[2], Mux(n_new > 2, 2, n_new),
                                                          Mux(room[1] & (n_new != 0), 1, 0))))
            # at least j kept: a LUT of registers each, which the tail's move and
            # the banks' enables are chosen by (through n_kept, the mapper chained
            # LUTs in front of the tail's adder)
            kept = [Const(1)] + [Signal(name=f"log_kept_ge{j}") for j in range(1, most + 1)]
            m.d.comb += [kept[j].eq((n_new >= j) & room[j]) for j in range(1, most + 1)]
        m.d.comb += popped.eq(pop & ~empty)
        if guard:
            # this cycle's entries a cycle later, as the banks' writes see them
            late_entries = [Signal(entry_bits, name=f"e2_entry{k}", reset_less=True) for k in range(most)]
            m.d.sync += [late.eq(e) for late, e in zip(late_entries, new + guard_new, strict=True)]
            # what each of a bank's four copies of a register is gated or loaded
            # by: flags that all hold whenever any entry is kept, yet differ, so
            # that synthesis, which merges identical registers (keep or not),
            # keeps the copies apart
            copy_gates = [Const(1), room[1], n_at_least[0], kept[1]]
        for b in range(nb):
            if guard:
                # the allocation pipeline's first, then the guard's: entry j lands
                # in bank b when the tail is at bank b - j (a flag), the guard's
                # j-th at b - n_new - j (for each n_new): a LUT a select (kept as
                # LUTs of their own, shared by the entry's bits)
                selects = [tail_at[(b - j) % nb] & (n_new > j) for j in range(3)] + \
                          [or_all((n_new == v) & tail_at[(b - v - j) % nb] for v in range(4))
                           for j in range(2)]
                # registered beside the entries' copies: the bank's write data is
                # then a choice among registers by registers (place and route
                # showed a select formed from the tail, then fanned out to the
                # entry's bits, as the guarded core's worst path)
                # Four copies of each, one for each quarter of the entry (one
                # register fanned out to all its bits was the next worst path),
                # gated by the copy's flag (the data of a bank not written is free).
                data = []
                for c, ((lo, hi), gate) in enumerate(zip(quarters, copy_gates, strict=True)):
                    late_selects = [Signal(name=f"log_bank{b}_select{j}_{c}", reset_less=True)
                                    for j in range(most)]
                    m.d.sync += [late.eq(select & gate)
                                 for late, select in zip(late_selects, selects, strict=True)]
                    # (each bit an OR of five ANDs as a LUT tree, two LUTs: on a
                    # carry chain, the chain's cells and the route between two of
                    # them set the guarded core's clock, from a select to the RAM)
                    # (built a quarter at a time: bit by bit, it was 37,000
                    # nets, most of the guarded core's emit and build time)
                    data.append(or_all(Mux(select, entry[lo:hi], 0)
                                       for select, entry in zip(late_selects, late_entries, strict=True)))
                data = Cat(*data)
                # the j-th entry is kept and lands here
                enable = Signal(name=f"log_bank{b}_enable", attrs={"keep": 1})
                m.d.comb += enable.eq(or_all(tail_at[(b - j) % nb] & kept[j + 1] for j in range(most)))
                # each bank's next row, a register of its own (a bank's entries
                # are written in order): the RAM's write address has no logic
                write_row = Signal(max(1, ring_bits - nbb), name=f"log_bank{b}_row")
                with m.If(enable):
                    m.d.sync += write_row.eq(write_row + 1)
            else:
                # which of this cycle's entries lands in bank b: the (b - tail) % nb-th
                k = Signal(nbb, name=f"log_bank{b}_k")
                m.d.comb += k.eq(b - tail[:nbb])
                data = Mux(k == 0, new[0], Mux(k == 1, new[1], new[2]))
                enable = Array([*kept[1:], Const(0)])[k]
                # a bank behind the tail's writes the next row
                write_row = Mux(b < tail[:nbb], tail_next_row, tail_row) if b < nb - 1 else tail_row
            if guard:
                w_en = Signal(name=f"log_bank{b}_wen")
                m.d.sync += w_en.eq(enable)
                # Each part's write row and read row are registers of its own,
                # loaded under conditions that differ from part to part (for the
                # same reason as the selects') and hold whenever it matters: the
                # row written when the bank is, the row read when the head is in
                # this bank.
                for c, (w, r, gate, (lo, hi)) in enumerate(zip(part_w[b], part_r[b], copy_gates, quarters,
                                                                strict=True)):
                    w_row = Signal(len(w.addr), name=f"log_bank{b}_{c}_wrow", reset_less=True)
                    r_row = Signal(len(r.addr), name=f"log_bank{b}_{c}_rrow", reset_less=True)
                    with m.If(gate):
                        m.d.sync += w_row.eq(row(write_row))
                    with m.If((head[:nbb] == b) | (head[:nbb] == (b + c) % nb)):
                        m.d.sync += r_row.eq(row(head[nbb:]))
                    m.d.comb += [w.addr.eq(w_row), w.data.eq(data[lo:hi]), w.en.eq(w_en), r.addr.eq(r_row)]
            else:
                w_row = Signal(len(bank_w[b].addr), name=f"log_bank{b}_wrow", reset_less=True)
                w_data = Signal(entry_bits, name=f"log_bank{b}_wdata", reset_less=True)
                w_en = Signal(name=f"log_bank{b}_wen")
                m.d.sync += [w_row.eq(row(write_row)), w_data.eq(data), w_en.eq(enable)]
                m.d.comb += [
                    bank_w[b].addr.eq(w_row),
                    bank_w[b].data.eq(w_data),
                    bank_w[b].en.eq(w_en),
                    bank_r[b].addr.eq(row(head[nbb:])), bank_r[b].en.eq(1),
                ]
        # space changes by popped - n_kept (-5..1); the flags of the new value are
        # flags of the old one (or, past the thermometer, comparisons of it with
        # small constants on carry chains), chosen by the change: the room
        # flags that decide n_kept come from registers only.
        def at_least_now(j):
            return Const(1) if j <= 0 else ge[j] if j in ge else Const(0) if j > depth else at_least(space, j)
        # n_kept is min(n_all, space): space - n_kept is max(space - n_all, 0),
        # so the new space is >= j when space >= j + n_all (or j - 1 + n_all
        # with a pop): flags chosen by n_all (a register), not by n_kept (a LUT
        # of it and the flags: the mapper made that four levels), the pop last
        # (each choice kept as LUTs of its own, of registers only, so that the
        # pop's is the one LUT after them)
        chosen = {}

        def at_least_plus_all(j):
            if j not in chosen:
                chosen[j] = Signal(name=f"space_plus_all_ge{j}", attrs={"keep": 1})
                if guard:
                    # (by the one-hot count: an AND-OR of registers, which the
                    # mapper cannot fold into a decode of the count shared by all)
                    m.d.comb += chosen[j].eq(or_all(n_is[v] & at_least_now(j + v) for v in range(most + 1)))
                else:
                    m.d.comb += chosen[j].eq(Array(at_least_now(j + v) for v in range(most + 1))[n_all])
            return chosen[j]
        m.d.sync += [ge[j].eq(Mux(popped, at_least_plus_all(j - 1) if j > 1 else 1,
                                  at_least_plus_all(j))) for j in ge]
        under = Signal(signed(len(space) + 2), name="space_under")    # space - n_all
        over = Signal(signed(len(space) + 2), name="space_over")      # space - n_all + 1
        short = Signal(name="space_short")                             # space < n_all
        m.d.comb += [under.eq(space - n_all), over.eq(space + 1 - n_all), short.eq(under < 0)]
        if guard:
            # the tail's bank turns by the number kept (each bank keeps its own
            # row): exactly j kept, a LUT of four registers each, then each bank
            # flag the OR of two halves of three terms, all kept as LUTs of their
            # own (4 levels on the Xilinx estimate at every point measured), where
            # the mapper, left to share them with the count kept, made four or
            # five as the netlist around them changed
            exactly = [Signal(name=f"log_kept_is{j}", attrs={"keep": 1}) for j in range(most + 1)]
            m.d.comb += [exactly[j].eq((n_at_least[j - 1] & room[j] if j else 1) &
                                       ~(n_at_least[j] & room[j + 1])) for j in range(most)]
            m.d.comb += exactly[most].eq(n_at_least[most - 1] & room[most])
            for t in range(nb):
                halves = [Signal(name=f"tail_bank{t}_by{h}", attrs={"keep": 1}) for h in range(2)]
                m.d.comb += [half.eq(or_all(exactly[j] & tail_at[(t - j) % nb]
                                            for j in range(3 * h, 3 * h + 3)))
                             for h, half in enumerate(halves)]
                m.d.sync += tail_at[t].eq(halves[0] | halves[1])
        else:
            # tail + n_kept: the sums formed from the register, then chosen
            new_tail = tail
            for j in range(1, most + 1):
                new_tail = Mux(kept[j], (tail + j)[:ring_bits], new_tail)
            # the tail moves to the next row: tail[:nbb] + n_kept >= nb
            crosses = Array([Const(0), *reversed(kept[1:])])[tail[:nbb]]
        m.d.sync += [
            # (the new space is max(space - n_all, 0) + popped: two differences
            # of registers, then a choice; n_kept would come first, a LUT deeper)
            space.eq(Mux(popped, Mux(short, 1, over[:len(space)]), Mux(short, 0, under[:len(space)]))),
            *([] if guard else [tail.eq(new_tail)]),
            # (the count kept is added a cycle later, from a register: the
            # 32-bit adder behind the room flags was the guarded core's worst
            # path on every seed; ERR_COUNT still counts an entry before it is
            # shown, well within L + 4, and a clear may drop a count in flight)
            n_kept_q.eq(n_kept),
            err_count.eq(err_count + n_kept_q),
            # (with a guard: the count of the entries that did not fit, from the
            # thermometers, not a subtraction after the count kept)
            n_dropped.eq(_count(Cat(n_at_least[j - 1] & ~room[j] for j in range(1, most + 1))) if guard
                         else n_all - n_kept),
            err_dropped.eq(err_dropped + n_dropped),
        ]
        if rows > 1 and not guard:
            with m.If(crosses):
                m.d.sync += [tail_row.eq(tail_next_row), tail_next_row.eq(tail_next_row + 1)]
        with m.If(popped):
            m.d.sync += head.eq(head + 1)
        with m.If(clear):
            m.d.sync += [err_count.eq(0), err_dropped.eq(0)]
        # The head as shown: the state two edges ago, valid bit and data alike
        # (the banks' read registers, or with a guard their read rows, then the
        # one chosen, in a register of its own so that the read decode sees
        # registers only).
        head_valid, head_bank = Signal(), Signal(nbb)
        m.d.sync += [head_valid.eq(~empty), *([] if guard else [head_bank.eq(head[:nbb])])]
        # (not reset: it is loaded every cycle, with 0 while head_valid, which
        # is reset, is low; a reset of its own ORed with that was a LUT in
        # front of every bit's set/reset, on the guarded core's worst path)
        head_entry = Signal(entry_bits, reset_less=True)
        if guard:
            # The head's bank in a register a part (a quarter of the entry):
            # one register fanned out to the multiplexers of every bit was the
            # guarded core's worst path on a seed. The copies differ while the
            # log is empty, when the choice is not shown (head_valid is low),
            # so that synthesis keeps them apart.
            shown = []
            for c in range(len(quarters)):
                bank_of_part = Signal(nbb, name=f"head_bank_{c}", reset_less=True)
                m.d.sync += bank_of_part.eq(Mux(empty, c % nb, head[:nbb]))
                shown.append(Array(bank[c].data for bank in part_r)[bank_of_part])
            shown = Cat(shown)
        else:
            shown = Mux(head_bank[1], Mux(head_bank[0], bank_r[3].data, bank_r[2].data),
                        Mux(head_bank[0], bank_r[1].data, bank_r[0].data))
        # VALID as shown: loaded with the entry, at the same edge. (HEAD0 took
        # head_valid itself, an edge ahead of the entry: read in the cycle the
        # log stopped being empty, it said VALID with every field 0, which
        # software took for an entry; random guarded configs caught one.)
        shown_valid = Signal(name="head_shown_valid")
        m.d.sync += [head_entry.eq(Mux(head_valid, shown, 0)), shown_valid.eq(head_valid)]
        code, op, src = head_entry[0:4], head_entry[4:7], head_entry[7:9]
        pool, tag = head_entry[9:17], head_entry[17:25]
        info, user, when = head_entry[25:57], head_entry[57:89], head_entry[89:121]
        # [7:0] tag, [15:8] pool, [23:20] code, [27:26] source, [30:28] op, [31] valid
        err_head0 = Cat(tag, pool, Const(0, 4), code, Const(0, 2), src, op, shown_valid)

        # ---- interrupt ---------------------------------------------------------------
        irq_status, irq_set, irq_enable = self.irq_status, self.irq_set, Signal(irq_bits)
        low_water_hit = Signal()                # defined with the counters below
        m.d.comb += irq_set.eq(Cat(n_all != 0, e1_exhausted, n_kept != n_all,
                                   or_all(ev["overwrite"] for ev in events), low_water_hit,
                                   *([e1_access] if guard else [])))
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
                         grow.eq(~clear & Mux(grow, rose, ~at_least(c["HIGH_WATER"], in_use)))]
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

        # ---- the guard's registers ---------------------------------------------------
        guard_values = {}
        if guard:
            checks, refused = Signal(32), Signal(32)
            with m.If(clear):
                m.d.sync += [checks.eq(0), refused.eq(0)]
            with m.Else():
                # (one adder each: the two events summed first, in a LUT a bit)
                for counter, ar, aw in ((checks, self.guard_ar_checked, self.guard_aw_checked),
                                        (refused, self.guard_ar_refused, self.guard_aw_refused)):
                    m.d.sync += counter.eq(counter + Cat(ar ^ aw, ar & aw))
            guard_values = {"GUARD_CTRL": self.guard_lock_on, "GUARD_STATUS": self.guard_locked,
                            "GUARD_CHECKS": checks, "GUARD_REFUSED": refused}

        # ---- read, stage R1 (the AR handshake's edge): a select flag a register
        # (two LUTs from the address); whether it is a register ALLOC, which goes
        # to the pipeline now
        def r_match(offset):
            # on a carry chain: Yosys' mapper would chain the shared terms of a
            # LUT tree over a hundred flags (see hwalloc._rtl.equal)
            return equal(bus.r_addr, Const(offset, len(bus.r_addr)))
        block = bus.r_addr[6:]
        pool_blocks = range(POOL_BASE >> 6, (POOL_BASE >> 6) + len(cfg.pools))
        # (the block among the pools' blocks as a lookup of its six bits, one
        # LUT: as two compares on carry chains it was on the guarded core's
        # worst path, from the pins to req_alloc)
        alloc_block = Const(sum(1 << b for b in pool_blocks), 1 << len(block)).bit_select(block, 1)
        # a read that is a register ALLOC, on a carry chain of its own: the
        # request, the block and the offset at once (as a LUT tree, the mapper
        # built it from the middle of a register select's chain, then four
        # LUTs to req_alloc, on random configs of five pools or more)
        new_alloc = Signal()
        m.d.comb += new_alloc.eq(equal(Cat(bus.r_addr[:6], alloc_block, bus.r_req_parts),
                                       Cat(Const(0, 6), 1, Const(0b11, 2))))
        r1_valid = Signal()
        m.d.sync += r1_valid.eq(bus.r_req & ~new_alloc)
        # the adapter learns each read's stream in the cycle of its AR
        m.d.comb += bus.r_slow.eq(new_alloc)

        # Register ALLOCs wait here, in order, while the native side has its
        # turn: after a cycle in which a register ALLOC held back a native one,
        # the next cycle is the native side's (round robin: neither starves).
        # A new request goes to the pipeline at once if nothing waits before it,
        # else into a one-entry stage (so that the address decode feeds only
        # that stage), and from there into the queue.
        P, Z = cfg.pool_bits, cfg.size_bits
        queue = RamQueue(m, P + Z, self._depth, "alloc_queue")
        new_pool = (block - pool_blocks.start)[:P]
        new = Cat(new_pool, Array(Const(pool.slot_size, Z) for pool in cfg.pools)[new_pool])
        staged, staged_valid = Signal(P + Z), Signal()
        native_turn = self.req_alloc & self.native_alloc_valid
        present = (queue.head_valid | staged_valid | new_alloc) & ~native_turn
        direct = ~queue.head_valid & ~staged_valid
        m.d.comb += [queue.w_data.eq(staged),
                     queue.pop.eq(queue.head_valid & ~native_turn),
                     queue.push.eq(staged_valid & ~(present & ~queue.head_valid))]
        # (the fields are loaded whether a request goes or not: the core reads
        # them only with req_alloc, and an enable would be the decode of the
        # pins fanned out to every field bit)
        m.d.sync += [self.req_alloc.eq(present),
                     staged_valid.eq(new_alloc & ~(present & direct)), staged.eq(new),
                     Cat(self.req_alloc_pool, self.req_alloc_size).eq(
                         Mux(queue.head_valid, queue.head, Mux(staged_valid, staged, new)))]

        # ---- read, stage R2: the selected value within each 64-byte block ----------
        values = {"STATUS": Cat(ready, busy), "IRQ_STATUS": irq_status,
                  "IRQ_ENABLE": irq_enable, "ERR_COUNT": err_count,
                  "ERR_DROPPED": err_dropped, "ERR_HEAD0": err_head0, "ERR_HEAD1": info,
                  "ERR_HEAD2": user, "ERR_HEAD3": when, "CYCLE": cycle, **guard_values}
        blocks = {}                             # 64-byte block -> [(offset, value)]
        for register in self._map:
            if register.access == "RO_ALLOC":
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
            blocks.setdefault(register.offset >> 6, []).append((register.offset, value))
        selects = {}
        for selected in blocks.values():
            for offset, _ in selected:
                selects[offset] = Signal(name=f"r1_sel_{self._map.at(offset).name.lower()}",
                                         reset_less=True)     # qualified by r1_valid
                m.d.sync += selects[offset].eq(r_match(offset))
        r2_valid = Signal()
        # (qualified by r2_valid, as the selects by r1_valid)
        r2_blocks = [Signal(32, name=f"r2_block{number}", reset_less=True) for number in blocks]
        r2_found_in = Signal(len(blocks), reset_less=True)
        m.d.sync += r2_valid.eq(r1_valid)
        # (whether the block holds the register: its selects' OR on a carry chain,
        # which the mapper made five LUTs deep as a tree on a random config)
        for i, (r2_block, selected) in enumerate(zip(r2_blocks, blocks.values(), strict=True)):
            m.d.sync += [r2_block.eq(or_all(Mux(selects[offset], value, 0) for offset, value in selected)),
                         r2_found_in[i].eq(any_of((selects[offset] for offset, _ in selected), chain=True))]

        # ---- read, stage R3: the answer of a plain read (the fast stream) ------------
        # (the adapter's queue registers it)
        m.d.comb += [bus.r_ack.eq(r2_valid), bus.r_data.eq(or_all(r2_blocks)),
                     bus.r_err.eq(~r2_found_in.any())]

        # ---- a register ALLOC's answer: its grant's handle (the slow stream) ----------
        handle = Signal(32)
        slot_f, tag_f = (_field(HANDLE_FIELDS, n) for n in ("SLOT", "TAG"))
        m.d.comb += handle.eq(Cat(self.rsp_grant_slot, Const(0, slot_f.width - len(self.rsp_grant_slot)),
                                  self.rsp_grant_tag if cfg.tag_bits else Const(0, 1),
                                  Const(0, tag_f.width - len(self.rsp_grant_tag)),
                                  self.rsp_grant_err, self.rsp_grant_ok))
        # (the adapter's queue registers it: the grant's cycle + 1 = L + 2)
        m.d.comb += [bus.r_slow_ack.eq(self.rsp_grant_cpu),
                     bus.r_slow_data.eq(handle)]

        # ---- write, stage W1 (the pair's edge): a FREE or FLUSH is readied for
        # the pipeline, everything else is decoded in W1 and W2 ---------------------
        # A FREE's pool and whether its slot field is past the pool's end are
        # formed from the pins on carry chains, and its address once a pool
        # (a constant base plus the slot shifted): the one of its pool is chosen
        # in the next cycle (a register a pool and a one-hot pool flag, so that
        # no adder follows the decode).
        # The pair's address and beat come from the pins or from the adapter's
        # queues: a FREE's pool flags and whether its slot is past the pool's
        # end are decoded from each and chosen last (as a decode of the chosen
        # value, they followed a multiplexer that placement put where all its
        # readers are, and crossed the chip twice). Each flag is kept as LUTs
        # of its own: left to it, the mapper spread the choice over the LUTs
        # that use it.
        def flag(value, name):
            if name is None:
                return value
            kept = Signal(name=name, attrs={"keep": 1})
            m.d.comb += kept.eq(value)
            return kept

        def by_addr(decode, name=None):
            return flag(Mux(bus.w_addr_from_queue, flag(decode(bus.w_addr_queued), name and f"{name}_queued"),
                            flag(decode(bus.w_addr), name and f"{name}_pins")), name)

        def by_beat(decode, name=None):
            return flag(Mux(bus.w_beat_from_queue,
                            flag(decode(bus.w_data_queued, bus.w_strb_queued), name and f"{name}_queued"),
                            flag(decode(bus.w_data, bus.w_strb), name and f"{name}_pins")), name)
        w_addr, w_data, w_strb = by_addr(lambda a: a), by_beat(lambda d, s: d), by_beat(lambda d, s: s)
        P, T, A = cfg.pool_bits, cfg.tag_bits, cfg.addr_width

        def slot_of(data):
            return data[slot_f.lsb:slot_f.lsb + slot_f.width]
        slot_field = slot_of(w_data)
        w_block = w_addr[6:]
        free_low, flush_low = (self._map[f"POOL0_{name}"].offset & 0x3F for name in ("FREE", "FLUSH"))

        def pool_is(addr, pool):
            return equal(addr[6:], Const((POOL_BASE >> 6) + pool.index, len(addr) - 6))
        w_pool_is = [by_addr(lambda a, pool=pool: pool_is(a, pool), f"w0_{pool.name}_is")
                     for pool in cfg.pools]

        def slot_ok(pool):
            return by_beat(lambda d, _: ~at_least(slot_of(d), pool.slots), f"w0_{pool.name}_slot_ok")

        # Whether it is a FREE or FLUSH (or either): from each source, whether
        # the address is in the pools' blocks and whether its offset is the
        # command's, as LUTs of their own (six address bits each); the choice
        # of the source and the full-word test in one LUT after them. (From
        # the chosen address, place and route showed the queue's select, then
        # a compare for every pool and their OR, on the worst path of eight
        # pools.) The pools' blocks are one range of the block number: a table
        # of it, not a compare per pool.
        block_bits = len(bus.w_addr) - 6
        pool_blocks = Const(sum(1 << ((POOL_BASE >> 6) + pool.index) for pool in cfg.pools), 1 << block_bits)
        sources = {"queued": bus.w_addr_queued, "pins": bus.w_addr}
        in_pools = {src: flag(pool_blocks.bit_select(addr[6:], 1), f"w0_in_pools_{src}")
                    for src, addr in sources.items()}

        def command_at(what, low):
            at = {src: flag(low(addr[:6]), f"w0_{what}_at_{src}") for src, addr in sources.items()}
            return full_word & Mux(bus.w_addr_from_queue, in_pools["queued"] & at["queued"],
                                   in_pools["pins"] & at["pins"])
        full_word = by_beat(lambda d, s: s == 0b1111, "w0_full_word")
        is_free = command_at("free", lambda offset: offset == free_low)
        is_flush = command_at("flush", lambda offset: offset == flush_low)
        is_command = command_at("command", lambda offset: (offset == free_low) | (offset == flush_low))
        # Whether it is a FREE or FLUSH is registered without the pair's
        # handshake, and qualified after the registers by w1_valid (the
        # handshake's register alone): place and route showed the handshake,
        # two LUTs from the pins, entering the decode's LUT tree at its leaves,
        # on the worst path of SIZE_CLASSES, THREE_REGIONS and eight pools.
        # (Without a reset, a LUT input less: loaded every cycle, each is read
        # only beside w1_valid or the adapter's paired, which are reset. The
        # command, either of them, has a register of its own: as a LUT of the
        # two, the mapper shared it with the adapter's kind queue, which
        # placement put across the chip from the request.)
        w1_valid = Signal()
        w1_is_free, w1_is_flush, w1_is_command = (Signal(name=f"w1_is_{what}", reset_less=True)
                                                  for what in ("free", "flush", "command"))
        m.d.sync += [w1_valid.eq(bus.w_req), w1_is_free.eq(is_free), w1_is_flush.eq(is_flush),
                     w1_is_command.eq(is_command)]
        new_free, new_flush = w1_valid & w1_is_free, w1_valid & w1_is_flush
        # (none reset, as the flags above)
        w1_pool = Signal(P, name="w1_pool", reset_less=True)
        w1_tag = Signal(max(T, 1), name="w1_tag", reset_less=True)
        w1_pool_is = Signal(len(cfg.pools), reset_less=True)
        w1_hit = Signal(len(cfg.pools), reset_less=True)    # bit p: in pool p, and not past its end
        w1_addrs = [Signal(A, name=f"w1_{pool.name}_addr", reset_less=True) for pool in cfg.pools]
        new_command = w1_valid & w1_is_command
        # (loaded every cycle: they are read only after new_free or new_flush,
        # and an enable would fan the pair's handshake out to every bit)
        m.d.sync += [w1_pool.eq((w_block - (POOL_BASE >> 6))[:P]),
                     w1_pool_is.eq(Cat(w_pool_is)),
                     w1_hit.eq(Cat(is_pool & slot_ok(pool)
                                   for is_pool, pool in zip(w_pool_is, cfg.pools, strict=True)))]
        if T:
            m.d.sync += w1_tag.eq(w_data[tag_f.lsb:tag_f.lsb + T])
        for pool, addr in zip(cfg.pools, w1_addrs, strict=True):
            m.d.sync += addr.eq(Const(pool.base, A) + (slot_field << pool.offset_bits))
        # (the adapter learns the stream of the write requested in the last cycle)
        # (read only with the adapter's paired, the handshake's register)
        m.d.comb += bus.w_slow.eq(w1_is_command)

        # Register FREEs and FLUSHes wait here, in order (one queue, so that
        # their answers come back in the order they were written), while the
        # native side has its turn on the port the one at the head needs, as
        # register ALLOCs do (round robin). One that finds nothing waiting
        # before it goes to the pipeline in the cycle after its pair: the
        # core's request is formed from these registers, not registered again,
        # so that it answers in L + 2.
        # (on carry chains even for two or three pools: a plain OR of registers
        # and constants is mapped into a chain of small LUTs in front of the queue)
        fields = Cat(w1_is_flush, choose_one_hot(zip(w1_pool_is, w1_addrs, strict=True), A, chain=True),
                     ~any_of(w1_hit), w1_pool, w1_tag, w1_hit, w1_pool_is)
        queue = RamQueue(m, len(fields), self._depth, "command_queue")
        request = Mux(queue.head_valid, queue.head, fields)
        # one flag for both ports, so that whether a request goes is a function
        # of five registers (one LUT): a FLUSH after a FREE that held a native
        # free back may wait a cycle it need not
        native_turn = Signal()
        waiting = queue.head_valid
        # (the head of the queue goes first, else the new one; the command that
        # does not go waits: new_command is new_free | new_flush)
        m.d.comb += [queue.w_data.eq(fields),
                     queue.pop.eq(waiting & ~native_turn),
                     queue.push.eq(new_command & (waiting | native_turn)),
                     self.req_free.eq(~native_turn & Mux(waiting, ~queue.head[0], new_free)),
                     self.req_flush.eq(~native_turn & Mux(waiting, queue.head[0], new_flush)),
                     Cat(self.req_free_addr, self.req_free_oor, self.req_free_pool, self.req_free_tag,
                         self.req_free_hit, self.req_flush_select).eq(request[1:]),
                     self.req_flush_pool.eq(self.req_free_pool)]
        m.d.sync += native_turn.eq((self.req_free & self.native_free_valid) |
                                   (self.req_flush & self.native_flush_valid))

        # the rest: address groups, then one flag a writable register
        # (none of W1's and W2's registers but the valid bits is reset: each is
        # read only beside its stage's valid bit; place and route showed the
        # reset, three LUTs into the address groups' resets, on the worst path
        # of eight pools and of GUARDED_DMA)
        w_match = predecode(m, w_addr, "w1")
        w1_full_word, w1_strb, w1_data = (Signal(width, name=f"w1_{what}", reset_less=True)
                                          for what, width in (("full_word", 1), ("strb", 4), ("data", 32)))
        # (a FREE or FLUSH is taken out in W2, by w1_is_command: the pair's
        # handshake then reaches w1_valid through no decode)
        m.d.sync += [w1_data.eq(w_data),
                     w1_full_word.eq(full_word), w1_strb.eq(w_strb)]
        writable = [r for r in self._map if r.writable]
        w2_is = {r.offset: Signal(name=f"w2_is_{r.name.lower()}", reset_less=True) for r in writable}
        w2_valid = Signal()
        w2_full_word, w2_strb, w2_data = (Signal(width, name=f"w2_{what}", reset_less=True)
                                          for what, width in (("full_word", 1), ("strb", 4), ("data", 32)))
        w2_command, w2_plain = (Signal(name=f"w2_{what}", reset_less=True) for what in ("command", "plain"))
        m.d.sync += [w2_valid.eq(w1_valid & ~w1_is_command), w2_full_word.eq(w1_full_word),
                     w2_strb.eq(w1_strb), w2_data.eq(w1_data)]
        for register in writable:
            m.d.sync += w2_is[register.offset].eq(w_match(register.offset))
        m.d.sync += [
            w2_command.eq(any_of(w_match(r.offset) for r in writable if r.access == "WO")),
            w2_plain.eq(any_of(w_match(r.offset) for r in writable if r.access != "WO")),
        ]

        def writing(name):
            return w2_is[self._map[name].offset]

        # ---- write, stage W3: carry out; the answer (the fast stream) -----------------
        # (the adapter's queue registers it)
        command = w2_valid & w2_full_word
        m.d.sync += [
            clear.eq(command & writing("CTRL") & w2_data[0]),
            pop.eq(command & writing("ERR_POP")),
            w1c.eq(Mux(w2_valid & writing("IRQ_STATUS") & w2_strb[0], w2_data[:irq_bits], 0)),
        ]
        with m.If(w2_valid & writing("IRQ_ENABLE") & w2_strb[0]):
            m.d.sync += irq_enable.eq(w2_data[:irq_bits])
        if guard:
            with m.If(w2_valid & writing("GUARD_CTRL") & w2_strb[0]):
                m.d.sync += self.guard_lock_on.eq(w2_data[0])
            m.d.sync += self.guard_unlock.eq(w2_valid & writing("GUARD_STATUS") & w2_strb[0] & w2_data[0])
        for pool, c in zip(cfg.pools, counters, strict=True):
            # byte by byte, as the strobes say
            threshold = c["LOW_WATER"]
            for byte in range(3):
                bits = slice(8 * byte, min(8 * byte + 8, LOW_WATER_BITS))
                with m.If(w2_valid & writing(f"POOL{pool.index}_LOW_WATER") & w2_strb[byte]):
                    m.d.sync += threshold[bits].eq(w2_data[bits])
        # a read-only or unmapped address, or a command written in part (a FREE
        # or FLUSH written in full went the other way)
        m.d.comb += [bus.w_ack.eq(w2_valid), bus.w_err.eq(~w2_plain & ~(w2_command & w2_full_word))]

        # ---- a register FREE's or FLUSH's answer: the pipeline's (the slow stream) -----
        axi_freed, axi_flushed = self.rsp_freed_cpu, self.rsp_flushed_cpu
        m.d.comb += [bus.w_slow_ack.eq(axi_freed | axi_flushed),
                     bus.w_slow_err.eq(~Mux(axi_freed, self.rsp_freed_ok, self.rsp_flushed_ok))]
        return m
