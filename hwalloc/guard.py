"""The access guard (SPEC §8), its address side: what an AXI4 burst touches.

:class:`BurstDecode` takes one AR or AW burst a cycle (address without tag
bits, ``len``, ``size``, ``burst``, write) and, five edges later, says what the
burst touches: the pool or region its first byte is in, the slot of a pool,
and the verdicts that depend on the address only (SPEC §5 order: ACCESS_OUTSIDE,
ACCESS_RO, ACCESS_BOUNDS). The verdicts that depend on the allocator's state
(ACCESS_FREE, ACCESS_TAG) and the lock (ACCESS_LOCKED) come after it, from the
guard's view of the slot state; the reference is
:func:`hwalloc.model.judge_access`.

Stages (edge t takes the burst; each stage's outputs are registers)::

    1  beat - 1, len << size; whether the burst is one AXI4 allows, in pieces
    2  the last byte: INCR (addr | beat - 1) + (len << size), FIXED addr | beat - 1,
       WRAP its container
    3  per pool and region: the first byte in it, the last too, the burst
       reaching into it (constant compares on carry chains); per pool, the
       first byte's slot and whether the last byte's is the same
    4  the first byte's area, as flags: inside, stays, enters another, ro,
       crosses a slot; its pool (one-hot) and slot
    5  the verdict

The bytes a burst touches (SPEC §8): INCR from the address to the end of its
last beat, FIXED one beat, WRAP its wrap container. ``(addr | (beat - 1)) +
(len << size)`` is the last byte of an INCR burst whose first beat starts
unaligned, without a subtraction; a WRAP burst's container mask is
``(len << size) | (beat - 1)``, since ``len + 1`` is a power of two.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._rtl import at_least, choose_one_hot, equal
from .model import Burst, Err

__all__ = ["BurstDecode", "DECODE_STAGES"]

#: Edges from a burst's capture to :class:`BurstDecode`'s outputs.
DECODE_STAGES = 5
#: AXI4 ``len`` bits.
LEN_BITS = 8


def _areas(config):
    """Every pool and region, pools first (a pool's index is its area's)."""
    return [*config.pools, *config.regions]


class BurstDecode(wiring.Component):
    """The address side of the guard's check, pipelined (see the module).

    Ports
    -----
    ``valid``, ``addr`` (A bits), ``len``, ``size``, ``burst``, ``write``:
        the burst, taken at each edge where ``valid`` is set.
    ``out_valid``, ``out_write``: that burst, :data:`DECODE_STAGES` edges later.
    ``out_err``: ACCESS_OUTSIDE, ACCESS_RO or ACCESS_BOUNDS, or OK (0): the
        first of those that applies, in SPEC §5's order.
    ``out_pool`` (one-hot, a bit per pool), ``out_slot``: the pool and slot
        of a burst that is OK so far (0 otherwise, and for a region).
    """

    def __init__(self, config):
        self._config = config
        self._slot_bits = config.slot_bits
        super().__init__({
            "valid": In(1), "addr": In(config.addr_width), "len": In(LEN_BITS), "size": In(3),
            "burst": In(2), "write": In(1),
            "out_valid": Out(1), "out_write": Out(1), "out_err": Out(4),
            "out_pool": Out(len(config.pools)), "out_slot": Out(config.slot_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A = cfg.addr_width
        areas = _areas(cfg)
        npools = len(cfg.pools)

        # ---- stage 1: the burst's shape, and its legality in pieces ---------------
        mask = Signal(7)                       # beat - 1: size <= 6
        spread = Signal(LEN_BITS + 6)          # len << size
        # beat - 1 as a thermometer code: bit i is size > i (a LUT each, no adder)
        beat_mask = Cat(self.size > i for i in range(7))
        v0, w0, addr0, burst0 = Signal(), Signal(), Signal(A), Signal(2)
        size_ok0, wrap_len0, aligned0 = Signal(), Signal(), Signal()
        m.d.sync += [
            v0.eq(self.valid), w0.eq(self.write), addr0.eq(self.addr), burst0.eq(self.burst),
            mask.eq(beat_mask), spread.eq(self.len << self.size),
            size_ok0.eq(self.size <= cfg.guard.max_size),
            wrap_len0.eq((self.len == 1) | (self.len == 3) | (self.len == 7) | (self.len == 15)),
            aligned0.eq(~(self.addr[:7] & beat_mask).any()),
        ]
        container = spread | mask              # a WRAP burst's: len + 1 is a power of two

        # ---- stage 2: first and last byte ---------------------------------------------
        v1, w1, ok1 = Signal(), Signal(), Signal()
        first1 = Signal(A)
        last1 = Signal(max(A, LEN_BITS + 6) + 1)   # bits A and up: past the address space
        m.d.sync += [v1.eq(v0), w1.eq(w0),
                     ok1.eq(size_ok0 & Mux(burst0 == Burst.WRAP, wrap_len0 & aligned0, burst0 != 3))]
        with m.Switch(burst0):
            with m.Case(Burst.FIXED):
                m.d.sync += [first1.eq(addr0), last1.eq(addr0 | mask)]
            with m.Case(Burst.WRAP):
                m.d.sync += [first1.eq((addr0 | container) ^ container), last1.eq(addr0 | container)]
            with m.Default():
                m.d.sync += [first1.eq(addr0), last1.eq((addr0 | mask) + spread)]

        # ---- stage 3: per area and pool, one carry chain (or two) and a LUT each ----
        v2, w2, ok2 = Signal(), Signal(), Signal()
        m.d.sync += [v2.eq(v1), w2.eq(w1), ok2.eq(ok1 & ~last1[A:].any())]
        first_in = Signal(len(areas))    # the first byte is in area k
        stays = Signal(len(areas))       # ... and so is the last
        enters = Signal(len(areas))      # the first byte is before area k's end, the last past its base
        for k, area in enumerate(areas):
            before_end = ~at_least(first1, area.end)
            m.d.sync += [
                first_in[k].eq(at_least(first1, area.base) & before_end),
                stays[k].eq(at_least(first1, area.base) & ~at_least(last1, area.end)),
                enters[k].eq(before_end & at_least(last1, area.base)),
            ]
        slots, same = [], Signal(npools)
        for pool in cfg.pools:
            ob = pool.offset_bits
            slot = Signal(self._slot_bits, name=f"{pool.name}_slot2")
            # the base is slot-aligned: the slot index is the address bits above the
            # offset, minus the base's (wrapping outside the pool, where it is unused)
            m.d.sync += [slot.eq(first1[ob:] - (pool.base >> ob)),
                         same[pool.index].eq(equal(first1[ob:], last1[ob:]))]
            slots.append(slot)

        # ---- stage 4: the first byte's area, as flags --------------------------------
        v3, w3, ok3 = Signal(), Signal(), Signal()
        inside3, stays3, enters3, ro3, bounds3 = Signal(), Signal(), Signal(), Signal(), Signal()
        pool3, slot3 = Signal(npools), Signal(self._slot_bits)
        in_pool = first_in[:npools]
        ro = Cat(Const(area.access == "ro") for area in areas)
        m.d.sync += [
            v3.eq(v2), w3.eq(w2), ok3.eq(ok2),
            inside3.eq(first_in.any()), stays3.eq((first_in & stays).any()), enters3.eq(enters.any()),
            ro3.eq((first_in & ro).any()), bounds3.eq((in_pool & ~same).any()),
            pool3.eq(in_pool),
            slot3.eq(choose_one_hot(zip(in_pool, slots, strict=True), self._slot_bits)),
        ]

        # ---- stage 5: the verdict, in SPEC §5's order -------------------------------
        v4, w4 = Signal(), Signal()
        err4, pool4, slot4 = Signal(4), Signal(npools), Signal(self._slot_bits)
        m.d.sync += [v4.eq(v3), w4.eq(w3), pool4.eq(pool3), slot4.eq(slot3)]
        refuse_outside = int(cfg.guard.outside == "refuse")
        with m.If(~ok3 | (inside3 & ~stays3) | (~inside3 & (enters3 | refuse_outside))):
            m.d.sync += err4.eq(Err.ACCESS_OUTSIDE)
        with m.Elif(w3 & ro3):
            m.d.sync += err4.eq(Err.ACCESS_RO)
        with m.Elif(bounds3):
            m.d.sync += err4.eq(Err.ACCESS_BOUNDS)
        with m.Else():
            m.d.sync += err4.eq(Err.OK)
        m.d.comb += [self.out_valid.eq(v4), self.out_write.eq(w4), self.out_err.eq(err4),
                     self.out_pool.eq(Mux(err4 == Err.OK, pool4, 0)),
                     self.out_slot.eq(Mux(err4 == Err.OK, slot4, 0))]
        return m
