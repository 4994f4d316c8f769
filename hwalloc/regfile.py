"""The register file: SPEC §6's registers on the strobe bus, built from the
register map of :mod:`hwalloc.regs`.

It sees addresses and strobes only; what happens to the allocator is asked of
the core through a request port (register ALLOC and FREE) and learnt from the
core's responses (counters, the error log, interrupts). It never looks inside
the pipeline.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import __version__
from .axil import strobe_signature
from .model import Err
from .regs import HANDLE_FIELDS, constant_value, register_map

__all__ = ["RegisterFile"]


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
            "rsp_grant_valid": In(1), "rsp_grant_ok": In(1), "rsp_grant_err": In(4),
            "rsp_grant_pool": In(P), "rsp_grant_slot": In(config.slot_bits),
            "rsp_grant_tag": In(max(T, 1)), "rsp_grant_user": In(U), "rsp_grant_src": In(1),
            "rsp_grant_size": In(min(config.size_bits, 32)),
            "rsp_freed_valid": In(1), "rsp_freed_ok": In(1), "rsp_freed_err": In(4),
            "rsp_freed_pool": In(P), "rsp_freed_in_pool": In(1), "rsp_freed_user": In(U),
            "rsp_freed_src": In(1), "rsp_freed_addr": In(min(A, 32)), "rsp_freed_tag": In(max(T, 1)),
            "busy": In(1), "ready": In(1),
            "irq": Out(1),
        }))

    @property
    def register_map(self):
        return self._map

    def elaborate(self, platform):
        m = Module()
        cfg, bus = self._config, self.bus

        # ---- cycle counter ---------------------------------------------------------
        cycle = Signal(32)
        m.d.sync += cycle.eq(cycle + 1)

        # ---- error log: two banks, so two errors can enter in one cycle -------------
        depth = cfg.error_log_depth
        entry_bits = 4 + 1 + 1 + 8 + 8 + 32 + 32 + 32
        # (at least two rows a bank: a one-row memory would have a zero-width address)
        banks = [Memory(shape=entry_bits, depth=max(depth // 2, 2), init=[]) for _ in range(2)]

        def row(index):
            return index[1:] if depth > 2 else Const(0, 1)
        m.submodules.log_even, m.submodules.log_odd = banks
        bank_w = [bank.write_port() for bank in banks]
        bank_r = [bank.read_port() for bank in banks]
        head, tail = Signal(range(depth)), Signal(range(depth))
        count = Signal(range(depth + 1))
        err_count, err_dropped = Signal(32), Signal(32)
        pop = Signal()

        def entry(code, op, src, pool, tag, info, user, stamp):
            # code 4 | op 1 | source 1 | pool 8 | tag 8 | address or size 32 | user 32 | cycle 32
            return Cat(code, op, src, pool, Const(0, 8 - len(pool)), tag, Const(0, 8 - len(tag)),
                       info, Const(0, 32 - len(info)), user, Const(0, 32 - len(user)), stamp)

        stamp = (cycle - cfg.latency)[:32]
        free_err = self.rsp_freed_valid & (self.rsp_freed_err != Err.OK)
        alloc_err = self.rsp_grant_valid & ~self.rsp_grant_ok & (self.rsp_grant_err != Err.EXHAUSTED)
        free_entry = entry(self.rsp_freed_err, Const(1), self.rsp_freed_src,
                           Mux(self.rsp_freed_in_pool, self.rsp_freed_pool, 0xFF)[:8],
                           self.rsp_freed_tag, self.rsp_freed_addr, self.rsp_freed_user, stamp)
        alloc_entry = entry(self.rsp_grant_err, Const(0), self.rsp_grant_src,
                            self.rsp_grant_pool, Const(0, 1), self.rsp_grant_size,
                            self.rsp_grant_user, stamp)
        # Within a cycle the free was accepted before the alloc: it is logged first.
        first, second = Signal(entry_bits), Signal(entry_bits)
        n_new = Signal(2)
        m.d.comb += [
            first.eq(Mux(free_err, free_entry, alloc_entry)),
            second.eq(alloc_entry),
            n_new.eq(free_err + alloc_err),
        ]
        space = Signal(range(depth + 1))
        n_kept = Signal(2)
        m.d.comb += [space.eq(depth - count),
                     n_kept.eq(Mux(n_new > space, space, n_new))]
        tail_next = Mux(tail == depth - 1, 0, tail + 1)
        for b in range(2):
            # entry i lives in bank i % 2, row i // 2; two consecutive entries never
            # share a bank.
            first_here = tail[0] == b
            m.d.comb += [
                bank_w[b].addr.eq(row(Mux(first_here, tail, tail_next))),
                bank_w[b].data.eq(Mux(first_here, first, second)),
                bank_w[b].en.eq(Mux(first_here, n_kept >= 1, n_kept == 2)),
                bank_r[b].addr.eq(row(head)),
                bank_r[b].en.eq(1),
            ]
        m.d.sync += [
            tail.eq((tail + n_kept) % depth),
            count.eq(count + n_kept - (pop & (count != 0))),
            err_count.eq(err_count + n_kept),
            err_dropped.eq(err_dropped + (n_new - n_kept)),
        ]
        with m.If(pop & (count != 0)):
            m.d.sync += head.eq(Mux(head == depth - 1, 0, head + 1))
        # The head as shown: the state before the last edge, valid bit and data alike.
        head_valid, head_odd = Signal(), Signal()
        m.d.sync += [head_valid.eq(count != 0), head_odd.eq(head[0])]
        head_entry = Signal(entry_bits)
        m.d.comb += head_entry.eq(Mux(head_valid, Mux(head_odd, bank_r[1].data, bank_r[0].data), 0))
        code, op, src = head_entry[0:4], head_entry[4], head_entry[5]
        pool, tag = head_entry[6:14], head_entry[14:22]
        info, user, when = head_entry[22:54], head_entry[54:86], head_entry[86:118]
        err_head0 = Cat(tag, pool, Const(0, 2), src, op, code, Const(0, 7), head_valid)

        # ---- interrupt ---------------------------------------------------------------
        irq_status, irq_enable = Signal(3), Signal(3)
        irq_set = Signal(3)
        m.d.comb += irq_set.eq(Cat(
            n_new != 0,
            self.rsp_grant_valid & (self.rsp_grant_err == Err.EXHAUSTED),
            n_kept != n_new))
        # from registers only: no path from any input to the pin
        m.d.comb += self.irq.eq((irq_status & irq_enable).any())

        # ---- per-pool counters -----------------------------------------------------
        counters = []
        clear = Signal()
        for pool in cfg.pools:
            c = {name: Signal(32, name=f"{pool.name}_{name.lower()}")
                 for name in ("IN_USE", "HIGH_WATER", "ALLOCS", "FAILS", "FREES")}
            granted = self.rsp_grant_valid & self.rsp_grant_ok & (self.rsp_grant_pool == pool.index)
            failed = (self.rsp_grant_valid & (self.rsp_grant_err == Err.EXHAUSTED) &
                      (self.rsp_grant_pool == pool.index))
            freed = self.rsp_freed_valid & self.rsp_freed_ok & (self.rsp_freed_pool == pool.index)
            m.d.sync += c["IN_USE"].eq(c["IN_USE"] + granted - freed)
            with m.If(clear):
                m.d.sync += [c["HIGH_WATER"].eq(c["IN_USE"]), c["ALLOCS"].eq(0),
                             c["FAILS"].eq(0), c["FREES"].eq(0)]
            with m.Else():
                with m.If(c["IN_USE"] > c["HIGH_WATER"]):
                    m.d.sync += c["HIGH_WATER"].eq(c["IN_USE"])
                m.d.sync += [c["ALLOCS"].eq(c["ALLOCS"] + granted),
                             c["FAILS"].eq(c["FAILS"] + failed),
                             c["FREES"].eq(c["FREES"] + freed)]
            counters.append(c)
        with m.If(clear):
            m.d.sync += [err_count.eq(0), err_dropped.eq(0)]

        # ---- read decode -------------------------------------------------------------
        values = {"CTRL": 0, "ERR_POP": 0,
                  "STATUS": Cat(self.ready, self.busy), "IRQ_STATUS": irq_status,
                  "IRQ_ENABLE": irq_enable, "ERR_COUNT": err_count,
                  "ERR_DROPPED": err_dropped, "ERR_HEAD0": err_head0, "ERR_HEAD1": info,
                  "ERR_HEAD2": user, "ERR_HEAD3": when, "CYCLE": cycle}
        alloc_regs = {}
        r_data, r_found = Signal(32), Signal()
        aligned_r = bus.r_addr[:2] == 0
        with m.Switch(bus.r_addr):
            for register in self._map:
                with m.Case(register.offset):
                    m.d.comb += r_found.eq(1)
                    if register.access == "RO_ALLOC":
                        alloc_regs[register.offset] = register.pool
                        continue
                    if register.access == "WO":
                        continue
                    constant = constant_value(cfg, register, __version__)
                    if constant is not None:
                        value = constant
                    elif register.pool is not None:
                        value = counters[register.pool][register.kind]
                    else:
                        value = values[register.name]
                    m.d.comb += r_data.eq(value)
        is_alloc = Signal()
        m.d.comb += is_alloc.eq(Cat(bus.r_addr == off for off in alloc_regs).any())

        # register ALLOC: ask the pipeline, answer with its grant
        alloc_waiting = Signal()
        start_alloc = bus.r_req & is_alloc
        with m.If(start_alloc):
            m.d.sync += alloc_waiting.eq(1)
            for offset, index in alloc_regs.items():
                with m.If(bus.r_addr == offset):
                    m.d.sync += [self.req_alloc_pool.eq(index),
                                 self.req_alloc_size.eq(cfg.pools[index].slot_size)]
        m.d.sync += self.req_alloc.eq(start_alloc)
        axi_grant = self.rsp_grant_valid & self.rsp_grant_src
        handle = Signal(32)
        slot_f, tag_f = (_field(HANDLE_FIELDS, n) for n in ("SLOT", "TAG"))
        m.d.comb += handle.eq(Cat(self.rsp_grant_slot, Const(0, slot_f.width - len(self.rsp_grant_slot)),
                                  self.rsp_grant_tag if cfg.tag_bits else Const(0, 1),
                                  Const(0, tag_f.width - len(self.rsp_grant_tag)),
                                  self.rsp_grant_err, self.rsp_grant_ok))
        with m.If(axi_grant):
            m.d.sync += alloc_waiting.eq(0)
        m.d.comb += [
            bus.r_ack.eq(Mux(alloc_waiting, axi_grant, bus.r_req & ~is_alloc)),
            bus.r_data.eq(Mux(alloc_waiting, handle, r_data)),
            bus.r_err.eq(~alloc_waiting & (~r_found | ~aligned_r)),
        ]

        # ---- write decode ------------------------------------------------------------
        w_err, w1c = Signal(), Signal(3)
        full_word = bus.w_strb == 0b1111
        free_waiting, start_free = Signal(), Signal()
        m.d.comb += w_err.eq(1)
        with m.Switch(bus.w_addr):
            for register in self._map:
                with m.Case(register.offset):
                    if register.name == "IRQ_STATUS":
                        m.d.comb += [w_err.eq(0),
                                     w1c.eq(Mux(bus.w_req & bus.w_strb[0], bus.w_data[:3], 0))]
                    elif register.name == "IRQ_ENABLE":
                        m.d.comb += w_err.eq(0)
                        with m.If(bus.w_req & bus.w_strb[0]):
                            m.d.sync += irq_enable.eq(bus.w_data[:3])
                    elif register.name == "CTRL":
                        m.d.comb += [w_err.eq(~full_word),
                                     clear.eq(bus.w_req & full_word & bus.w_data[0])]
                    elif register.name == "ERR_POP":
                        m.d.comb += [w_err.eq(~full_word), pop.eq(bus.w_req & full_word)]
                    elif register.kind == "FREE":
                        pool = cfg.pools[register.pool]
                        slot = bus.w_data[slot_f.lsb:slot_f.lsb + slot_f.width]
                        tag = bus.w_data[tag_f.lsb:tag_f.lsb + max(cfg.tag_bits, 1)]
                        m.d.comb += [w_err.eq(~full_word), start_free.eq(bus.w_req & full_word)]
                        with m.If(start_free):
                            m.d.sync += [
                                self.req_free_addr.eq(pool.base + (slot << pool.offset_bits)),
                                self.req_free_tag.eq(tag if cfg.tag_bits else 0),
                                self.req_free_oor.eq(slot >= pool.slots),
                                self.req_free_pool.eq(pool.index),
                            ]
        # set wins over clear: an event in the cycle of a W1C write is not lost
        m.d.sync += irq_status.eq((irq_status & ~w1c) | irq_set)
        m.d.sync += self.req_free.eq(start_free)
        axi_freed = self.rsp_freed_valid & self.rsp_freed_src
        with m.If(start_free):
            m.d.sync += free_waiting.eq(1)
        with m.If(axi_freed):
            m.d.sync += free_waiting.eq(0)
        m.d.comb += [
            bus.w_ack.eq(Mux(free_waiting, axi_freed, bus.w_req & ~start_free)),
            bus.w_err.eq(Mux(free_waiting, ~self.rsp_freed_ok, w_err)),
        ]
        return m
