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

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._rtl import RamQueue, ShiftQueue, Skid, at_least, choose_one_hot, equal
from .model import Burst, Err

__all__ = ["AccessGuard", "BurstDecode", "DECODE_STAGES", "GUARD_LATENCY", "LOG_DELAY",
           "axi4_members"]

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
        of the burst's first byte (no bit set for a region or outside every
        pool); meaningful when ``out_err`` is OK. Registers, so that the guard
        asks its view of the slot with no logic in front of the RAMs.
    ``out_log_pool``: the index of the pool that holds the burst's address
        (its first beat's, which a WRAP burst need not start its container
        with), 0xFF if none: what a refusal's log entry names (SPEC §6).
    """

    def __init__(self, config):
        self._config = config
        self._slot_bits = config.slot_bits
        super().__init__({
            "valid": In(1), "addr": In(config.addr_width), "len": In(LEN_BITS), "size": In(3),
            "burst": In(2), "write": In(1),
            "out_valid": Out(1), "out_write": Out(1), "out_err": Out(4),
            "out_pool": Out(len(config.pools)), "out_slot": Out(config.slot_bits),
            "out_log_pool": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        A = cfg.addr_width
        areas = _areas(cfg)
        npools = len(cfg.pools)

        # ---- stage 1: the burst's shape, and its legality in pieces ---------------
        mask = Signal(7, reset_less=True)                  # beat - 1: size <= 6
        spread = Signal(LEN_BITS + 6, reset_less=True)     # len << size
        # beat - 1 as a thermometer code: bit i is size > i (a LUT each, no adder)
        beat_mask = Cat(self.size > i for i in range(7))
        # (payload registers are not reset: a reset would be a LUT input more)
        v0 = Signal()
        w0, addr0, burst0 = Signal(reset_less=True), Signal(A, reset_less=True), Signal(2, reset_less=True)
        size_ok0, wrap_len0 = Signal(reset_less=True), Signal(reset_less=True)
        size0 = Signal(3, reset_less=True)
        zeros0 = Signal(7, reset_less=True)    # bit i: the address's low i bits are 0
        m.d.sync += [
            v0.eq(self.valid), w0.eq(self.write), addr0.eq(self.addr), burst0.eq(self.burst),
            mask.eq(beat_mask), spread.eq(self.len << self.size),
            size_ok0.eq(self.size <= cfg.guard.max_size),
            wrap_len0.eq((self.len == 1) | (self.len == 3) | (self.len == 7) | (self.len == 15)),
            size0.eq(self.size),
            # (each on a carry chain of its own: a LUT tree would share a chain of ORs)
            zeros0.eq(Cat(equal(self.addr[:i], Const(0, i)) if 0 < i <= A else Const(int(i == 0), 1)
                          for i in range(7))),
        ]
        container = spread | mask              # a WRAP burst's: len + 1 is a power of two

        # ---- stage 2: first and last byte ---------------------------------------------
        v1, w1, ok1 = Signal(), Signal(), Signal()
        first1, start1 = Signal(A), Signal(A)
        m.d.sync += start1.eq(addr0)
        last1 = Signal(max(A, LEN_BITS + 6) + 1)   # bits A and up: past the address space
        m.d.sync += [v1.eq(v0), w1.eq(w0),
                     ok1.eq(size_ok0 & Mux(burst0 == Burst.WRAP, wrap_len0 & zeros0.bit_select(size0, 1),
                                           burst0 != 3))]
        with m.Switch(burst0):
            with m.Case(Burst.FIXED):
                m.d.sync += [first1.eq(addr0), last1.eq(addr0 | mask)]
            with m.Case(Burst.WRAP):
                m.d.sync += [first1.eq((addr0 | container) ^ container), last1.eq(addr0 | container)]
            with m.Default():
                m.d.sync += [first1.eq(addr0), last1.eq((addr0 | mask) + spread)]

        # ---- stage 3: per area and pool, one carry chain (or two) and a LUT each ----
        v2, w2, ok2 = Signal(), Signal(), Signal()
        # (AXI4: a burst never crosses a 4 KiB boundary; only an INCR one can)
        page_same = equal(first1[12:A], last1[12:A]) if A > 12 else Const(1)
        m.d.sync += [v2.eq(v1), w2.eq(w1), ok2.eq(ok1 & ~last1[A:].any() & page_same)]
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
        start_in = Signal(npools)       # the burst's address is in pool p
        for pool in cfg.pools:
            m.d.sync += start_in[pool.index].eq(at_least(start1, pool.base) & ~at_least(start1, pool.end))
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
        pool3, slot3, log_pool3 = Signal(npools), Signal(self._slot_bits), Signal(8)
        in_pool = first_in[:npools]
        ro = Cat(Const(area.access == "ro") for area in areas)
        m.d.sync += [
            v3.eq(v2), w3.eq(w2), ok3.eq(ok2),
            inside3.eq(first_in.any()), stays3.eq((first_in & stays).any()), enters3.eq(enters.any()),
            ro3.eq((first_in & ro).any()), bounds3.eq((in_pool & ~same).any()),
            pool3.eq(in_pool),
            log_pool3.eq(choose_one_hot([(start_in[p], Const(p, 8)) for p in range(npools)]
                                        + [(~start_in.any(), Const(0xFF, 8))], 8)),
            slot3.eq(choose_one_hot(zip(in_pool, slots, strict=True), self._slot_bits)),
        ]

        # ---- stage 5: the verdict, in SPEC §5's order -------------------------------
        v4, w4 = Signal(), Signal()
        err4, pool4, slot4, log_pool4 = Signal(4), Signal(npools), Signal(self._slot_bits), Signal(8)
        m.d.sync += [v4.eq(v3), w4.eq(w3), pool4.eq(pool3), slot4.eq(slot3), log_pool4.eq(log_pool3)]
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
                     self.out_pool.eq(pool4), self.out_slot.eq(slot4), self.out_log_pool.eq(log_pool4)]
        return m


# ---- the guard --------------------------------------------------------------

#: Edges from the question to the guard's view of a slot to its answer
#: (:class:`hwalloc.core.AllocatorCore`'s ``view_*`` ports).
VIEW_STAGES = 2
#: G: a burst whose AR or AW handshake is at edge t can be taken on ``m_axi``
#: at edge t + G at the earliest (SPEC §8's added latency).
GUARD_LATENCY = DECODE_STAGES + VIEW_STAGES + 4
#: Edges from a burst's handshake to the edge at which the register file takes
#: its refusal (the log entry, the counters, the interrupt): the verdict's
#: edge, a register stage before the burst enters its queue.
LOG_DELAY = DECODE_STAGES + VIEW_STAGES + 3
#: Bursts of one direction in the guard at once (in its pipeline or waiting
#: for ``m_axi``): enough for one a clock while ``m_axi`` takes one a clock.
QUEUE_DEPTH = GUARD_LATENCY + 2
#: Forwarded bursts of one direction whose response has not come back, at most
#: (a four-bit count, so that its flags are a LUT each).
OUTSTANDING = 15
#: AXI4 response codes.
OKAY, SLVERR = 0, 2

#: The AXI4 signals a master drives ("m") or a slave drives ("s"), per channel,
#: as (name, width or what it is named after).
AXI4_SIGNALS = (
    *((f"aw{n}", w, "m") for n, w in (("id", "id"), ("addr", "addr"), ("len", 8), ("size", 3),
                                      ("burst", 2), ("lock", 1), ("cache", 4), ("prot", 3),
                                      ("qos", 4), ("valid", 1))),
    ("awready", 1, "s"),
    ("wdata", "data", "m"), ("wstrb", "strb", "m"), ("wlast", 1, "m"), ("wvalid", 1, "m"),
    ("wready", 1, "s"),
    ("bid", "id", "s"), ("bresp", 2, "s"), ("bvalid", 1, "s"), ("bready", 1, "m"),
    *((f"ar{n}", w, "m") for n, w in (("id", "id"), ("addr", "addr"), ("len", 8), ("size", 3),
                                      ("burst", 2), ("lock", 1), ("cache", 4), ("prot", 3),
                                      ("qos", 4), ("valid", 1))),
    ("arready", 1, "s"),
    ("rid", "id", "s"), ("rdata", "data", "s"), ("rresp", 2, "s"), ("rlast", 1, "s"),
    ("rvalid", 1, "s"), ("rready", 1, "m"),
)
#: The fields of an address channel that the guard passes on unchanged.
_PASSED = ("id", "len", "size", "burst", "lock", "cache", "prot", "qos")


def axi4_members(prefix, *, addr_width, data_bytes, id_width, master):
    """The members of an AXI4 port ``prefix``_* (SPEC §8), as its master
    (``master``) or its slave sees them."""
    widths = {"id": id_width, "addr": addr_width, "data": 8 * data_bytes, "strb": data_bytes}
    return {f"{prefix}_{name}": (Out if (by == "m") == master else In)(widths.get(width, width))
            for name, width, by in AXI4_SIGNALS}


class AccessGuard(wiring.Component):
    """The access guard of SPEC §8 between ``s_axi`` (the bus master) and
    ``m_axi`` (memory), with the allocator's view ports.

    Each AR and AW burst goes through :class:`BurstDecode` (its bytes, pool or
    region and slot: OUTSIDE, RO, BOUNDS), then asks the core's view of that
    slot (held, tag: FREE, TAG), then the lock (LOCKED, writes). The verdict's
    edge is ``LOG_DELAY`` edges after the handshake; at the next, the burst
    enters the direction's queue, whose head is ``m_axi``'s address channel
    (registers). The pipeline never stalls: ``*ready`` says whether the queue
    has room for every burst in flight.

    A refused burst enters the same queue and waits at its head until every
    burst forwarded before it has answered, so that its answer (``len`` + 1
    zero beats with SLVERR, or B SLVERR once its W beats are drained) keeps
    AXI's order; bursts behind it may go out while it is answered, and
    memory's answers to them wait behind its answer (R's and B's ready are
    held meanwhile). This is stricter than AXI asks (per ID) and costs nothing
    while nothing is refused.

    W beats follow the verdicts in AW order (a queue of one bit a burst): a
    forwarded burst's beats go to ``m_axi`` through a register stage, a refused
    one's are taken and dropped. R and B come back through a register stage
    each, the refusals' answers merged in.

    Register-file side: ``lock_on`` (GUARD_CTRL.LOCK_ON_VIOLATION), ``unlock``
    (a pulse), ``locked``; per direction ``ar``/``aw``, a registered event a
    burst judged: ``*_checked``, ``*_refused`` and the log entry's fields.
    """

    def __init__(self, config):
        self._config = config
        g, A, T = config.guard, config.addr_width, config.tag_bits
        members = {}
        members.update(axi4_members("s_axi", addr_width=A + T, data_bytes=g.data_bytes,
                                    id_width=g.id_width, master=False))
        members.update(axi4_members("m_axi", addr_width=A, data_bytes=g.data_bytes,
                                    id_width=g.id_width, master=True))
        for d in ("ar", "aw"):
            members.update({
                f"view_{d}_pool": Out(len(config.pools)), f"view_{d}_slot": Out(config.slot_bits),
                f"view_{d}_held": In(1), f"view_{d}_next": In(max(T, 1)),
                f"{d}_checked": Out(1), f"{d}_refused": Out(1), f"{d}_err": Out(4),
                f"{d}_id": Out(g.id_width), f"{d}_addr": Out(min(A, 32)), f"{d}_tag": Out(max(T, 1)),
                f"{d}_pool": Out(8),
            })
        members.update({"lock_on": In(1), "unlock": In(1), "locked": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ar = self._judge(m, "ar")
        aw = self._judge(m, "aw")

        # ---- the verdict's edge: the lock (degraded mode), AR before AW ---------
        # (the AR of this edge locks the guard for the AW of the same edge)
        locked = self.locked
        ar_refused = ar.refuses
        aw_locked = aw.valid & (locked | (self.lock_on & ar_refused))
        aw_err = Mux(aw_locked, Err.ACCESS_LOCKED, aw.err)
        aw_refused = aw_locked | aw.refuses
        m.d.sync += locked.eq((locked & ~self.unlock) | (self.lock_on & (ar_refused | aw_refused)))
        for d, side, err, refused in (("ar", ar, ar.err, ar_refused), ("aw", aw, aw_err, aw_refused)):
            m.d.sync += [getattr(self, f"{d}_checked").eq(side.valid),
                         getattr(self, f"{d}_refused").eq(refused),
                         getattr(self, f"{d}_err").eq(err),
                         getattr(self, f"{d}_id").eq(side.fields["id"]),
                         getattr(self, f"{d}_addr").eq(side.addr[:32]),
                         getattr(self, f"{d}_tag").eq(side.tag),
                         getattr(self, f"{d}_pool").eq(side.log_pool)]
            # the burst enters its queue from a register stage of its own: the
            # queue's next-head flags (see _address_out) are then formed from
            # registers, where the verdict behind the lock would come first
            landed, landing = Signal(name=f"{d}_landed"), Signal(1 + len(side.entry), name=f"{d}_landing",
                                                                   reset_less=True)
            m.d.sync += [landed.eq(side.valid), landing.eq(Cat(~refused, side.entry))]
            m.d.comb += [side.queue.push.eq(landed), side.queue.w_data.eq(landing)]
        self._reads(m, ar)
        self._writes(m, aw, forward=~aw_refused)
        return m

    def _judge(self, m, d):
        """One direction's check up to the verdict's edge (less the lock):
        returns its registers at that edge and its queue."""
        cfg = self._config
        A, T = cfg.addr_width, cfg.tag_bits
        port = {name: getattr(self, f"s_axi_{d}{name}") for name in (*_PASSED, "addr", "valid", "ready")}
        # bursts in the pipeline or the queue (``ready`` is driven from it)
        used = Signal(range(QUEUE_DEPTH + 1), name=f"{d}_used")
        accept = port["valid"] & port["ready"]

        m.submodules[f"{d}_decode"] = decode = BurstDecode(self._config)
        m.d.comb += [decode.valid.eq(accept), decode.addr.eq(port["addr"][:A]),
                     decode.len.eq(port["len"]), decode.size.eq(port["size"]),
                     decode.burst.eq(port["burst"]), decode.write.eq(d == "aw")]

        def delayed(value, edges, name):
            for k in range(edges):
                stage = Signal.like(value, name=f"{d}_{name}_{k}", reset_less=True)
                m.d.sync += stage.eq(value)
                value = stage
            return value

        # what the burst carries, alongside the check: the fields passed on, the
        # address without tag bits, the tag
        fields = Cat(*(port[name] for name in _PASSED))
        carried = Cat(fields, port["addr"][:A], port["addr"][A:] if T else Const(0, 1))
        carried = delayed(carried, 1, "carried_in")
        # the presented tag + 1, as the view shows a held slot's (the tag of its
        # next grant), formed from a register and carried beside the rest
        presented = carried[len(fields) + A:]
        presented_next = delayed((presented + 1)[:len(presented)], DECODE_STAGES + VIEW_STAGES,
                                 "presented_next")
        carried = delayed(carried, DECODE_STAGES + VIEW_STAGES, "carried")
        # the view is asked straight from the decode's registers
        m.d.comb += [getattr(self, f"view_{d}_pool").eq(decode.out_pool),
                     getattr(self, f"view_{d}_slot").eq(decode.out_slot)]
        # the decode's answers, waiting for the view's
        valid = decode.out_valid
        for k in range(VIEW_STAGES + 1):
            stage = Signal(name=f"{d}_valid_d{k}")
            m.d.sync += stage.eq(valid)
            valid = stage
        err_d = delayed(decode.out_err, VIEW_STAGES + 1, "decode_err")
        in_pool_d = delayed(decode.out_pool.any(), VIEW_STAGES + 1, "in_pool")
        log_pool_d = delayed(decode.out_log_pool, VIEW_STAGES + 1, "log_pool")

        # ---- V1: FREE and TAG from the view -----------------------------------------
        out = SimpleNamespace()
        out.valid = Signal(name=f"{d}_v1_valid")
        out.err = Signal(4, name=f"{d}_v1_err")
        out.refuses = Signal(name=f"{d}_v1_refuses")     # valid, and err != OK: a flag
        out.carried = Signal(len(carried), name=f"{d}_v1_carried", reset_less=True)
        out.log_pool = Signal(8, name=f"{d}_v1_log_pool", reset_less=True)
        held, view_next = getattr(self, f"view_{d}_held"), getattr(self, f"view_{d}_next")
        mismatch = Const(0) if not T else ~equal(presented_next[:T], view_next[:T])
        m.d.sync += [out.valid.eq(valid), out.carried.eq(carried), out.log_pool.eq(log_pool_d),
                     out.err.eq(Mux(err_d != Err.OK, err_d,
                                    Mux(in_pool_d & ~held, Err.ACCESS_FREE,
                                        Mux(in_pool_d & mismatch, Err.ACCESS_TAG, Err.OK)))),
                     out.refuses.eq(valid & ((err_d != Err.OK) | (in_pool_d & (~held | mismatch))))]
        widths = {name: len(port[name]) for name in _PASSED}
        out.fields, lo = {}, 0
        for name in _PASSED:
            out.fields[name] = out.carried[lo:lo + widths[name]]
            lo += widths[name]
        out.addr = out.carried[lo:lo + A]
        out.tag = out.carried[lo + A:]
        out.entry = Cat(out.carried[:lo + A])       # what m_axi is given
        out.queue = _BurstQueue(m, len(out.entry), f"{d}_queue")
        out.used, out.accept = used, accept
        return out

    def _head(self, side):
        """The queue head's fields: whether it is forwarded, and m_axi's."""
        head = side.queue.head
        fields, lo = {}, 1
        for name in _PASSED:
            width = len(side.fields[name])
            fields[name] = head[lo:lo + width]
            lo += width
        fields["addr"] = head[lo:lo + self._config.addr_width]
        return head[0], fields

    def _address_out(self, m, d, side, *, answered, answer_free):
        """Drive m_axi's AR or AW from the queue head, pop it, and count the
        forwarded bursts not yet answered (``answered``: one is, now); returns
        (its handshake, the start of a refusal's answer, the head's fields).
        ``answer_free`` (the caller drives it) says whether a refusal's answer
        may start in the next cycle if none starts now.

        Whether the head may go out (forwarded, fewer than OUTSTANDING
        unanswered) and whether it may be answered (refused, none unanswered,
        ``answer_free``) are registers of their own, formed from the next head
        and counts: place and route showed the pop, three LUTs after those
        flags and m_axi's ready, reach every entry of the queue at the end of
        the guarded core's worst path. The pop is a LUT of two flags and the
        ready now; ``*valid`` is a register."""
        forward, fields = self._head(side)
        q = side.queue
        valid, ready = getattr(self, f"m_axi_{d}valid"), getattr(self, f"m_axi_{d}ready")
        # the count's "none" and "full" as registers of their own
        outstanding = Signal(range(OUTSTANDING + 1), name=f"{d}_outstanding")
        none, full = Signal(name=f"{d}_outstanding_none", init=1), Signal(name=f"{d}_outstanding_full")
        # (and "one" and "one short of full", which the flags below are formed from)
        one, nearly = Signal(name=f"{d}_outstanding_one"), Signal(name=f"{d}_outstanding_nearly_full")
        sends, refused = Signal(name=f"{d}_head_sends"), Signal(name=f"{d}_head_refused")
        m.d.comb += [getattr(self, f"m_axi_{d}{name}").eq(value) for name, value in fields.items()]
        m.d.comb += valid.eq(sends)
        sent = valid & ready
        # (the pop from a copy of ``sends`` of its own: from ``sends`` the
        # mapper shared the handshake's AND with the count's and chained a LUT
        # more in front of the queues)
        sends_copy = Signal(name=f"{d}_head_sends_copy")
        m.d.comb += q.pop.eq((sends_copy & ready) | refused)
        # the flags from the count's own compares and the two events: a LUT each
        counted = _up_down(outstanding, sent, answered)
        m.d.sync += [outstanding.eq(counted),
                     none.eq(Mux(sent == answered, none, ~sent & one)),
                     full.eq(Mux(sent == answered, full, sent & nearly)),
                     one.eq(_up_down(outstanding, sent, answered, is_=1)),
                     nearly.eq(_up_down(outstanding, sent, answered, is_=OUTSTANDING - 1))]

        # The two flags at the next edge, in the three cases of this edge (the
        # head sent, refused and answered, or kept), each a LUT of its own from
        # registers, the next heads and ``answered`` (so that the mapper cannot
        # fold the ready into them); the pop's terms choose last.
        def kept(name, value):
            flag = Signal(name=f"{d}_{name}", attrs={"keep": 1})
            m.d.comb += flag.eq(value)
            return flag
        answered = kept("answered", answered)
        (popped_valid, popped), (kept_valid, kept_head) = q.head_after(True), q.head_after(False)
        # the next head forwarded or refused, popped now or not
        goes_popped = kept("next_goes_popped", popped_valid & popped[0])
        goes_kept = kept("next_goes_kept", kept_valid & kept_head[0])
        stops_popped = kept("next_refused_popped", popped_valid & ~popped[0])
        stops_kept = kept("next_refused_kept", kept_valid & ~kept_head[0])
        # sends: the next head forwarded, and the count not full (a sent burst
        # fills it at OUTSTANDING - 1 unless one is answered; an answer empties it)
        sends_sent = kept("sends_sent", goes_popped & ~Mux(answered, full, nearly))
        sends_refused = kept("sends_refused", goes_popped & (answered | ~full))
        sends_kept = kept("sends_kept", goes_kept & (answered | ~full))
        # (the copy chooses by its own handshake, the same value: a copy with
        # the same inputs would be merged into ``sends``)
        for flag in (sends, sends_copy):
            m.d.sync += flag.eq(Mux(flag & ready, sends_sent, Mux(refused, sends_refused, sends_kept)))
        # refused: the next head refused, none unanswered, its answer free (a
        # refusal whose answer starts now keeps the next one waiting a cycle)
        refused_sent = kept("refused_sent", stops_popped & none & answer_free)
        refused_kept = kept("refused_kept", stops_kept & Mux(answered, one, none) & answer_free)
        m.d.sync += refused.eq(~refused & Mux(sent, answered & refused_sent, refused_kept))
        return sent, refused, fields

    def _reads(self, m, side):
        g = self._config.guard
        busy, answer_id, left = Signal(name="r_refusal_busy"), Signal(g.id_width), Signal(8)
        answer_free = Signal(name="r_answer_free", attrs={"keep": 1})
        answered = self.m_axi_rvalid & self.m_axi_rready & self.m_axi_rlast
        sent, start, fields = self._address_out(m, "ar", side, answered=answered, answer_free=answer_free)
        m.d.comb += self.s_axi_arready.eq(side.used < QUEUE_DEPTH)
        m.d.sync += side.used.eq(_up_down(side.used, side.accept, side.queue.pop))

        # R: memory's beats, or a refusal's zeros, through one register stage
        # (memory's wait while a refusal is answered: bursts forwarded behind
        # it answer after it)
        width = g.id_width + 8 * g.data_bytes + 2 + 1
        skid = Skid(m, width, "r_skid")
        # (whether ``left`` is 0, as a register of its own)
        last_beat = Signal(name="r_refusal_last", init=1)
        m.d.comb += [
            skid.in_valid.eq(busy | self.m_axi_rvalid),
            skid.in_data.eq(Mux(busy, Cat(answer_id, Const(0, 8 * g.data_bytes), Const(SLVERR, 2), last_beat),
                                Cat(self.m_axi_rid, self.m_axi_rdata, self.m_axi_rresp, self.m_axi_rlast))),
            self.m_axi_rready.eq(skid.in_ready & ~busy),
            skid.out_ready.eq(self.s_axi_rready),
            self.s_axi_rvalid.eq(skid.out_valid),
            Cat(self.s_axi_rid, self.s_axi_rdata, self.s_axi_rresp, self.s_axi_rlast).eq(skid.out_data),
            # (free at the next edge: not busy, or its last beat taken now)
            answer_free.eq(~busy | (skid.in_ready & last_beat)),
        ]
        m.d.sync += busy.eq(start | (busy & ~(skid.in_ready & last_beat)))
        with m.If(start):
            m.d.sync += [answer_id.eq(fields["id"]), left.eq(fields["len"]), last_beat.eq(fields["len"] == 0)]
        with m.Elif(busy & skid.in_ready):
            m.d.sync += [left.eq(left - 1), last_beat.eq(left == 1)]

    def _writes(self, m, side, *, forward):
        g = self._config.guard
        # W: the verdicts in AW order, a bit each; beats of a burst wait for its verdict
        verdicts = ShiftQueue(m, 1, QUEUE_DEPTH, "w_verdicts", reset_data=False)
        m.d.comb += [verdicts.push.eq(side.valid), verdicts.w_data.eq(forward)]
        # bursts accepted on AW whose W beats have not all come: the verdicts' room
        w_open = Signal(range(QUEUE_DEPTH + 1), name="w_open")
        m.d.comb += self.s_axi_awready.eq((side.used < QUEUE_DEPTH) & (w_open < QUEUE_DEPTH))
        wskid = Skid(m, 8 * g.data_bytes + g.data_bytes + 1, "w_skid")
        passing = verdicts.head[0]
        m.d.comb += [
            self.s_axi_wready.eq(verdicts.head_valid & (~passing | wskid.in_ready)),
            wskid.in_valid.eq(self.s_axi_wvalid & verdicts.head_valid & passing),
            wskid.in_data.eq(Cat(self.s_axi_wdata, self.s_axi_wstrb, self.s_axi_wlast)),
            wskid.out_ready.eq(self.m_axi_wready),
            self.m_axi_wvalid.eq(wskid.out_valid),
            Cat(self.m_axi_wdata, self.m_axi_wstrb, self.m_axi_wlast).eq(wskid.out_data),
        ]
        taken = self.s_axi_wvalid & self.s_axi_wready
        burst_done = taken & self.s_axi_wlast
        m.d.comb += verdicts.pop.eq(burst_done)
        m.d.sync += w_open.eq(_up_down(w_open, side.accept, burst_done))
        # refused bursts whose beats are all drained, waiting for their B (a
        # refusal is answered once its own are)
        drained = Signal(range(QUEUE_DEPTH + 1), name="w_drained")
        # (whether none is, a register of its own: as a compare of the count,
        # it put the refusal flags at five levels on random configs 6 and 76)
        none_drained = Signal(name="w_none_drained", init=1)

        busy, answer_id = Signal(name="b_refusal_busy"), Signal(g.id_width)
        answer_free = Signal(name="b_answer_free", attrs={"keep": 1})
        answered = self.m_axi_bvalid & self.m_axi_bready
        sent, start, fields = self._address_out(m, "aw", side, answered=answered, answer_free=answer_free)
        # (a refused burst's last beat taken now: its wready is the verdict's
        # flag alone)
        drains = self.s_axi_wvalid & self.s_axi_wlast & verdicts.head_valid & ~passing
        m.d.sync += [side.used.eq(_up_down(side.used, side.accept, side.queue.pop)),
                     drained.eq(_up_down(drained, drains, start)),
                     none_drained.eq(_up_down(drained, drains, start, is_=0))]

        # B: memory's answers, or a refusal's SLVERR, through one register stage
        bskid = Skid(m, g.id_width + 2, "b_skid")
        m.d.comb += [
            bskid.in_valid.eq(busy | self.m_axi_bvalid),
            bskid.in_data.eq(Mux(busy, Cat(answer_id, Const(SLVERR, 2)),
                                 Cat(self.m_axi_bid, self.m_axi_bresp))),
            self.m_axi_bready.eq(bskid.in_ready & ~busy),
            bskid.out_ready.eq(self.s_axi_bready),
            self.s_axi_bvalid.eq(bskid.out_valid),
            Cat(self.s_axi_bid, self.s_axi_bresp).eq(bskid.out_data),
            # (free at the next edge: not busy, or its B taken now; and a
            # refused burst's beats drained by then)
            answer_free.eq((~busy | bskid.in_ready) & (~none_drained | drains)),
        ]
        m.d.sync += busy.eq(start | (busy & ~bskid.in_ready))
        with m.If(start):
            m.d.sync += answer_id.eq(fields["id"])


class _BurstQueue:
    """A direction's queue of judged bursts (:class:`ShiftQueue`'s ports:
    ``push``, ``pop``, ``w_data``, ``head``, ``head_after``): bit 0 of an entry,
    whether the burst is forwarded, in a shift queue, which gives the next
    head's flag from registers; the burst's fields (``width`` bits) in a
    :class:`RamQueue`. Place and route showed why: in a shift queue of the
    whole entry, ``pop`` (a LUT after m_axi's ready) reached every bit of
    every entry (62 x 13 flip-flops), and that net set the guarded core's
    clock; here it reaches the head register and the two queues' pointers and
    flags."""

    def __init__(self, m, width, name):
        # (``pop`` kept as a LUT of its own: the queues' next flags are then a
        # LUT of it, ``push`` and their own, where the mapper folded m_axi's
        # handshake into a chain of five)
        self.pop = Signal(name=f"{name}_pop", attrs={"keep": 1})
        self.push = Signal(name=f"{name}_push")
        self.w_data = Signal(1 + width, name=f"{name}_w_data")
        self._flags = ShiftQueue(m, 1, QUEUE_DEPTH, f"{name}_forward", reset_data=False)
        self._fields = RamQueue(m, width, QUEUE_DEPTH, f"{name}_fields")
        for q in (self._flags, self._fields):
            m.d.comb += [q.pop.eq(self.pop), q.push.eq(self.push)]
        m.d.comb += [self._flags.w_data.eq(self.w_data[0]), self._fields.w_data.eq(self.w_data[1:])]

    @property
    def head(self):
        return Cat(self._flags.head, self._fields.head)

    def head_after(self, popped):
        """The head's valid flag and its forwarded bit at the next edge (the
        fields are not needed there)."""
        return self._flags.head_after(popped)


def _up_down(count, up, down, *, is_=None):
    """``count`` + ``up`` - ``down`` of a counter of four bits at most, as a
    table of the count and the two events: a LUT a bit after the events, where
    an adder would come after them on a carry chain. With ``is_``, whether that
    value is ``is_``: one LUT too, where a compare of the sum would be a second
    (the mapper put one after the B handshake's two at five levels)."""
    assert len(count) <= 4
    width = len(count)
    sums = [(c + u - d) % (1 << width) for d in range(2) for u in range(2) for c in range(1 << width)]
    if is_ is not None:
        return Array(Const(int(v == is_), 1) for v in sums)[Cat(count, up, down)]
    return Array(Const(v, width) for v in sums)[Cat(count, up, down)]
