"""The allocator core and the generated top module.

:class:`AllocatorCore` is the fixed-latency allocation pipeline. It never sees
a bus address map: it takes at most one alloc and one free per cycle (from
whichever source won arbitration in front of it) and answers each exactly
``latency`` cycles later. :class:`HwallocTop` gives it the SPEC §2 ports.

Per-slot state lives in memories with one write port and registered,
non-transparent read ports with an enable, so a 65536-slot pool maps to block
RAM:

``queue``   FIFO of released slots: ``{slot, tag, snap}``; written by the free
            commit, read by the alloc commit.
``grant``   per slot ``{tag, snap}`` of its latest grant; written by the alloc
            (two cycles after its commit), read by the free check.
``parity``  per slot, one bit toggled by every successful free; read by the
            free check and, through a second read port, by the alloc for
            never-used slots (synthesis gives each read port its own copy).

A slot is held iff ``parity[slot] == grant[slot].snap``: every grant snapshots
the slot's parity and every free toggles it. No memory is ever cleared, and
none needs a power-up value: reset only zeroes the per-pool ``fresh`` counter,
and slots at or above it are known to be free with tag 0 whatever the memories
hold (O(1) reset). The next
never-used slot is handed out before any released one, which is exactly the
FIFO order of SPEC §4.

Pipeline (edge t is the handshake; "stage k" registers are loaded at edge t+k)::

    alloc  stage 0 capture  1 check pool/size  2 COMMIT (counters)   3 fetch slot   4 write grant
    free   stage 0 capture  1 decode address   2 read slot state     3 resolve      4 COMMIT (decide, release)
    both   ... delay ... stage L-1: response register, sampled by the consumer at edge t+L.

The alloc commits at edge t+2 and the free at edge t+4. The free's check is
split in two so that no stage is deep: stage 3 resolves, as registered flags,
what every older request in flight did to the slot (the memories, the grants
of the two previous allocs, the release by the free two older, and whether the
previous free, deciding as it is registered, released the same slot); stage 4
decides from those flags and writes. A free pushed into the queue at edge
t_f+4 is seen by alloc commits from edge t_f+5 on, that is by allocs accepted
at t_f+3 or later: the recycle delay R is 3.
"""

from types import SimpleNamespace

from amaranth import Cat, ClockDomain, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._rtl import any_of, at_least, eq_chunks, equal, or_all
from .axil import AxiLiteAdapter, axil_members
from .config import MIN_LATENCY, RECYCLE_DELAY
from .model import Err
from .regfile import RegisterFile

__all__ = ["AllocatorCore", "HwallocTop"]

#: Cycles after which an accepted request reaches the response register's input
#: for allocs and frees (stage 4 both); the rest of the latency is delay.
_ALLOC_DONE_STAGE = 4
#: The deepest per-slot memory left to synthesis' choice (LUT RAM, 4 RAM64 and
#: one LUT of output multiplexer); deeper ones are asked to be block RAM.
LUTRAM_DEPTH = 256
#: RAMB36 aspect ratios: (depth, width) with no depth cascade.
_BRAM_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
_FREE_DONE_STAGE = 4


def _memory(m, name, shape, depth, *, reads):
    """A memory of ``depth`` entries with one write port and ``reads`` registered,
    non-transparent read ports, each a namespace of ``addr``, ``en`` and ``data``.

    Up to LUTRAM_DEPTH entries it is one memory, left to synthesis. Deeper, it is
    block RAM, sliced into memories as wide as one RAMB36 is at that depth (4096
    entries: 9 bits), so that no multiplexer of block RAM outputs, which would
    cost LUT levels in the stage that reads it, is needed (65536 entries: two
    halves of a 1-bit RAMB36 pair, one LUT)."""
    width = Shape.cast(shape).width

    def port():
        return SimpleNamespace(addr=Signal(range(depth), name=f"{name}_addr"),
                               en=Signal(name=f"{name}_en"), data=Signal(shape, name=f"{name}_data"))
    write, read = port(), [port() for _ in range(reads)]
    if depth <= LUTRAM_DEPTH:
        slices, attrs = [(0, width)], {}
    else:
        slice_width = next((w for d, w in _BRAM_SHAPES if depth <= d), 1)
        slices = [(lo, min(lo + slice_width, width)) for lo in range(0, width, slice_width)]
        attrs = {"ram_style": "block"}
    for i, (lo, hi) in enumerate(slices):
        memory = Memory(shape=hi - lo, depth=depth, init=[], attrs=attrs)
        m.submodules[name if len(slices) == 1 else f"{name}_{i}"] = memory
        w = memory.write_port()
        m.d.comb += [w.addr.eq(write.addr), w.en.eq(write.en), w.data.eq(Value.cast(write.data)[lo:hi])]
        for r, ours in ((memory.read_port(), ours) for ours in read):
            m.d.comb += [r.addr.eq(ours.addr), r.en.eq(ours.en), Value.cast(ours.data)[lo:hi].eq(r.data)]
    return write, read


def _native_members(config):
    """The native request/response members of SPEC §2, as seen by the core."""
    P, S, Z = config.pool_bits, config.slot_bits, config.size_bits
    A, T, U = config.addr_width, config.tag_bits, config.user_bits
    members = {
        "alloc_valid": In(1), "alloc_pool": In(P), "alloc_size": In(Z), "alloc_user": In(U),
        "grant_valid": Out(1), "grant_ok": Out(1), "grant_err": Out(4),
        "grant_pool": Out(P), "grant_slot": Out(S), "grant_addr": Out(A),
        "grant_tag": Out(T), "grant_user": Out(U),
        "free_valid": In(1), "free_addr": In(A), "free_tag": In(T), "free_user": In(U),
        "freed_valid": Out(1), "freed_ok": Out(1), "freed_err": Out(4), "freed_user": Out(U),
    }
    if T == 0:
        del members["grant_tag"], members["free_tag"]
    return members


def _core_members(config):
    """The core's members: the native ones, plus what the register interface
    and the monitor need (request source, forced range errors, log details)."""
    P, A, T = config.pool_bits, config.addr_width, config.tag_bits
    members = _native_members(config)
    members.update({
        "alloc_src": In(1), "free_src": In(1),
        # The native ports' size and address as they are, whatever the source: the
        # size and range checks run on carry chains straight from the pins (a
        # register request's size always fits and its pool is known).
        "alloc_port_size": In(config.size_bits), "free_port_addr": In(A),
        # a register FREE's pool, and whether its slot index is >= SLOTS
        # (OUT_OF_RANGE, logged under this pool)
        "free_oor": In(1), "free_oor_pool": In(P),
        "grant_src": Out(1), "grant_size": Out(min(config.size_bits, 32)),
        "freed_src": Out(1), "freed_pool": Out(P), "freed_in_pool": Out(1),
        "freed_addr": Out(min(A, 32)), "freed_tag": Out(max(T, 1)),
        "busy": Out(1),
    })
    return members


class _Timing:
    """The timing every allocator component documents and exposes."""

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """L: cycles from a handshake to the edge at which its response is sampled."""
        return self._config.latency

    @property
    def recycle_delay(self):
        """R: a slot freed at cycle t is grantable to allocs accepted at t+R or later."""
        return RECYCLE_DELAY


class AllocatorCore(_Timing, wiring.Component):
    """Fixed-latency allocator for 1..8 freelist pools.

    Accepts one alloc and one free every cycle (``alloc_valid``/``free_valid``
    are handshakes already: the core has no ready) and answers each with a
    one-cycle ``grant_valid``/``freed_valid`` pulse exactly :attr:`latency`
    cycles later. Runs in the ``sync`` domain.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config`

    Members
    -------
    The native ports of SPEC §2 (``alloc_*``, ``grant_*``, ``free_*``, ``freed_*``),
    without ``*_ready``; ``*_tag`` are absent when ``tag_bits`` is 0. Besides:
    ``alloc_src``/``free_src`` (1 = a register request), echoed on
    ``grant_src``/``freed_src``; ``alloc_port_size``/``free_port_addr`` are the
    native pins as they are, for the size and range checks (a register request
    fits, and names its pool: ``free_oor_pool``); ``free_oor`` forces
    OUT_OF_RANGE for a register FREE of a slot past the pool; ``grant_size``,
    ``freed_pool``, ``freed_in_pool``, ``freed_addr``, ``freed_tag`` carry what
    the error log records; ``busy`` is high while any request is in flight (a cycle
    late).
    """

    def __init__(self, config):
        if config.latency < MIN_LATENCY:
            self._MustUse__silence = True       # refused, so never to be elaborated
            raise ValueError(f"Latency must be at least {MIN_LATENCY}, not {config.latency}")
        self._config = config
        super().__init__(wiring.Signature(_core_members(config)))

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pools = cfg.pools
        P, S, A, T, U = cfg.pool_bits, cfg.slot_bits, cfg.addr_width, cfg.tag_bits, cfg.user_bits
        # Registers carry at least one tag bit (always 0 without tags), so that
        # no zero-width signal reaches the Verilog; memories store tags only if T > 0.
        TR = max(T, 1)

        def tag_of(view):
            return view.tag if T else Const(0, 1)

        valids = []

        def reg(name, shape=1, *, valid=False):
            # Valid bits are reset (no response survives a reset); payloads are not.
            signal = Signal(shape, name=name, reset_less=not valid)
            if valid:
                valids.append(signal)
            return signal

        # Per pool: the memories and the queue's counters.
        state = []
        for pool in pools:
            n, sb = pool.slots, pool.slot_bits
            entry = data.StructLayout({"slot": sb, "snap": 1, **({"tag": T} if T else {})})
            latest = data.StructLayout({"snap": 1, **({"tag": T} if T else {})})
            queue_w, (queue_r,) = _memory(m, f"{pool.name}_queue", entry, n, reads=1)
            grant_w, (grant_r,) = _memory(m, f"{pool.name}_grant", latest, n, reads=1)
            parity_w, (parity_r, copy_r) = _memory(m, f"{pool.name}_parity", 1, n, reads=2)
            state.append({
                "queue_w": queue_w, "queue_r": queue_r,
                "grant_w": grant_w, "grant_r": grant_r,
                "parity_w": parity_w, "parity_r": parity_r,
                "copy_r": copy_r,
                # never-used slots are fresh..n-1; released ones wait in the queue
                "fresh": Signal(range(n + 1), name=f"{pool.name}_fresh"),
                "head": Signal(range(n), name=f"{pool.name}_head"),
                "tail": Signal(range(n), name=f"{pool.name}_tail"),
                # released slots in the queue, but for the last edge's push and pop
                # (``pushed``, ``popped``), which it takes in a cycle late
                "count": Signal(range(n + 1), name=f"{pool.name}_count"),
                "pushed": Signal(name=f"{pool.name}_pushed"),
                "popped": Signal(name=f"{pool.name}_popped"),
                "at": Signal(3, init=1, name=f"{pool.name}_at"),     # count == 0, 1, 2
                # count != 0 and fresh != n, kept as flags so the commit is shallow
                "nonempty": Signal(name=f"{pool.name}_nonempty"),
                "has_fresh": Signal(init=1, name=f"{pool.name}_has_fresh"),
                "pop": Signal(name=f"{pool.name}_pop"),
                "take_fresh": Signal(name=f"{pool.name}_take_fresh"),
                "push": Signal(name=f"{pool.name}_push"),
            })

        # ---- alloc stage 0: capture the handshake -----------------------------
        a0_valid = reg("a0_valid", valid=True)
        a0_pool, a0_size, a0_user = reg("a0_pool", P), reg("a0_size", cfg.size_bits), reg("a0_user", U)
        m.d.sync += [a0_valid.eq(self.alloc_valid), a0_pool.eq(self.alloc_pool),
                     a0_size.eq(self.alloc_size), a0_user.eq(self.alloc_user)]
        # size <= slot_size for every pool, each on a carry chain from the pin (a
        # register ALLOC asks for its pool's slot size: it fits)
        a0_fits = reg("a0_fits", len(pools))
        m.d.sync += a0_fits.eq(Cat(self.alloc_src | ~at_least(self.alloc_port_size, pool.slot_size + 1)
                                   for pool in pools))

        # ---- alloc stage 1: check the size against every pool ------------------
        a1_valid = reg("a1_valid", valid=True)
        a1_pool, a1_user, a1_bad_pool = reg("a1_pool", P), reg("a1_user", U), reg("a1_bad_pool")
        a1_fits = reg("a1_fits", len(pools))     # bit p: the size fits a slot of pool p
        a1_select = reg("a1_select", len(pools), valid=True)  # bit p: a request to pool p that fits
        a1_in = reg("a1_in", len(pools))                      # bit p: a1_pool == p
        m.d.sync += [a1_valid.eq(a0_valid), a1_pool.eq(a0_pool), a1_user.eq(a0_user),
                     a1_bad_pool.eq(a0_pool >= len(pools)),
                     a1_fits.eq(a0_fits),
                     a1_in.eq(Cat(a0_pool == pool.index for pool in pools)),
                     a1_select.eq(Cat(a0_valid & (a0_pool == pool.index) & a0_fits[pool.index]
                                      for pool in pools))]

        # ---- alloc stage 2: COMMIT ---------------------------------------------
        # The grant decision needs only flags: a pool can grant while it has a
        # never-used slot or a released one in its queue. The slot itself is read
        # from memory at this edge and arrives in stage 3.
        a2_valid = reg("a2_valid", valid=True)
        a2_ok, a2_pool, a2_user = reg("a2_ok"), reg("a2_pool", P), reg("a2_user", U)
        a2_fail_err = reg("a2_fail_err", 4)      # the answer if it does not grant
        a2_from_fresh, a2_fresh_slot = reg("a2_from_fresh"), reg("a2_fresh_slot", S)
        m.d.sync += [a2_valid.eq(a1_valid), a2_pool.eq(a1_pool), a2_user.eq(a1_user)]
        for pool, st in zip(pools, state, strict=True):
            selected = a1_select[pool.index]
            m.d.comb += [
                st["take_fresh"].eq(selected & st["has_fresh"]),
                st["pop"].eq(selected & ~st["has_fresh"] & st["nonempty"]),
                # The queue's head and the next never-used slot's parity are read
                # every cycle; the data is used only by the cycle that grants.
                st["queue_r"].addr.eq(st["head"]), st["queue_r"].en.eq(a1_valid),
                st["copy_r"].addr.eq(st["fresh"]), st["copy_r"].en.eq(a1_valid),
            ]
            with m.If(st["take_fresh"]):
                m.d.sync += [st["fresh"].eq(st["fresh"] + 1),
                             st["has_fresh"].eq(st["fresh"] != pool.slots - 1)]
            with m.If(st["pop"]):
                m.d.sync += st["head"].eq(Mux(st["head"] == pool.slots - 1, 0, st["head"] + 1))
        # The pool's flags, chosen by the one-hot pool flags (ORs on carry chains).
        granted = any_of(a1_select[pool.index] & (st["has_fresh"] | st["nonempty"])
                         for pool, st in zip(pools, state, strict=True))
        fits = any_of(a1_in[pool.index] & a1_fits[pool.index] for pool in pools)
        m.d.sync += [a2_ok.eq(granted),
                     a2_fail_err.eq(Mux(a1_bad_pool, Err.BAD_POOL, Mux(fits, Err.EXHAUSTED, Err.TOO_BIG))),
                     a2_from_fresh.eq(any_of(a1_in[pool.index] & st["has_fresh"]
                                             for pool, st in zip(pools, state, strict=True))),
                     a2_fresh_slot.eq(or_all(Mux(a1_in[pool.index], st["fresh"], 0)
                                             for pool, st in zip(pools, state, strict=True)))]

        # ---- alloc stage 3: fetch the granted slot and its next tag ------------
        a3_valid = reg("a3_valid", valid=True)
        a3_ok, a3_err, a3_pool, a3_user = reg("a3_ok"), reg("a3_err", 4), reg("a3_pool", P), reg("a3_user", U)
        a3_slot, a3_tag, a3_snap = reg("a3_slot", S), reg("a3_tag", TR), reg("a3_snap")
        fetched_slot, fetched_tag, fetched_snap = Signal(S), Signal(TR), Signal()
        with m.Switch(a2_pool):
            for pool, st in zip(pools, state, strict=True):
                with m.Case(pool.index):
                    head = st["queue_r"].data
                    m.d.comb += [
                        fetched_slot.eq(Mux(a2_from_fresh, a2_fresh_slot, head.slot)),
                        fetched_tag.eq(Mux(a2_from_fresh, 0, tag_of(head))),
                        fetched_snap.eq(Mux(a2_from_fresh, st["copy_r"].data, head.snap)),
                    ]
        m.d.sync += [a3_valid.eq(a2_valid), a3_ok.eq(a2_ok), a3_err.eq(Mux(a2_ok, Err.OK, a2_fail_err)),
                     a3_pool.eq(a2_pool), a3_user.eq(a2_user),
                     a3_slot.eq(Mux(a2_ok, fetched_slot, 0)),
                     a3_tag.eq(Mux(a2_ok, fetched_tag + 1, 0) if T else 0),
                     a3_snap.eq(fetched_snap)]

        # ---- alloc stage 4: record the grant, form the address -----------------
        a4_valid = reg("a4_valid", valid=True)
        a4_ok, a4_err, a4_pool, a4_user = reg("a4_ok"), reg("a4_err", 4), reg("a4_pool", P), reg("a4_user", U)
        a4_slot, a4_tag, a4_snap = reg("a4_slot", S), reg("a4_tag", TR), reg("a4_snap")
        a4_addr = reg("a4_addr", A)
        grant_addr = Signal(A)
        for pool, st in zip(pools, state, strict=True):
            m.d.comb += [
                st["grant_w"].addr.eq(a3_slot),
                st["grant_w"].data.snap.eq(a3_snap),
                st["grant_w"].en.eq(a3_valid & a3_ok & (a3_pool == pool.index)),
            ]
            if T:
                m.d.comb += st["grant_w"].data.tag.eq(a3_tag)
        with m.Switch(a3_pool):
            for pool in pools:
                with m.Case(pool.index):
                    # base is aligned to slot_size, so the sum is an OR
                    m.d.comb += grant_addr.eq(pool.base | (a3_slot[:pool.slot_bits] << pool.offset_bits))
        m.d.sync += [a4_valid.eq(a3_valid), a4_ok.eq(a3_ok), a4_err.eq(a3_err),
                     a4_pool.eq(a3_pool), a4_user.eq(a3_user), a4_slot.eq(a3_slot),
                     a4_tag.eq(a3_tag), a4_snap.eq(a3_snap),
                     a4_addr.eq(Mux(a3_ok, grant_addr, 0))]

        # ---- free stage 0: capture the handshake --------------------------------
        f0_valid = reg("f0_valid", valid=True)
        f0_addr, f0_tag, f0_user = reg("f0_addr", A), reg("f0_tag", TR), reg("f0_user", U)
        f0_oor, f0_oor_pool = reg("f0_oor"), reg("f0_oor_pool", P)
        m.d.sync += [f0_valid.eq(self.free_valid), f0_addr.eq(self.free_addr),
                     f0_user.eq(self.free_user), f0_oor.eq(self.free_oor),
                     f0_oor_pool.eq(self.free_oor_pool)]
        if T:
            m.d.sync += f0_tag.eq(self.free_tag)
        # base <= address < end for every pool, on carry chains from the pin (a
        # register FREE's pool is known)
        f0_hit = reg("f0_hit", len(pools))
        m.d.sync += f0_hit.eq(Cat(
            Mux(self.free_src, ~self.free_oor & (self.free_oor_pool == pool.index),
                at_least(self.free_port_addr, pool.base) & ~at_least(self.free_port_addr, pool.end))
            for pool in pools))

        # ---- free stage 1: decode the address against every pool ----------------
        # Per pool: is the address inside it, at a slot's first byte, and which
        # slot would it be. Each pool's memories are read with its own candidate
        # slot, so the read does not wait for the choice of the pool.
        f1_valid = reg("f1_valid", valid=True)
        f1_tag, f1_user = reg("f1_tag", TR), reg("f1_user", U)
        f1_oor, f1_oor_pool = reg("f1_oor"), reg("f1_oor_pool", P)
        f1_hit, f1_misaligned = reg("f1_hit", len(pools)), reg("f1_misaligned", len(pools))
        f1_slots = [reg(f"f1_{pool.name}_slot", pool.slot_bits) for pool in pools]
        m.d.sync += [f1_valid.eq(f0_valid), f1_tag.eq(f0_tag), f1_user.eq(f0_user),
                     f1_oor.eq(f0_oor), f1_oor_pool.eq(f0_oor_pool)]
        # The free two older is in stage 2 now. If both name the same address they
        # name the same slot (pools do not overlap; a misaligned free fails anyway).
        f1_addr, f2_addr = reg("f1_addr", A), reg("f2_addr", A)
        m.d.sync += [f1_addr.eq(f0_addr), f2_addr.eq(f1_addr)]
        same_as_older = eq_chunks(m, f0_addr, f2_addr, "f1_same_older")
        for pool, slot in zip(pools, f1_slots, strict=True):
            m.d.sync += [
                f1_hit[pool.index].eq(f0_hit[pool.index]),
                f1_misaligned[pool.index].eq(f0_addr[:pool.offset_bits].any()),
                slot.eq(f0_addr[pool.offset_bits:] - (pool.base >> pool.offset_bits)),
            ]

        # ---- free stage 2: choose the pool; read the slot's state -----------------
        # The reads (issued at edge t+2) see grants of allocs accepted up to t-3
        # and releases of frees accepted up to t-3; stages 3 and 4 forward the
        # rest. "never_granted" uses the fresh counter as left by every alloc
        # older than this free (allocs up to t-1 have committed by edge t+1).
        # Pools never overlap: at most one hit bit is set, so the choice is an OR.
        f2_valid = reg("f2_valid", valid=True)
        f2_pool, f2_slot, f2_tag, f2_user, f2_err = (
            reg("f2_pool", P), reg("f2_slot", S), reg("f2_tag", TR), reg("f2_user", U), reg("f2_err", 4))
        f2_never_granted, f2_in_pool = reg("f2_never_granted"), reg("f2_in_pool")
        f2_in = reg("f2_in", len(pools))        # bit p: the address is in pool p
        # whether the free two older (in stage 3 now, in f4 once decided) names the same slot
        f2_same_older = reg("f2_same_older")

        chosen = [(pool, st, slot, f1_hit[pool.index])
                  for pool, st, slot in zip(pools, state, f1_slots, strict=True)]
        in_pool = f1_hit.any()
        hit_pool = or_all(Mux(hit, pool.index, 0) for pool, _, _, hit in chosen)
        m.d.sync += [
            f2_valid.eq(f1_valid), f2_tag.eq(f1_tag), f2_user.eq(f1_user),
            f2_pool.eq(Mux(f1_oor, f1_oor_pool, hit_pool)),
            f2_slot.eq(or_all(Mux(hit, slot, 0) for _, _, slot, hit in chosen)),
            f2_in_pool.eq(f1_oor | in_pool),
            f2_in.eq(f1_hit),
            f2_err.eq(Mux(f1_oor | ~in_pool, Err.OUT_OF_RANGE,
                          Mux((f1_hit & f1_misaligned).any(), Err.MISALIGNED, Err.OK))),
            f2_never_granted.eq(any_of(hit & at_least(slot, st["fresh"]) for _, st, slot, hit in chosen)),
        ]
        for _, st, slot, _ in chosen:
            m.d.comb += [
                st["grant_r"].addr.eq(slot), st["grant_r"].en.eq(f1_valid),
                st["parity_r"].addr.eq(slot), st["parity_r"].en.eq(f1_valid),
            ]

        # ---- free stage 3: RESOLVE what every older request did to the slot ------
        # Requests in order: ..., alloc t-3, free t-2, alloc t-2, free t-1,
        # alloc t-1, free t. In this stage's cycle a3 holds alloc t-1 and a4
        # alloc t-2 (their grants are not in memory yet), f4 holds the decision
        # of free t-2 (written at the edge of our read, after it), and free t-1
        # is deciding in stage 4: its release of the same slot is registered at
        # the edge it decides (f3_prev_released). Everything is registered as
        # flags, so that the decision is a small function.
        f3_valid = reg("f3_valid", valid=True)
        # f3_go: a free of an address inside a pool, at a slot's first byte
        f3_go, f3_err, f3_user = reg("f3_go", valid=True), reg("f3_err", 4), reg("f3_user", U)
        f3_pool, f3_slot, f3_in_pool = reg("f3_pool", P), reg("f3_slot", S), reg("f3_in_pool")
        f3_in = reg("f3_in", len(pools))        # bit p: f3_pool == p
        f3_hit_a3, f3_a3_tag_ok = reg("f3_hit_a3"), reg("f3_a3_tag_ok")
        # free t-1 (deciding in stage 4 now) names this slot and releases it
        f3_prev_released = reg("f3_prev_released", valid=True)
        f3_hit_a4, f3_a4_tag_ok = reg("f3_hit_a4"), reg("f3_a4_tag_ok")
        # the memories' view with the release by free t-2 applied: held, and held under the tag
        f3_mem_held, f3_mem_ok = reg("f3_mem_held"), reg("f3_mem_ok", len(pools))
        f3_a3_tag, f3_a4_tag, f3_mem_tag = reg("f3_a3_tag", TR), reg("f3_a4_tag", TR), reg("f3_mem_tag", TR)
        # (stage 2, for the next free: its address against this one's, in pieces at stage 1)
        m.d.sync += f2_same_older.eq(same_as_older())
        f3_a3_snap, f3_a4_snap, f3_mem_snap = reg("f3_a3_snap"), reg("f3_a4_snap"), reg("f3_mem_snap")
        f4_valid = reg("f4_valid", valid=True)
        f4_ok, f4_err, f4_user = reg("f4_ok", valid=True), reg("f4_err", 4), reg("f4_user", U)
        f4_pool, f4_slot, f4_in_pool = reg("f4_pool", P), reg("f4_slot", S), reg("f4_in_pool")

        # the chosen pool's grant record, for the tag and parity a release writes
        mem_tag, mem_snap = Signal(TR), Signal()
        with m.Switch(f2_pool):
            for pool, st in zip(pools, state, strict=True):
                with m.Case(pool.index):
                    m.d.comb += [mem_tag.eq(tag_of(st["grant_r"].data)),
                                 mem_snap.eq(st["grant_r"].data.snap)]

        def same_slot(valid, pool, slot):
            # one carry chain: the valid bit, the pool and the slot at once
            return equal(Cat(slot, pool, valid), Cat(f2_slot, f2_pool, Const(1)))

        def tag_ok(tag):
            return equal(tag, f2_tag) if T else Const(1)

        hit_f4 = Signal()      # free t-2 released this slot
        go, hit_a3, hit_a4 = Signal(), Signal(), Signal()
        f3_by_a3, f3_by_a4 = reg("f3_by_a3", valid=True), reg("f3_by_a4", valid=True)
        f3_by_mem = reg("f3_by_mem", len(pools), valid=True)
        m.d.comb += [go.eq(f2_valid & (f2_err == Err.OK)),
                     hit_a3.eq(same_slot(a3_valid & a3_ok, a3_pool, a3_slot)),
                     hit_a4.eq(same_slot(a4_valid & a4_ok, a4_pool, a4_slot))]
        m.d.comb += hit_f4.eq(f2_same_older & f4_ok)

        # the memories can hold the slot: it was granted once, and free t-2 did not
        # release it (then the memories, read before that, are out of date)
        may_hold = ~hit_f4 & ~f2_never_granted

        def mem_held(st):
            # pool p's memories say the slot is held
            return st["parity_r"].data == st["grant_r"].data.snap
        chosen_held = any_of(f2_in[pool.index] & mem_held(st) for pool, st in zip(pools, state, strict=True))
        m.d.sync += [
            f3_valid.eq(f2_valid), f3_go.eq(go), f3_err.eq(f2_err),
            f3_user.eq(f2_user), f3_pool.eq(f2_pool), f3_slot.eq(f2_slot), f3_in_pool.eq(f2_in_pool),
            f3_in.eq(Cat(f2_pool == pool.index for pool in pools)),
            f3_hit_a3.eq(hit_a3),
            f3_a3_tag_ok.eq(tag_ok(a3_tag)), f3_a3_tag.eq(a3_tag), f3_a3_snap.eq(a3_snap),
            f3_hit_a4.eq(hit_a4),
            f3_a4_tag_ok.eq(tag_ok(a4_tag)), f3_a4_tag.eq(a4_tag), f3_a4_snap.eq(a4_snap),
            # per pool, from its own memories (no multiplexer before the compare)
            f3_mem_held.eq(may_hold & chosen_held),
            f3_mem_ok.eq(Cat(may_hold & mem_held(st) & tag_ok(tag_of(st["grant_r"].data)) for st in state)),
            f3_mem_tag.eq(mem_tag), f3_mem_snap.eq(mem_snap),
            # which grant the decision rests on, settled here so that stage 4's
            # release is one LUT of flags: alloc t-1's, else (unless free t-1
            # released the slot) alloc t-2's, else the memories'
            f3_by_a3.eq(go & hit_a3 & tag_ok(a3_tag)),
            f3_by_a4.eq(go & ~hit_a3 & hit_a4 & tag_ok(a4_tag)),
            f3_by_mem.eq(Mux(go & ~hit_a3 & ~hit_a4, f2_in, 0)),
        ]

        # ---- free stage 4: DECIDE and release --------------------------------------
        # Youngest first: alloc t-1 (a3), free t-1 (decided in f4 now), alloc t-2
        # (a4), free t-2, the memories.
        held, release = Signal(), Signal()
        prev_released = f3_prev_released
        m.d.sync += f3_prev_released.eq(release & same_slot(f3_go, f3_pool, f3_slot))
        m.d.comb += [
            held.eq(f3_hit_a3 | (~prev_released & (f3_hit_a4 | f3_mem_held))),
            release.eq(f3_by_a3 | (~prev_released & (f3_by_a4 | any_of(f3_by_mem & f3_mem_ok)))),
        ]
        cur_tag = Mux(f3_hit_a3, f3_a3_tag, Mux(f3_hit_a4, f3_a4_tag, f3_mem_tag))
        cur_snap = Mux(f3_hit_a3, f3_a3_snap, Mux(f3_hit_a4, f3_a4_snap, f3_mem_snap))
        # A release implies go and held, so it is asked last: the code without it
        # is one LUT of registered flags, and the release (behind the pools' OR
        # chain) only turns it into OK.
        free_err, unreleased_err = Signal(4), Signal(4)
        m.d.comb += [
            unreleased_err.eq(Mux(~f3_go, f3_err, Mux(~held, Err.NOT_ALLOCATED, Err.TAG_MISMATCH))),
            free_err.eq(Mux(release, Err.OK, unreleased_err)),
        ]
        for pool, st in zip(pools, state, strict=True):
            # A release toggles the slot's parity (held was parity == snap) and
            # queues the slot with the tag its next grant increments.
            m.d.comb += [
                # release & f3_in[p], as a function of few flags
                st["push"].eq((f3_in[pool.index] & (f3_by_a3 | (~prev_released & f3_by_a4))) |
                              (~prev_released & f3_by_mem[pool.index] & f3_mem_ok[pool.index])),
                st["parity_w"].addr.eq(f3_slot), st["parity_w"].data.eq(~cur_snap),
                st["parity_w"].en.eq(st["push"]),
                st["queue_w"].addr.eq(st["tail"]),
                st["queue_w"].data.slot.eq(f3_slot),
                st["queue_w"].data.snap.eq(~cur_snap),
                st["queue_w"].en.eq(st["push"]),
            ]
            if T:
                m.d.comb += st["queue_w"].data.tag.eq(cur_tag)
            with m.If(st["push"]):
                m.d.sync += st["tail"].eq(Mux(st["tail"] == pool.slots - 1, 0, st["tail"] + 1))
            # The queue holds count + pushed - popped slots: the count takes the
            # last edge's push and pop a cycle late, so its adder sees registers
            # only, and so do the flags at[k] (count == k) that decide whether
            # this edge's pop empties the queue.
            up, down, at = st["pushed"], st["popped"], st["at"]

            def at_k(k, at=at, count=st["count"]):
                return at[k] if 0 <= k < 3 else (count == k if k > 0 else Const(0))
            m.d.sync += [
                up.eq(st["push"]), down.eq(st["pop"]),
                st["count"].eq(st["count"] + Mux(up == down, 0, Mux(up, 1, Const(-1, len(st["count"]))))),
            ]
            for u in (0, 1):
                for d in (0, 1):
                    with m.If((up == u) & (down == d)):
                        # count' = count + u - d; empty after this edge if count == d + pop - u
                        m.d.sync += [at[k].eq(at_k(k - u + d)) for k in range(3)]
                        empties = Mux(st["pop"], at_k(d + 1 - u), at_k(d - u))
                        m.d.sync += st["nonempty"].eq(st["push"] | ~empties)
        m.d.sync += [f4_valid.eq(f3_valid), f4_ok.eq(release), f4_err.eq(free_err),
                     f4_user.eq(f3_user), f4_pool.eq(f3_pool), f4_slot.eq(f3_slot),
                     f4_in_pool.eq(f3_in_pool)]

        # ---- response delay lines: stage L-1 is the response register ----------
        grant = Cat(a4_ok, a4_err, a4_pool, a4_slot, a4_addr, a4_tag, a4_user)
        grant_valid = a4_valid
        for k in range(_ALLOC_DONE_STAGE + 1, cfg.latency):
            next_valid, next_grant = reg(f"a{k}_valid", valid=True), reg(f"a{k}_payload", len(grant))
            m.d.sync += [next_valid.eq(grant_valid), next_grant.eq(grant)]
            grant_valid, grant = next_valid, next_grant
        freed = Cat(f4_ok, f4_err, f4_user, f4_pool, f4_in_pool)
        freed_valid = f4_valid
        for k in range(_FREE_DONE_STAGE + 1, cfg.latency):
            next_valid, next_freed = reg(f"f{k}_valid", valid=True), reg(f"f{k}_payload", len(freed))
            m.d.sync += [next_valid.eq(freed_valid), next_freed.eq(freed)]
            freed_valid, freed = next_valid, next_freed

        grant_fields = [self.grant_ok, self.grant_err, self.grant_pool, self.grant_slot,
                        self.grant_addr, self.grant_tag if T else Signal(TR), self.grant_user]
        m.d.comb += [self.grant_valid.eq(grant_valid), Cat(*grant_fields).eq(grant),
                     self.freed_valid.eq(freed_valid),
                     Cat(self.freed_ok, self.freed_err, self.freed_user, self.freed_pool,
                         self.freed_in_pool).eq(freed)]

        # ---- side information for the log -------------------------------------
        # The latency is fixed, so what the log needs from a request and no stage
        # uses rides a plain L-stage shift register beside the pipeline.
        def delayed(name, value):
            for k in range(cfg.latency):
                stage = reg(f"{name}_d{k}", len(value))
                m.d.sync += stage.eq(value)
                value = stage
            return value

        m.d.comb += [
            self.grant_src.eq(delayed("alloc_src", self.alloc_src)),
            self.grant_size.eq(delayed("alloc_size", self.alloc_size[:len(self.grant_size)])),
            Cat(self.freed_src, self.freed_addr, self.freed_tag).eq(
                delayed("free_info", Cat(self.free_src, self.free_addr[:len(self.freed_addr)],
                                         self.free_tag if T else Const(0, 1)))),
        ]
        # any valid bit set, as registered ORs of six bits each: a cycle late
        parts = [Signal(name=f"busy_{i}") for i in range(0, len(valids), 6)]
        for i, part in enumerate(parts):
            m.d.sync += part.eq(Cat(*valids[6 * i:6 * i + 6]).any())
        m.d.comb += self.busy.eq(or_all(parts))
        return m


class HwallocTop(_Timing, wiring.Component):
    """The generated top module: SPEC §2 ports around :class:`AllocatorCore`,
    with the AXI4-Lite register interface and the interrupt of SPEC §6.

    Owns the ``sync`` domain (``aclk``, synchronous active-low ``aresetn``).
    A register ALLOC or FREE takes the pipeline for one cycle, three cycles after
    its bus request, in which ``alloc_ready`` or ``free_ready`` is low; a
    register request waits at most that one cycle and the native side loses at
    most that one cycle per register request. Otherwise the ready outputs are
    low only during reset and for the first cycle after it.
    """

    def __init__(self, config):
        self._config = config
        members = {"aclk": In(1), "aresetn": In(1)}
        for name, member in _native_members(config).items():
            members[name] = member
            if name == "alloc_user":
                members["alloc_ready"] = Out(1)
            if name == "free_user":
                members["free_ready"] = Out(1)
        members.update(axil_members())
        members["irq"] = Out(1)
        super().__init__(wiring.Signature(members))

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.domains.sync = cd = ClockDomain()
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.core = core = AllocatorCore(cfg)
        m.submodules.axil = axil = AxiLiteAdapter()
        m.submodules.regs = regs = RegisterFile(cfg)
        wiring.connect(m, axil.bus, regs.bus)
        for name in axil_members():
            port, inner = getattr(self, name), getattr(axil, name)
            m.d.comb += (inner.eq(port) if axil.signature.members[name].flow == wiring.In
                         else port.eq(inner))

        running = Signal()
        m.d.sync += running.eq(1)
        # ---- arbitration: a register request takes the pipeline input for one cycle
        m.d.comb += [
            self.alloc_ready.eq(running & ~regs.req_alloc),
            self.free_ready.eq(running & ~regs.req_free),
            core.alloc_valid.eq(regs.req_alloc | (self.alloc_valid & self.alloc_ready)),
            core.alloc_src.eq(regs.req_alloc),
            core.alloc_pool.eq(Mux(regs.req_alloc, regs.req_alloc_pool, self.alloc_pool)),
            core.alloc_size.eq(Mux(regs.req_alloc, regs.req_alloc_size, self.alloc_size)),
            core.alloc_user.eq(Mux(regs.req_alloc, 0, self.alloc_user)),
            core.free_valid.eq(regs.req_free | (self.free_valid & self.free_ready)),
            core.free_src.eq(regs.req_free),
            core.free_addr.eq(Mux(regs.req_free, regs.req_free_addr, self.free_addr)),
            core.free_user.eq(Mux(regs.req_free, 0, self.free_user)),
            core.free_oor.eq(regs.req_free & regs.req_free_oor),
            core.alloc_port_size.eq(self.alloc_size),
            core.free_port_addr.eq(self.free_addr),
            core.free_oor_pool.eq(regs.req_free_pool),
        ]
        if cfg.tag_bits:
            m.d.comb += core.free_tag.eq(Mux(regs.req_free, regs.req_free_tag, self.free_tag))

        # ---- responses: native ones to the ports, all of them to the register file
        for name in ("ok", "err", "pool", "slot", "addr", "user") + (("tag",) if cfg.tag_bits else ()):
            m.d.comb += getattr(self, f"grant_{name}").eq(getattr(core, f"grant_{name}"))
        for name in ("ok", "err", "user"):
            m.d.comb += getattr(self, f"freed_{name}").eq(getattr(core, f"freed_{name}"))
        m.d.comb += [
            self.grant_valid.eq(core.grant_valid & ~core.grant_src),
            self.freed_valid.eq(core.freed_valid & ~core.freed_src),
        ]
        for name in ("valid", "ok", "err", "pool", "slot", "user", "src", "size"):
            m.d.comb += getattr(regs, f"rsp_grant_{name}").eq(getattr(core, f"grant_{name}"))
        if cfg.tag_bits:
            m.d.comb += regs.rsp_grant_tag.eq(core.grant_tag)
        for name in ("valid", "ok", "err", "pool", "in_pool", "user", "src", "addr", "tag"):
            m.d.comb += getattr(regs, f"rsp_freed_{name}").eq(getattr(core, f"freed_{name}"))
        m.d.comb += [regs.busy.eq(core.busy), regs.ready.eq(running), self.irq.eq(regs.irq)]
        return m
