"""The allocator core and the generated top module.

:class:`AllocatorCore` is the fixed-latency allocation pipeline. It never sees
a bus address map: it takes at most one alloc and one free per cycle (from
whichever source won arbitration in front of it) and answers each exactly
``latency`` cycles later. :class:`HwallocTop` gives it the SPEC §2 ports.

Each pool's slot state and its kind's policy (which slot an alloc takes, what
a release and a flush leave) are a :class:`~hwalloc.pool.PoolState`, built by
the class :data:`hwalloc.kinds.KINDS` names for its kind:
:class:`~hwalloc.freelist.FreelistPool` (a queue of released slots) and
:class:`~hwalloc.ring.RingPool` (a pointer that overwrites). Per-slot state is in
memories (:mod:`hwalloc.memory`): a slot is held iff ``parity[slot] ==
grant[slot].snap`` (every grant snapshots the slot's parity, every free toggles
it); no memory is ever cleared, and none needs a power-up value: reset only
zeroes the per-pool counters, and slots at or above the ``fresh`` counter are
free with tag 0 whatever the memories hold (O(1) reset). The pipelines here own
the timing: when each request commits, what is forwarded, how the free check
resolves requests in flight.

Pipeline (edge t is the handshake; "stage k" registers are loaded at edge t+k)::

    alloc  0 capture  1 check pool/size  2 COMMIT, read queue  3 RAM output  4 choose slot  5 grant written
    free   0 capture  1 decode address   2 read slot state  3 RAM output, older requests  4 resolve  5 COMMIT
    flush  0 capture  1 check pool       2 COMMIT (with the alloc of its cycle: queue emptied, fresh := 0)
    all    ... delay ... stage L-1: response register, sampled by the consumer at edge t+L.

A ring pool (SPEC 4.2, :mod:`hwalloc.ring`) grants from its pointer only,
and a grant may overwrite a held slot. Its released slots skip the queue, so a
free can be racing the grant that reuses its slot (no recycle delay): a free
older than the alloc that decides after the alloc's commit either writes the
parity at that very edge (forwarded into the grant's snapshot, alloc stage 4)
or writes nothing (the snapshot, taken before it, stands for its release: the
pool's ``raced`` release); either way it cancels the overwrite (alloc stages 3
to 5).

A flush (SPEC 4.3) writes no memory: after it every slot of the pool is at or
above the fresh counter, so free. The free check gates everything it forwards
with that, frees older than a flush that decide after its commit write nothing
(free stage 5), and a grant of a never-used slot that was granted before a
flush takes its last tag from the grant record (alloc stages 3 and 4).

The alloc commits at edge t+2 and the free at edge t+5. The free's memory read
(edge t+2) sees what every request up to t-4 did; what allocs t-3..t-1 and
frees t-3..t-1 did is forwarded. The check is split so that no stage is deep:
stage 3 registers the comparisons with allocs t-3 and t-2 and the release by
free t-3, stage 4 resolves, as registered flags, the memories, alloc t-1 and
the release by free t-2, and stage 5 decides from those flags and from free
t-1's decision, registered as it decides. A pool of a bank or more
(:data:`hwalloc.memory.BANK_DEPTH` slots: its RAMs lie across the chip,
:func:`hwalloc.memory.far`) is read at edge t+1 instead, in three edges, from
a slot registered at stage 0: its data lands at t+3 with every other pool's,
and alloc t-4 and free t-4, which that read may miss, are forwarded too
(compared in stage 1, folded into stage 3's flags). The queue's head of a pool
deeper than a bank is read in three edges as well, issued at
edge t+1, before the commit at t+2 has decided: in even and odd halves, each
reading its row among the head and the entry after it (:mod:`hwalloc.freelist`),
the row written at that edge forwarded (:func:`hwalloc.memory.memory`); the
data lands at t+3 as a shallower pool's. A slot released at decision edge
t_f+5 is written into the queue at t_f+6 and seen by alloc commits from edge
t_f+7 on, that is by allocs accepted at t_f+5 or later: the recycle delay R is 5.
"""

from amaranth import Cat, ClockDomain, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._rtl import any_of, at_least, choose_one_hot, eq_chunks, equal, or_all
from .axil import AxiLiteAdapter, axil_members
from .config import MIN_LATENCY, RECYCLE_DELAY
from .kinds import KINDS
from .model import Err
from .regfile import RegisterFile, read_depth
from .guard import AccessGuard, axi4_members
from .regs import irq_bits

__all__ = ["AllocatorCore", "HwallocTop"]

#: Cycles after which an accepted request reaches the response register's input
#: for allocs and frees (stage 4 both); the rest of the latency is delay.
_ALLOC_DONE_STAGE = 5
_FREE_DONE_STAGE = 5
#: Edges from an alloc's commit to its grant record in the memories: the
#: guard's view of the never-used slots runs this late (hwalloc.pool).
VIEW_DELAY = 4
#: The guard's view ports (AllocatorCore with a guard): its reads' and its writes'.
VIEWS = ("view_ar", "view_aw")


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
        "flush_valid": In(1), "flush_pool": In(P), "flush_user": In(U),
        "flushed_valid": Out(1), "flushed_ok": Out(1), "flushed_err": Out(4), "flushed_user": Out(U),
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
        "alloc_src": In(1), "free_src": In(1), "flush_src": In(1),
        # The native ports' size and address as they are, whatever the source: the
        # size and range checks run on carry chains straight from the pins (a
        # register request's size always fits and its pool is known).
        "alloc_port_size": In(config.size_bits), "free_port_addr": In(A),
        # (and the native flush's valid and pool, decoded into the flush's
        # select with no multiplexer of the register file's request in front)
        "flush_port_valid": In(1), "flush_port_pool": In(P),
        # a register FREE's pool, and whether its slot index is >= SLOTS
        # (OUT_OF_RANGE, logged under this pool); bit p of ``free_reg_hit``: it
        # frees a slot of pool p (its pool, and not past the end). Bit p of
        # ``flush_reg_select``: a register FLUSH of pool p. Flags, so that the
        # register file's choice of its request is all that stands before them.
        "free_oor": In(1), "free_oor_pool": In(P),
        "free_reg_hit": In(len(config.pools)), "flush_reg_select": In(len(config.pools)),
        "grant_src": Out(1), "grant_size": Out(min(config.size_bits, 32)),
        # the grant overwrote a held ring slot (SPEC 4.2), with the grant
        "grant_overwrite": Out(1),
        "freed_src": Out(1), "freed_pool": Out(P), "freed_in_pool": Out(1),
        "freed_addr": Out(min(A, 32)), "freed_tag": Out(max(T, 1)),
        "flushed_src": Out(1), "flushed_pool": Out(P),
        # the response is the register interface's (valid and src): a register
        # of its own, which its answer queue, across the chip from the
        # pipeline, takes through no LUT (place and route showed the response
        # register, then the AND, then the queue's write enable, on the worst
        # path of GUARDED_DMA)
        "grant_cpu": Out(1), "freed_cpu": Out(1), "flushed_cpu": Out(1),
        "busy": Out(1),
    })
    if config.guard is not None:
        # the guard's views of a slot (VIEW_STAGES edges after it is asked): one
        # for its reads (AR), one for its writes (AW); whether it is held, and
        # the tag after the one it is held under (as its grant record keeps it)
        for view in VIEWS:
            members.update({f"{view}_pool": In(len(config.pools)), f"{view}_slot": In(config.slot_bits),
                            f"{view}_held": Out(1), f"{view}_next": Out(max(T, 1))})
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
    """Fixed-latency allocator for 1..8 freelist and ring pools.

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
    native pins as they are, for the size and range checks, and
    ``flush_port_valid``/``flush_port_pool`` for the flush's pool decode (a register request
    fits, and names its pool: ``free_oor_pool``); ``free_oor`` forces
    OUT_OF_RANGE for a register FREE of a slot past the pool; ``grant_size``,
    ``freed_pool``, ``freed_in_pool``, ``freed_addr``, ``freed_tag`` carry what
    the error log records; ``grant_overwrite`` says a grant overwrote a held
    ring slot; ``busy`` is high while any request is in flight (a cycle
    late).

    ``flush=False`` builds the core without what the flush port costs (its
    requests are ignored and never answered; freelist pools then need no tag
    continuity): not SPEC, only for measuring that cost (``bench/sweep.py``).
    """

    def __init__(self, config, *, flush=True):
        if config.latency < MIN_LATENCY:
            self._MustUse__silence = True       # refused, so never to be elaborated
            raise ValueError(f"Latency must be at least {MIN_LATENCY}, not {config.latency}")
        self._config = config
        self._flush = flush
        super().__init__(wiring.Signature(_core_members(config)))

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pools = cfg.pools
        P, S, A, T, U = cfg.pool_bits, cfg.slot_bits, cfg.addr_width, cfg.tag_bits, cfg.user_bits
        # Registers carry at least one tag bit (always 0 without tags), so that
        # no zero-width signal reaches the Verilog; memories store tags only if T > 0.
        TR = max(T, 1)

        def next_of(view):
            # what a grant record or queue entry holds: the tag the slot's next
            # grant takes (its last tag + 1, added behind the write's registers)
            return view.next if T else Const(0, 1)

        def plus_one(tag):
            return (tag + 1)[:TR]

        valids = []

        def reg(name, shape=1, *, valid=False):
            # Valid bits are reset (no response survives a reset); payloads are not.
            signal = Signal(shape, name=name, reset_less=not valid)
            if valid:
                valids.append(signal)
            return signal

        # pools whose slots are never released (frees and flushes answer CONTRACT)
        persistent = [pool.index for pool in pools if pool.lifetime == "persistent"]

        def same_slot(valid, pool, slot, other_pool, other_slot):
            # one carry chain: the valid bit, the pool and the slot at once (the
            # slots zero-extended to S bits, so that the fields line up)
            def wide(value):
                return Cat(value, Const(0, S - len(value)))
            return equal(Cat(wide(slot), pool, valid), Cat(wide(other_slot), other_pool, Const(1)))

        # Per pool: its slot state and its kind's policy (hwalloc.pool)
        state = [KINDS[pool.kind](m, pool, cfg, reg) for pool in pools]
        # the pools whose grants may overwrite (rings)
        rings = [st.index for st in state if st.overwrites]
        if cfg.guard is not None:
            for k, view in enumerate(VIEWS):
                self._view(m, state, k, view)

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

        # ---- flush stage 0: capture the handshake ------------------------------
        x0_valid = reg("x0_valid", valid=True)
        x0_pool, x0_user = reg("x0_pool", P), reg("x0_user", U)
        # bit p: a flush of pool p (a pool that can be flushed), decoded from the pins
        x0_select = reg("x0_select", len(pools), valid=True)
        m.d.sync += [x0_pool.eq(self.flush_pool), x0_user.eq(self.flush_user)]
        if self._flush:
            m.d.sync += [x0_valid.eq(self.flush_valid),
                         x0_select.eq(Cat(Mux(self.flush_src, self.flush_reg_select[pool.index],
                                              self.flush_port_valid & (self.flush_port_pool == pool.index))
                                          if pool.index not in persistent else Const(0) for pool in pools))]

        # ---- flush stage 1: check the pool --------------------------------------
        # Bit p of x1_select: pool p is flushed at the next edge, edge x+2, the edge
        # at which alloc x commits: an alloc accepted with the flush (ordered after
        # it) or later sees the pool flushed, alloc x-1 (committed at x+1) does not.
        x1_valid = reg("x1_valid", valid=True)
        x1_pool, x1_user, x1_err = reg("x1_pool", P), reg("x1_user", U), reg("x1_err", 4)
        x1_select = reg("x1_select", len(pools), valid=True)
        in_persistent = any_of(x0_pool == i for i in persistent) if persistent else Const(0)
        m.d.sync += [x1_valid.eq(x0_valid), x1_pool.eq(x0_pool), x1_user.eq(x0_user),
                     x1_err.eq(Mux(x0_pool >= len(pools), Err.BAD_POOL,
                                   Mux(in_persistent, Err.CONTRACT, Err.OK))),
                     x1_select.eq(x0_select)]

        # ---- flush stage 2: COMMIT (in the alloc commit below) -------------------
        # A flush empties the pool's queue and restarts its never-used slots at 0
        # (every slot free, the order as after reset) with registers only: O(1).
        # What the flush leaves is judged by the free check through the fresh
        # counter (a slot at or above it is free), and the frees older than the
        # flush that decide after its commit write nothing (see free stage 5).
        x2_valid = reg("x2_valid", valid=True)
        x2_ok, x2_err, x2_user, x2_pool = reg("x2_ok"), reg("x2_err", 4), reg("x2_user", U), reg("x2_pool", P)
        m.d.sync += [x2_valid.eq(x1_valid), x2_ok.eq(x1_err == Err.OK), x2_err.eq(x1_err),
                     x2_user.eq(x1_user), x2_pool.eq(x1_pool)]

        # ---- alloc stage 2: COMMIT ---------------------------------------------
        # The grant decision needs only flags: a pool can grant while it has a
        # never-used slot or a released one in its queue. The slot itself is read
        # from memory at this edge and arrives in stage 3.
        a2_valid = reg("a2_valid", valid=True)
        a2_ok, a2_pool, a2_user = reg("a2_ok"), reg("a2_pool", P), reg("a2_user", U)
        a2_fail_err = reg("a2_fail_err", 4)      # the answer if it does not grant
        a2_from_fresh, a2_fresh_slot = reg("a2_from_fresh"), reg("a2_fresh_slot", S)
        a2_in = reg("a2_in", len(pools))          # bit p: a2_pool == p
        m.d.sync += a2_in.eq(a1_in)
        m.d.sync += [a2_valid.eq(a1_valid), a2_pool.eq(a1_pool), a2_user.eq(a1_user)]
        for st in state:
            # a flush first, then the alloc: it takes slot 0
            st.commit(m, a1_select[st.index], x1_select[st.index], x0_select[st.index])
        # An alloc of a ring pool (always granted), and whether its pointer had
        # lapped: then the slot it takes was granted since the last flush and may
        # still be held (an overwrite, decided in stage 4 and 5).
        a2_ring, a2_lapped = reg("a2_ring", valid=True), reg("a2_lapped")
        m.d.sync += [a2_ring.eq(any_of(a1_select[i] for i in rings) if rings else 0),
                     a2_lapped.eq(any_of(a1_select[st.index] & st.may_be_held for st in state))]
        # The pool's flags, chosen by the one-hot pool flags (ORs on carry chains).
        granted = any_of(a1_select[st.index] & st.can_grant for st in state)
        fits = any_of(a1_in[pool.index] & a1_fits[pool.index] for pool in pools)
        m.d.sync += [a2_ok.eq(granted),
                     a2_fail_err.eq(Mux(a1_bad_pool, Err.BAD_POOL, Mux(fits, Err.EXHAUSTED, Err.TOO_BIG))),
                     a2_from_fresh.eq(any_of(a1_in[st.index] & st.takes_fresh for st in state)),
                     a2_fresh_slot.eq(or_all(Mux(a1_in[st.index], st.fresh_slot, 0) for st in state))]

        # Alloc t (committing now) and alloc t-1 (committed at the last edge)
        # take one slot only if a flush of their pool commits with alloc t,
        # which then takes slot 0, and alloc t-1 took slot 0 too: the never-used
        # counter only grows between flushes (a ring's, n >= 4, does not come
        # round in one step), and the queue holds released slots, all below it.
        # So alloc stage 3's a3_hit_a1 needs no compare of slots: these flags
        # (alloc t-1 took never-used slot 0; took pool p's queue head) and the
        # queue entry's own "slot 0" bit. Place and route showed the compares
        # (each pool's queue output against a2_fresh_slot, ORed) on the worst
        # path of 8 pools and of 16384 slots.
        a3_restart_fresh = reg("a3_restart_fresh")
        a3_restart_head = reg("a3_restart_head", len(pools))
        restart = a1_in & x1_select             # bit p: alloc t of pool p commits with a flush of it
        m.d.sync += [
            # (the pools' OR and the slot's compare with 0 on carry chains)
            a3_restart_fresh.eq(a2_ok & a2_from_fresh & any_of(restart & a2_in) &
                                ~any_of(a2_fresh_slot, chain=True)),
            a3_restart_head.eq(Mux(a2_ok & ~a2_from_fresh, restart & a2_in, 0)),
        ]

        # ---- alloc stage 3: the memories' outputs land in registers ------------
        # The queue's head and the never-used slot's parity, read at the commit
        # edge, are loaded into the memories' output registers at this edge; no
        # logic sits between a memory and that register (on Xilinx it is the
        # block RAM's own output register).
        a3_valid = reg("a3_valid", valid=True)
        a3_ok, a3_err, a3_pool, a3_user = reg("a3_ok"), reg("a3_err", 4), reg("a3_pool", P), reg("a3_user", U)
        a3_fresh_slot = reg("a3_fresh_slot", S)
        m.d.sync += [a3_valid.eq(a2_valid), a3_ok.eq(a2_ok), a3_err.eq(Mux(a2_ok, Err.OK, a2_fail_err)),
                     a3_pool.eq(a2_pool), a3_user.eq(a2_user),
                     a3_fresh_slot.eq(a2_fresh_slot)]
        # A never-used slot that was granted before a flush (the flush restarted
        # the order; tags do not restart) goes on from its last tag: its grant
        # record, read at the commit, unless an alloc still on its way to the
        # record granted that slot: alloc t-1 (whose slot is chosen in this
        # cycle), t-2 or t-3. They are compared in this stage (after stage 5's
        # registers, below) and forwarded in stage 4, the youngest first.
        # The choice is made of registered one-hot flags, so that stage 4 is an
        # AND-OR of the memories' outputs (which hold the tag + 1 already) and
        # one multiplexer: a3_sel_head[p] (a released slot of pool p: the queue
        # entry's), a3_sel_last[p] (a never-used slot granted before: its
        # record's), a3_sel_new[p] (a slot never granted: tag 1); none set, no
        # grant (tag 0 is answered). The forwarded tags come incremented
        # already, a3_fwd_ok says they may apply.
        a3_sel_head, a3_sel_last = reg("a3_sel_head", len(pools)), reg("a3_sel_last", len(pools))
        a3_sel_new = reg("a3_sel_new", len(pools))
        a3_fwd_ok, a3_hit_a1 = reg("a3_fwd_ok"), reg("a3_hit_a1")
        # (a3_fail is read by nothing since the memories hold the tag + 1, and
        # synthesis drops it; removing it from the source reorders Yosys' netlist
        # enough that ABC maps GUARDED_DMA's error-log count five LUT levels deep
        # on the Xilinx estimate: it goes when that path is made robust)
        a3_fail, a3_sel_fresh = reg("a3_fail"), reg("a3_sel_fresh", len(pools))
        a3_older_hit, a3_older_next = reg("a3_older_hit"), reg("a3_older_next", TR)
        # the never-used slot was granted since reset (then flushed): below the
        # seen counter as it was before the commit
        # (a forwarded tag needs no such test: a grant in flight of the slot means
        # it was granted before)
        per_pool = len(state) > 1
        if per_pool:
            # (of several pools, each pool's own compare of its own registers,
            # registered at the commit: place and route showed the slot chosen
            # among 8 pools fanned out to every pool's compare on a worst path)
            ever = reg("a2_ever", len(state))
            m.d.sync += ever.eq(Cat(~at_least(st.fresh_slot, st.seen) for st in state))
        else:
            ever = Cat(~at_least(a2_fresh_slot[:st.pool.slot_bits], st.seen_prev) for st in state)
        # A ring alloc's slot may be released by a free older than it that decides
        # after its commit (frees t-3..t, at edges t+2..t+5; R does not apply).
        # Free t-3 writes the parity at the commit edge itself, where the read
        # may return either value: its write is forwarded (a3_flip: the parity
        # is a3_flip_parity). Frees t-2..t do not write the parity (free stage 5:
        # the grant's snapshot already stands for their release) and cancel the
        # overwrite in stages 3 to 5 (a3_released, a4_released, a5).
        a3_ring, a3_lapped = reg("a3_ring", valid=True), reg("a3_lapped")
        a3_flip, a3_flip_parity, a3_released = reg("a3_flip"), reg("a3_flip_parity"), reg("a3_released")
        m.d.sync += [a3_ring.eq(a2_ring), a3_lapped.eq(a2_lapped)]
        if not self._flush:
            # (without flushes, only a ring grants a never-used slot twice)
            ever = ever & Cat(Const(int(st.overwrites)) for st in state)
        m.d.sync += [a3_sel_head.eq(Mux(a2_ok & ~a2_from_fresh, a2_in, 0)),
                     a3_sel_last.eq(Mux(a2_ok & a2_from_fresh, a2_in & ever, 0)),
                     a3_sel_new.eq(Mux(a2_ok & a2_from_fresh, a2_in & ~ever, 0)), a3_fail.eq(~a2_ok),
                     a3_sel_fresh.eq(Mux(a2_ok & a2_from_fresh, a2_in, 0)),
                     a3_fwd_ok.eq(a2_ok & a2_from_fresh & (1 if self._flush else a2_ring))]

        # ---- alloc stage 4: choose the granted slot and its next tag ------------
        a4_valid = reg("a4_valid", valid=True)
        a4_ok, a4_err, a4_pool, a4_user = reg("a4_ok"), reg("a4_err", 4), reg("a4_pool", P), reg("a4_user", U)
        a4_slot, a4_tag, a4_snap = reg("a4_slot", S), reg("a4_tag", TR), reg("a4_snap")
        # The slot and its parity snapshot, chosen by the registered one-hot
        # selects like the tag: a released slot of pool p (the queue's head), or
        # the never-used one (a ring's pointer) of pool p (a3_sel_fresh[p]),
        # whose parity is the memory's, or free t-3's write of it (a3_flip).
        parity = [st.fresh_parity(a3_flip, a3_flip_parity) for st in state]
        # The tag granted: what the slot's record or queue entry holds (its last
        # tag + 1, stored so), chosen by the registered selects (an OR a bit on a
        # carry chain); 1 for a never-granted slot, 0 for no grant (no select
        # set). No adder follows the memories: place and route showed one (a
        # tag wider than a LUT's inputs, chosen then incremented) after the
        # choice, a second carry chain on the worst path of SIZE_CLASSES.
        # The youngest grant of the slot still on its way to the record wins
        # over the record: its tag + 1, formed from a register, is two more
        # choices on the same chain, and the record's choices are gated off
        # when one applies (no multiplexer after the chain: place and route
        # showed two LUT levels of it after the choice, from a memory's output
        # register into every pool's grant record, SIZE_CLASSES' worst path).
        # The record's selects (a never-used slot) imply a3_fwd_ok when the
        # core flushes; without flushes only a ring forwards.
        stale = a3_hit_a1 | a3_older_hit
        if not self._flush:
            stale = a3_fwd_ok & stale

        def choose_grant(among, prefix=""):
            """The slot, parity snapshot and next tag granted, chosen among the
            pools ``among`` (with the forwarded ones, which are any pool's)."""
            slot, snap = Signal(S), Signal(name=f"{prefix}fetched_snap")
            tag = Signal(TR, name=f"{prefix}next_tag")
            # (each bank of a banked memory is a choice of its own: its select is
            # the pool's and the bank's, and no multiplexer of banks comes first)
            head_parts = [part for st in among for part in st.head_parts(a3_sel_head[st.index])]
            last_parts = [(a3_sel_last[st.index] & bank, entry)
                          for st in among for bank, entry in st.last_r.parts]
            m.d.comb += [
                slot.eq(choose_one_hot([(a3_fwd_ok, a3_fresh_slot)] +
                                       [(select, head.slot) for select, head in head_parts], S)),
                snap.eq(choose_one_hot([(a3_sel_fresh[st.index], parity[st.index]) for st in among] +
                                       [(select, head.snap) for select, head in head_parts], 1)),
            ]
            if T:
                m.d.comb += tag.eq(choose_one_hot(
                    [(a3_sel_new[st.index] & ~stale, Const(1, TR)) for st in among] +
                    [(select & ~stale, next_of(entry)) for select, entry in last_parts] +
                    [(select, next_of(entry)) for select, entry in head_parts] +
                    [(a3_fwd_ok & a3_hit_a1, plus_one(a4_tag)),
                     (a3_fwd_ok & a3_older_hit & ~a3_hit_a1, a3_older_next)], TR))
            return slot, snap, tag

        fetched_slot, fetched_snap, next_tag = choose_grant(state)
        # a ring's slot is held under its last grant
        ring_held = any_of(a3_sel_fresh[st.index] & (parity[st.index] == st.last_r.data.snap)
                           for st in state if st.overwrites)
        m.d.sync += [a4_valid.eq(a3_valid), a4_ok.eq(a3_ok), a4_err.eq(a3_err),
                     a4_pool.eq(a3_pool), a4_user.eq(a3_user),
                     a4_slot.eq(Mux(a3_ok, fetched_slot, 0)),
                     a4_tag.eq(next_tag),
                     a4_snap.eq(fetched_snap)]
        # The grant record is written at edge t+5, by the memory's own registers
        # loaded at this edge with what a4 is loaded with (a registered write).
        # Of several pools, each record is given the choice among its own pool
        # only (the others' selects are clear when it writes): place and route
        # showed the choice among 8 pools, then its fanout to every pool's
        # record, on the worst path of 8 pools.
        for st in state:
            slot, snap, tag = choose_grant([st], f"{st.pool.name}_") if per_pool else \
                (fetched_slot, fetched_snap, next_tag)
            m.d.comb += [
                st.grant_w.addr.eq(slot),
                st.grant_w.data.snap.eq(snap),
                st.grant_w.en.eq(a3_valid & a3_ok & (a3_pool == st.index)),
            ]
            if T:
                # (the record holds next_tag + 1: the memory adds it, behind its registers)
                m.d.comb += st.grant_w.data.next.eq(tag)

        # ---- alloc stage 5: the grant recorded; form the address ---------------
        a5_valid = reg("a5_valid", valid=True)
        a5_ok, a5_err, a5_pool, a5_user = reg("a5_ok"), reg("a5_err", 4), reg("a5_pool", P), reg("a5_user", U)
        a5_slot, a5_tag, a5_snap = reg("a5_slot", S), reg("a5_tag", TR), reg("a5_snap")
        a5_addr = reg("a5_addr", A)
        grant_addr = Signal(A)

        with m.Switch(a4_pool):
            for pool in pools:
                with m.Case(pool.index):
                    # base is aligned to slot_size only (SPEC §1): the sum is an
                    # OR where no bit of the base meets the slot's field, else
                    # an adder of the bits above the offset
                    slot = a4_slot[:pool.slot_bits]
                    ob, field = pool.offset_bits, ((1 << pool.slot_bits) - 1) << pool.offset_bits
                    if pool.base & field:
                        m.d.comb += grant_addr.eq(Cat(Const(0, ob), (pool.base >> ob) + slot))
                    else:
                        m.d.comb += grant_addr.eq(pool.base | (slot << ob))
        m.d.sync += [a5_valid.eq(a4_valid), a5_ok.eq(a4_ok), a5_err.eq(a4_err),
                     a5_pool.eq(a4_pool), a5_user.eq(a4_user), a5_slot.eq(a4_slot),
                     a5_tag.eq(a4_tag), a5_snap.eq(a4_snap),
                     a5_addr.eq(Mux(a4_ok, grant_addr, 0))]

        # the forwarding of alloc stage 3 (see there): alloc t-1 is in stage 3, t-2 in 4, t-3 in 5
        if T:
            fresh_hit_a2 = same_slot(a4_valid & a4_ok, a4_pool, a4_slot, a2_pool, a2_fresh_slot)
            m.d.sync += [
                # (alloc t-1 took slot 0 as well, see a3_restart: its never-used
                # one, or a queue head whose entry says it is slot 0)
                a3_hit_a1.eq(any_of([a3_restart_fresh] +
                                    [select & head.zero for st in state
                                     for select, head in st.head_parts(a3_restart_head[st.index])])),
                a3_older_hit.eq(fresh_hit_a2 | same_slot(a5_valid & a5_ok, a5_pool, a5_slot,
                                                         a2_pool, a2_fresh_slot)),
                # t-2's tag + 1, or t-3's (each added from its register, the compare chosen after)
                a3_older_next.eq(Mux(fresh_hit_a2, plus_one(a4_tag), plus_one(a5_tag))),
            ]

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
            Mux(self.free_src, self.free_reg_hit[pool.index],
                at_least(self.free_port_addr, pool.base) & ~at_least(self.free_port_addr, pool.end))
            for pool in pools))
        # Pools of a bank or more (their free check's reads take three edges,
        # hwalloc.memory): their memories are read an edge earlier, at t+1,
        # with a candidate slot registered here, so that the data lands with
        # every other pool's at t+3. The read then sees requests up to t-5,
        # and alloc t-4 and free t-4 are forwarded as well (stages 1 and 2).
        early = [st.index for st in state if st.grant_r.edges == 3]
        f0_slots = {}
        for i in early:
            pool = pools[i]
            f0_slots[i] = reg(f"f0_{pool.name}_slot", pool.slot_bits)
            m.d.sync += f0_slots[i].eq(self.free_addr[pool.offset_bits:] - (pool.base >> pool.offset_bits))
        if early:
            # (stage 1 reads free t-4's decision: declared here then; without an
            # early pool where stage 3 declares it, so that the order of the
            # valid bits, and the Verilog of every such config, is as it was)
            f5_ok = reg("f5_ok", valid=True)    # a free's decision, registered (stage 5, below)

        # ---- free stage 1: decode the address against every pool ----------------
        # Per pool: is the address inside it, at a slot's first byte, and which
        # slot would it be. Each pool's memories are read with its own candidate
        # slot, so the read does not wait for the choice of the pool.
        f1_valid = reg("f1_valid", valid=True)
        f1_tag, f1_user = reg("f1_tag", TR), reg("f1_user", U)
        f1_oor, f1_oor_pool = reg("f1_oor"), reg("f1_oor_pool", P)
        f1_hit, f1_misaligned = reg("f1_hit", len(pools)), reg("f1_misaligned", len(pools))
        # the address is in a persistent pool: its slots are never released (CONTRACT)
        f1_contract = reg("f1_contract")
        m.d.sync += f1_contract.eq(any_of(f0_hit[i] for i in persistent) if persistent else 0)
        f1_slots = [reg(f"f1_{pool.name}_slot", pool.slot_bits) for pool in pools]
        m.d.sync += [f1_valid.eq(f0_valid), f1_tag.eq(f0_tag), f1_user.eq(f0_user),
                     f1_oor.eq(f0_oor), f1_oor_pool.eq(f0_oor_pool)]
        # The frees two and three older are in stages 2 and 3 now. If two frees
        # name the same address they name the same slot (pools do not overlap; a
        # misaligned free fails anyway). The compares are registered in pieces.
        f1_addr, f2_addr, f3_addr = reg("f1_addr", A), reg("f2_addr", A), reg("f3_addr", A)
        m.d.sync += [f1_addr.eq(f0_addr), f2_addr.eq(f1_addr), f3_addr.eq(f2_addr)]
        same_as_second = eq_chunks(m, f0_addr, f2_addr, "f1_same_second")
        same_as_third = eq_chunks(m, f0_addr, f3_addr, "f1_same_third")
        if early:
            # alloc t-4 is in a5 now, free t-4 has just decided (f5): their
            # grant and release of the slot, for an early pool's free
            f4_addr = reg("f4_addr", A)
            m.d.sync += f4_addr.eq(f3_addr)
            same_as_fourth = eq_chunks(m, f0_addr, f4_addr, "f1_same_fourth")
            f2_hit_a4, f2_a4_tag_ok, f2_rel_f4 = reg("f2_hit_a4"), reg("f2_a4_tag_ok"), reg("f2_rel_f4")
            f2_a4_next, f2_a4_snap = reg("f2_a4_next", TR), reg("f2_a4_snap")
            in_early = any_of(f1_hit[i] for i in early)
            m.d.sync += [
                f2_hit_a4.eq(any_of(f1_hit[i] & same_slot(a5_valid & a5_ok, a5_pool, a5_slot,
                                                          Const(i, P), f1_slots[i]) for i in early)),
                f2_a4_tag_ok.eq(equal(a5_tag, f1_tag) if T else 1),
                f2_a4_next.eq((a5_tag + 1)[:TR]), f2_a4_snap.eq(a5_snap),
                f2_rel_f4.eq(in_early & same_as_fourth() & f5_ok),
            ]
        for pool, slot in zip(pools, f1_slots, strict=True):
            m.d.sync += [
                f1_hit[pool.index].eq(f0_hit[pool.index]),
                # each pool's OR on its own carry chain: as plain ORs the mapper
                # shares the pools' nested prefixes, a chain of LUTs (five levels
                # with seven pools of different slot sizes)
                f1_misaligned[pool.index].eq(any_of(f0_addr[:pool.offset_bits], chain=True)),
                slot.eq(f0_addr[pool.offset_bits:] - (pool.base >> pool.offset_bits)),
            ]

        # ---- free stage 2: choose the pool; read the slot's state -----------------
        # The reads (issued at edge t+2, registered at edge t+3) see grants of
        # allocs accepted up to t-4 and releases of frees accepted up to t-4;
        # stages 3 to 5 forward the rest. "never_granted" uses the fresh counter
        # as left by every alloc older than this free (allocs up to t-1 have
        # committed by edge t+1).
        # Pools never overlap: at most one hit bit is set, so the choice is an OR.
        f2_valid = reg("f2_valid", valid=True)
        f2_pool, f2_slot, f2_tag, f2_user, f2_err = (
            reg("f2_pool", P), reg("f2_slot", S), reg("f2_tag", TR), reg("f2_user", U), reg("f2_err", 4))
        f2_in_pool = reg("f2_in_pool")
        # bit p: the slot is in pool p and was never granted there (each pool's
        # compare with its counter registered alone, ORed in stage 3: place and
        # route showed the OR of eight pools' compares, a carry chain after
        # theirs, on the worst path of eight pools)
        f2_never_granted = reg("f2_never_granted", len(pools))
        f2_in = reg("f2_in", len(pools))        # bit p: the address is in pool p
        # whether the frees two and three older name the same slot
        f2_same_second, f2_same_third = reg("f2_same_second"), reg("f2_same_third")

        chosen = [(pool, st, slot, f1_hit[pool.index])
                  for pool, st, slot in zip(pools, state, f1_slots, strict=True)]
        in_pool = any_of(f1_hit)
        hit_pool = or_all(Mux(hit, pool.index, 0) for pool, _, _, hit in chosen)
        m.d.sync += [
            f2_valid.eq(f1_valid), f2_tag.eq(f1_tag), f2_user.eq(f1_user),
            f2_pool.eq(Mux(f1_oor, f1_oor_pool, hit_pool)),
            f2_slot.eq(or_all(Mux(hit, slot, 0) for _, _, slot, hit in chosen)),
            f2_in_pool.eq(f1_oor | in_pool),
            f2_in.eq(f1_hit),
            f2_err.eq(Mux(f1_oor | ~in_pool, Err.OUT_OF_RANGE,
                          Mux(any_of(f1_hit & f1_misaligned), Err.MISALIGNED,
                              Mux(f1_contract, Err.CONTRACT, Err.OK)))),
            f2_never_granted.eq(Cat(hit & st.never_granted(slot) for _, st, slot, hit in chosen)),
            f2_same_second.eq(same_as_second()), f2_same_third.eq(same_as_third()),
        ]
        for _, st, slot, _ in chosen:
            slot = f0_slots.get(st.index, slot)     # (an early pool's, an edge earlier)
            m.d.comb += [
                st.grant_r.addr.eq(slot),
                st.parity_r.addr.eq(slot),
            ]

        def tag_ok(tag, presented):
            return equal(tag, presented) if T else Const(1)

        # ---- free stage 3: the memories' outputs land in registers; the older
        # requests that the read cannot see, as flags ------------------------------
        # Requests in order: ..., free t-4 (seen by the read), alloc t-3, free t-3,
        # alloc t-2, free t-2, alloc t-1, free t-1, free t. In this stage's cycle
        # alloc t-3 is in a5 and alloc t-2 in a4 (slots known, grants not yet in
        # memory); free t-3 has just decided (f5). Alloc t-1, free t-2 and free
        # t-1 are taken in stages 4 and 5.
        f3_valid = reg("f3_valid", valid=True)
        # f3_go: a free of an address inside a pool, at a slot's first byte
        f3_go, f3_err, f3_user = reg("f3_go", valid=True), reg("f3_err", 4), reg("f3_user", U)
        f3_pool, f3_slot, f3_tag, f3_in_pool = reg("f3_pool", P), reg("f3_slot", S), reg("f3_tag", TR), \
            reg("f3_in_pool")
        f3_next = reg("f3_next", TR)            # f3_tag + 1, as the memories hold a held slot's tag
        f3_in = reg("f3_in", len(pools))        # bit p: f3_pool == p
        f3_never_granted, f3_same_second = reg("f3_never_granted"), reg("f3_same_second")
        # alloc t-2 (a4) or t-3 (a5) granted this slot: the younger one's tag and parity snapshot
        f3_hit_a2, f3_a2_tag_ok = reg("f3_hit_a2"), reg("f3_a2_tag_ok")
        f3_hit_a3, f3_a3_tag_ok = reg("f3_hit_a3"), reg("f3_a3_tag_ok")
        f3_older_next, f3_older_snap = reg("f3_older_next", TR), reg("f3_older_snap")
        f3_rel_f3 = reg("f3_rel_f3")            # free t-3 released this slot
        go, hit_a2, hit_a3 = Signal(), Signal(), Signal()
        m.d.comb += [
            go.eq(f2_valid & (f2_err == Err.OK)),
            hit_a2.eq(same_slot(a4_valid & a4_ok, a4_pool, a4_slot, f2_pool, f2_slot)),
            hit_a3.eq(same_slot(a5_valid & a5_ok, a5_pool, a5_slot, f2_pool, f2_slot)),
        ]
        if not early:
            f5_ok = reg("f5_ok", valid=True)    # a free's decision, registered (stage 5, below)
        rel_f3 = f2_same_third & f5_ok          # free t-3 released this slot
        older3, older3_tag_ok = hit_a3, tag_ok(a5_tag, f2_tag)
        older3_next, older3_snap = plus_one(a5_tag), a5_snap
        if early:
            # (for an early pool: alloc t-3, or alloc t-4 unless free t-3 released
            # the slot since; in the order of the requests, free t-3 comes between)
            older3 = hit_a3 | (~rel_f3 & f2_hit_a4)
            older3_tag_ok = Mux(hit_a3, older3_tag_ok, f2_a4_tag_ok)
            older3_next = Mux(hit_a3, older3_next, f2_a4_next)
            older3_snap = Mux(hit_a3, older3_snap, f2_a4_snap)
        m.d.sync += [
            f3_valid.eq(f2_valid), f3_go.eq(go), f3_err.eq(f2_err), f3_user.eq(f2_user),
            f3_pool.eq(f2_pool), f3_slot.eq(f2_slot), f3_tag.eq(f2_tag), f3_in_pool.eq(f2_in_pool),
            f3_next.eq(plus_one(f2_tag)),
            f3_in.eq(Cat(f2_pool == pool.index for pool in pools)),
            f3_never_granted.eq(any_of(f2_never_granted)), f3_same_second.eq(f2_same_second),
            f3_hit_a2.eq(hit_a2), f3_a2_tag_ok.eq(tag_ok(a4_tag, f2_tag)),
            f3_hit_a3.eq(older3), f3_a3_tag_ok.eq(older3_tag_ok),
            f3_older_next.eq(Mux(hit_a2, plus_one(a4_tag), older3_next)),
            f3_older_snap.eq(Mux(hit_a2, a4_snap, older3_snap)),
        ]
        # (for an early pool, f3_rel_f3 and f3_quiet also stop the memories' view
        # when free t-4 released the slot, and f3_quiet when alloc t-4 granted
        # it (f3_hit_a3 takes that grant then): the read may miss either)
        m.d.sync += f3_rel_f3.eq(rel_f3 | f2_rel_f4 if early else rel_f3)
        # a free that goes on to the memories' view unless alloc t-1 or free t-2
        # (known a stage later) touched the slot: the flags of by_mem_next below
        # that are known now, in one
        f3_quiet = reg("f3_quiet", valid=True)
        quiet = go & ~hit_a2 & ~hit_a3 & ~rel_f3
        m.d.sync += f3_quiet.eq(quiet & ~f2_hit_a4 & ~f2_rel_f4 if early else quiet)

        # ---- free stage 4: RESOLVE what every older request did to the slot ------
        # Alloc t-1 is in a4 now; free t-2's decision is in f5; free t-1 is
        # deciding (stage 5 below): its release of the same slot is registered at
        # the edge it decides (in f4_blocked). Everything is registered as
        # flags, so that the decision is a small function. The memories' view
        # comes from their output registers, per pool (no multiplexer before the
        # compare).
        f4_valid = reg("f4_valid", valid=True)
        f4_go, f4_err, f4_user = reg("f4_go", valid=True), reg("f4_err", 4), reg("f4_user", U)
        f4_pool, f4_slot, f4_in_pool = reg("f4_pool", P), reg("f4_slot", S), reg("f4_in_pool")
        f4_in = reg("f4_in", len(pools))
        # alloc t-1 granted the slot, or free t-1 released it (registered at the
        # edge it decides): either stops every older view of the slot
        f4_blocked = reg("f4_blocked", valid=True)
        # held (and the tag and snapshot it is held under) as every request but
        # alloc t-1 and free t-1 leaves it
        f4_hit_a1, f4_rest_held = reg("f4_hit_a1"), reg("f4_rest_held")
        # (tags as the queue stores a released slot's: + 1, the tag its next grant takes)
        f4_a1_next, f4_a1_snap = reg("f4_a1_next", TR), reg("f4_a1_snap")
        f4_rest_next, f4_rest_snap = reg("f4_rest_next", TR), reg("f4_rest_snap")
        # which grant a release would rest on: alloc t-1's, an older in-flight
        # alloc's, or pool p's memories'
        f4_by_a1, f4_by_older = reg("f4_by_a1", valid=True), reg("f4_by_older", valid=True)
        f4_by_mem = reg("f4_by_mem", len(pools), valid=True)
        f4_mem_ok = reg("f4_mem_ok", len(pools))     # pool p's memories hold the slot under the tag

        hit_a1, rel_f2 = Signal(), Signal()
        m.d.comb += [hit_a1.eq(same_slot(a4_valid & a4_ok, a4_pool, a4_slot, f3_pool, f3_slot)),
                     rel_f2.eq(f3_same_second & f5_ok)]

        def mem_parts(st):
            # pool p's memories, a bank at a time (the parity and the grant record
            # are read at one address: their banks are chosen alike; a parity in
            # flip-flops, beside banks made shallow by a test, is one part):
            # (bank chosen, parity, grant record)
            parities = st.parity_r.parts
            if len(parities) == 1 < len(st.grant_r.parts):
                parities = [(bank, parities[0][1]) for bank, _ in st.grant_r.parts]
            return [(bank, parity, record)
                    for (bank, record), (_, parity) in zip(st.grant_r.parts, parities, strict=True)]

        def mem_banks(st):
            # the same, with whether the slot is held (parity == snapshot)
            return [(bank, parity == record.snap, record) for bank, parity, record in mem_parts(st)]

        def held_as(record, parity, next_tag, select):
            # select, the slot held (parity == snapshot) and its tag matching (the
            # record's next tag against the presented one + 1), on one chain
            if not T:
                return select & (parity == record.snap)
            return equal(Cat(next_of(record), parity, select), Cat(next_tag, record.snap, Const(1)))
        # a never-granted slot is free, whatever its (never written) memories hold
        may_hold = ~f3_never_granted
        views = [(f3_in[pool.index] & bank, held, record)
                 for pool, st in zip(pools, state, strict=True) for bank, held, record in mem_banks(st)]
        chosen_held = any_of(select & held for select, held, _ in views)
        mem_next = choose_one_hot([(select, next_of(record)) for select, _, record in views], TR)
        mem_snap = any_of(select & record.snap for select, _, record in views)
        older_hit = f3_hit_a2 | (~rel_f2 & f3_hit_a3)
        # (alloc t-1's hit, a carry chain, is not folded in: f4_blocked stops
        # these flags in stage 5, so the chain ends in four registers, not in
        # every pool's: place and route showed it fanned out to two flags per
        # pool, 8 pools' worst path)
        by_mem_next = Mux(f3_quiet & ~rel_f2, f3_in, 0)
        # youngest first: alloc t-2, free t-2, alloc t-3, free t-3, the memories.
        # A slot at or above the fresh counter is free whatever an older alloc
        # did: a flush since then restarted the order.
        rest_held = may_hold & (f3_hit_a2 | (~rel_f2 & (f3_hit_a3 | (~f3_rel_f3 & chosen_held))))
        if early:
            # (banked memories: chosen_held is a choice of the banks, a chain of
            # its own; the flags that gate it are formed beside it, so that one
            # LUT follows it: nested, the Xilinx estimate put two after it, five
            # levels with a guard)
            older_held, mem_gate = Signal(name="f3_older_held"), Signal(name="f3_mem_gate")
            m.d.comb += [older_held.eq(may_hold & older_hit), mem_gate.eq(may_hold & ~rel_f2 & ~f3_rel_f3)]
            rest_held = older_held | (mem_gate & chosen_held)
        # Of several pools, the memories' view is registered per pool, beside
        # its memories, and chosen in stage 5: place and route showed the
        # choice among 8 pools' grant records (their held flags, next tags and
        # snapshots ORed on chains), gathered from across the chip into one
        # register, as the worst path of 8 pools. Each pool's release then
        # writes its own record's view (it writes only when the free is its).
        m.d.sync += [
            f4_valid.eq(f3_valid), f4_go.eq(f3_go), f4_err.eq(f3_err), f4_user.eq(f3_user),
            f4_pool.eq(f3_pool), f4_slot.eq(f3_slot), f4_in_pool.eq(f3_in_pool), f4_in.eq(f3_in),
            f4_hit_a1.eq(hit_a1), f4_a1_next.eq(plus_one(a4_tag)), f4_a1_snap.eq(a4_snap),
        ]
        if per_pool:
            f4_older = reg("f4_older")          # alloc t-2 or t-3 granted the slot
            f4_mem_held = reg("f4_mem_held", len(pools))
            f4_mem_snap = reg("f4_mem_snap", len(pools))
            f4_mem_next = [reg(f"f4_mem_next_{pool.name}", TR) for pool in pools]
            view_gate = may_hold & ~rel_f2 & ~f3_rel_f3
            m.d.sync += [
                f4_rest_held.eq(may_hold & older_hit),
                f4_rest_next.eq(f3_older_next), f4_rest_snap.eq(f3_older_snap),
                f4_older.eq(f3_hit_a2 | f3_hit_a3),
                f4_mem_held.eq(Cat(view_gate & any_of(f3_in[st.index] & bank & held
                                                      for bank, held, _ in mem_banks(st))
                                   for st in state)),
                f4_mem_snap.eq(Cat(any_of(bank & record.snap for bank, _, record in mem_banks(st))
                                   for st in state)),
                *(own.eq(choose_one_hot([(bank, next_of(record)) for bank, _, record in mem_banks(st)], TR))
                  for own, st in zip(f4_mem_next, state, strict=True)),
            ]
        else:
            m.d.sync += [
                f4_rest_held.eq(rest_held),
                f4_rest_next.eq(Mux(f3_hit_a2 | f3_hit_a3, f3_older_next, mem_next)),
                f4_rest_snap.eq(Mux(f3_hit_a2 | f3_hit_a3, f3_older_snap, mem_snap)),
            ]
        m.d.sync += [
            f4_by_a1.eq(f3_go & hit_a1 & tag_ok(a4_tag, f3_tag)),
            f4_by_older.eq(f3_go & may_hold & older_hit &
                           Mux(f3_hit_a2, f3_a2_tag_ok, f3_a3_tag_ok)),
            f4_by_mem.eq(by_mem_next),
            # (the bank's select and the parity folded into the tag's compare:
            # each bank's term is the carry out of its chain, with no LUT after it)
            f4_mem_ok.eq(Cat(any_of(held_as(record, parity, f3_next, may_hold & bank)
                                    for bank, parity, record in mem_parts(st))
                             for st in state)),
        ]

        # ---- free stage 5: DECIDE and release --------------------------------------
        # Youngest first: alloc t-1 (f4_hit_a1), free t-1 (f4_blocked, which
        # alloc t-1's hit sets too), then the rest as resolved.
        f5_valid = reg("f5_valid", valid=True)
        f5_err, f5_user = reg("f5_err", 4), reg("f5_user", U)
        f5_pool, f5_in_pool = reg("f5_pool", P), reg("f5_in_pool")
        held, release = Signal(), Signal()
        # A flush of the free's pool committed after the free's handshake (at edges
        # t+2..t+4, or now): the free is older, so it is judged as without it, but
        # the slot it releases is free after the flush anyway, so it writes
        # nothing: no parity toggle (a grant after the flush snapshots the parity
        # as it is), and no push into the emptied queue (a double grant).
        # Marks, as the free goes down the pipeline, of the flushes of its pool
        # that committed; in stage 4 they include the flush that commits at the
        # decision edge (in flush stage 0 then), and gate the free's flags for
        # its own pool: f4_live, f4_by_mem_live (f4_in, f4_by_mem as if no
        # flush, or 0), so the release below stays a function of six flags.
        f2_flushed, f3_flushed = reg("f2_flushed"), reg("f3_flushed")
        f4_live, f4_by_mem_live = reg("f4_live", len(pools)), reg("f4_by_mem_live", len(pools), valid=True)
        # pool p's flushes that commit at edges t+2, t+3 (the marks), t+4 (in
        # flush stage 1 now) and t+5 (in flush stage 0 now); f3_in is one-hot
        not_killed = ~(x1_select | x0_select) & Mux(f3_flushed, 0, Const(-1, len(pools)))
        # (alloc t-1's hit is in f4_blocked)
        by_mem_base = Signal(len(pools), name="f3_by_mem_base")
        m.d.comb += by_mem_base.eq(Mux(f3_quiet & ~rel_f2, f3_in, 0) & not_killed)
        m.d.sync += [f2_flushed.eq((x1_select & f1_hit).any()),
                     f3_flushed.eq(f2_flushed | (x1_select & f2_in).any()),
                     f4_live.eq(f3_in & not_killed),
                     f4_by_mem_live.eq(by_mem_base)]
        released_f1 = Signal()                  # this free releases the next one's slot
        m.d.comb += released_f1.eq(release & same_slot(f4_go, f4_pool, f4_slot, f3_pool, f3_slot))
        m.d.sync += f4_blocked.eq(hit_a1 | released_f1)
        held_before = f4_rest_held | any_of(list(f4_mem_held)) if per_pool else f4_rest_held
        m.d.comb += [
            held.eq(f4_hit_a1 | (~f4_blocked & held_before)),
            release.eq(f4_by_a1 | (~f4_blocked & (f4_by_older | any_of(f4_by_mem & f4_mem_ok)))),
        ]
        def held_under(a1, rest, mem=None):
            # the tag or snapshot the slot is held under: alloc t-1's, else an
            # older in-flight alloc's or the memories' (in ``rest``, or ``mem``
            # per pool)
            return Mux(f4_hit_a1, a1, rest if mem is None else Mux(f4_older, rest, mem))
        cur_snap = held_under(f4_a1_snap, f4_rest_snap, (f4_in & f4_mem_snap).any() if per_pool else None)
        # A release implies go and held, so it is asked last: the code without it
        # is one LUT of registered flags, and the release (behind the pools' OR
        # chain) only turns it into OK.
        free_err, unreleased_err = Signal(4), Signal(4)
        m.d.comb += [
            unreleased_err.eq(Mux(~f4_go, f4_err, Mux(~held, Err.NOT_ALLOCATED, Err.TAG_MISMATCH))),
            free_err.eq(Mux(release, Err.OK, unreleased_err)),
        ]
        # The queue's write is registered (in the memory, one edge after the
        # decision): the decision is logic, and a deep queue's block RAMs lie
        # across the chip, so its write enable and entry come from registers.
        # The parity write is not delayed (the free check reads the parity
        # memory; the forwarding above covers exactly three older frees). A
        # released slot is in the queue from the edge after its decision
        # (``push``), which makes the recycle delay 5.
        # A ring alloc younger than the free that took its slot and committed
        # before the decision edge (allocs t..t+2, now in a4, a3 and a2) read the
        # parity before this release: the release does not write it (the grant's
        # snapshot stands for it) and the alloc is not an overwrite. Compared in
        # stage 4, with the allocs in a3, a2 and committing; ring pools only.
        f4_taken_a4, f4_taken_a3, f4_taken_a2 = reg("f4_taken_a4"), reg("f4_taken_a3"), reg("f4_taken_a2")
        taken_now = [a1_select[st.index] & f3_in[st.index] & st.takes_now(f3_slot)
                     for st in state if st.overwrites]
        taken = [same_slot(a3_ring, a3_pool, a3_fresh_slot, f3_pool, f3_slot),
                 same_slot(a2_ring, a2_pool, a2_fresh_slot, f3_pool, f3_slot),
                 any_of(taken_now) if rings else Const(0)]
        m.d.sync += [f4_taken_a4.eq(taken[0]), f4_taken_a3.eq(taken[1]), f4_taken_a2.eq(taken[2])]
        # Such a race is registered as one flag, so that a ring pool's parity
        # write is a function of seven flags (two LUTs): asked from the three
        # above, after the release, a small ring's parity write (then its row
        # decode) was five to six levels deep in the Xilinx estimate.
        # (each compare's carry out one LUT beside a chain of its own)
        f4_raced = reg("f4_raced")
        m.d.sync += f4_raced.eq(any_of(taken[:2] + taken_now, chain=True))
        not_raced = ~f4_raced
        for st in state:
            # release & f4_in[p], as a function of six flags, unless a flush
            # overtook it (or, in a ring, a younger grant took the slot); what
            # it writes is the pool's (hwalloc.pool)
            release_p = ((f4_live[st.index] & (f4_by_a1 | (~f4_blocked & f4_by_older))) |
                         (~f4_blocked & f4_by_mem_live[st.index] & f4_mem_ok[st.index]))
            # (a parity built in flip-flops is written a row at a time, one
            # in LUT RAMs a group of rows at a time: the slot's row or group
            # one-hot, registered as the slot is)
            rows = None
            if st.parity_w.rows is not None:
                rows = reg(f"f4_rows_{st.pool.name}", len(st.parity_w.rows))
                low = (st.parity_w.rows_of - 1).bit_length()
                m.d.sync += rows.eq(Cat(f3_slot[low:st.pool.slot_bits] == r for r in range(len(rows))))
            if per_pool:
                snap = held_under(f4_a1_snap, f4_rest_snap, f4_mem_snap[st.index])
                next_tag = held_under(f4_a1_next, f4_rest_next, f4_mem_next[st.index])
                # (each pool's copy of the slot, loaded when the free is in it:
                # place and route showed f4_slot fanned out to 8 pools' writes
                # on the worst path of 8 pools)
                slot = reg(f"f4_slot_{st.pool.name}", st.pool.slot_bits)
                with m.If(f3_in[st.index]):
                    m.d.sync += slot.eq(f3_slot[:st.pool.slot_bits])
            else:
                snap, next_tag, slot = cur_snap, held_under(f4_a1_next, f4_rest_next), f4_slot
            st.release(m, release_p & not_raced if st.overwrites else release_p,
                       slot, snap, next_tag, rows)
        m.d.sync += [f5_valid.eq(f4_valid), f5_ok.eq(release), f5_err.eq(free_err),
                     f5_user.eq(f4_user), f5_pool.eq(f4_pool), f5_in_pool.eq(f4_in_pool)]

        # ---- ring overwrites: alloc stages 3 to 5 (see alloc stage 3) ------------
        # The parity write of a ring slot at this edge, for the alloc that commits
        # at this edge (a3_flip).
        f5_wrote, f5_wslot, f5_wpool, f5_wparity = reg("f5_wrote"), reg("f5_wslot", S), reg("f5_wpool", P), \
            reg("f5_wparity")
        m.d.sync += [f5_wrote.eq(any_of(st.parity_w.en for st in state if st.overwrites) if rings else 0),
                     f5_wslot.eq(f4_slot), f5_wpool.eq(f4_pool), f5_wparity.eq(~cur_snap)]
        # held at the alloc's place in the order: the pointer had lapped, the slot
        # is held as the memories (and free t-3) leave it, and no free t-2..t
        # released it (each decides in the cycle the alloc is in a2, a3, a4)
        a4_prev_held, a4_released, a5_overwrite = reg("a4_prev_held"), reg("a4_released"), reg("a5_overwrite")
        m.d.sync += [
            a3_flip.eq(same_slot(f5_wrote & a2_ring, f5_wpool, f5_wslot, a2_pool, a2_fresh_slot)),
            a3_flip_parity.eq(f5_wparity),
            a3_released.eq(release & f4_taken_a2),
            a4_prev_held.eq(a3_ring & a3_lapped & ring_held),
            a4_released.eq(a3_released | (release & f4_taken_a3)),
            a5_overwrite.eq(a4_prev_held & ~a4_released & ~(release & f4_taken_a4)),
        ]

        # ---- response delay lines: stage L-1 is the response register ----------
        # (each stream's valid bit before its response register, for *_cpu below)
        grant = Cat(a5_ok, a5_err, a5_pool, a5_slot, a5_addr, a5_tag, a5_user, a5_overwrite)
        grant_valid, grant_before = a5_valid, a4_valid
        for k in range(_ALLOC_DONE_STAGE + 1, cfg.latency):
            next_valid, next_grant = reg(f"a{k}_valid", valid=True), reg(f"a{k}_payload", len(grant))
            m.d.sync += [next_valid.eq(grant_valid), next_grant.eq(grant)]
            grant_before, grant_valid, grant = grant_valid, next_valid, next_grant
        freed = Cat(f5_ok, f5_err, f5_user, f5_pool, f5_in_pool)
        freed_valid, freed_before = f5_valid, f4_valid
        for k in range(_FREE_DONE_STAGE + 1, cfg.latency):
            next_valid, next_freed = reg(f"f{k}_valid", valid=True), reg(f"f{k}_payload", len(freed))
            m.d.sync += [next_valid.eq(freed_valid), next_freed.eq(freed)]
            freed_before, freed_valid, freed = freed_valid, next_valid, next_freed

        flushed = Cat(x2_ok, x2_err, x2_user, x2_pool)
        flushed_valid, flushed_before = x2_valid, x1_valid
        for k in range(3, cfg.latency):
            next_valid, next_flushed = reg(f"x{k}_valid", valid=True), reg(f"x{k}_payload", len(flushed))
            m.d.sync += [next_valid.eq(flushed_valid), next_flushed.eq(flushed)]
            flushed_before, flushed_valid, flushed = flushed_valid, next_valid, next_flushed
        m.d.comb += [self.flushed_valid.eq(flushed_valid),
                     Cat(self.flushed_ok, self.flushed_err, self.flushed_user, self.flushed_pool).eq(flushed)]

        grant_fields = [self.grant_ok, self.grant_err, self.grant_pool, self.grant_slot,
                        self.grant_addr, self.grant_tag if T else Signal(TR), self.grant_user,
                        self.grant_overwrite]
        m.d.comb += [self.grant_valid.eq(grant_valid), Cat(*grant_fields).eq(grant),
                     self.freed_valid.eq(freed_valid),
                     Cat(self.freed_ok, self.freed_err, self.freed_user, self.freed_pool,
                         self.freed_in_pool).eq(freed)]

        # ---- side information for the log -------------------------------------
        # The latency is fixed, so what the log needs from a request and no stage
        # uses rides a plain L-stage shift register beside the pipeline.
        def delayed(name, value):
            # (and the stage before the last)
            before = value
            for k in range(cfg.latency):
                stage = reg(f"{name}_d{k}", len(value))
                m.d.sync += stage.eq(value)
                before, value = value, stage
            return value, before

        grant_src, grant_src_before = delayed("alloc_src", self.alloc_src)
        grant_size, _ = delayed("alloc_size", self.alloc_size[:len(self.grant_size)])
        flushed_src, flushed_src_before = delayed("flush_src", self.flush_src)
        free_info, free_info_before = delayed("free_info", Cat(
            self.free_src, self.free_addr[:len(self.freed_addr)], self.free_tag if T else Const(0, 1)))
        m.d.comb += [self.grant_src.eq(grant_src), self.grant_size.eq(grant_size),
                     self.flushed_src.eq(flushed_src),
                     Cat(self.freed_src, self.freed_addr, self.freed_tag).eq(free_info)]
        for port, before, src_before in ((self.grant_cpu, grant_before, grant_src_before),
                                         (self.freed_cpu, freed_before, free_info_before[0]),
                                         (self.flushed_cpu, flushed_before, flushed_src_before)):
            cpu = Signal(name=f"{port.name}_q")        # reset, as a valid bit
            m.d.sync += cpu.eq(before & src_before)
            m.d.comb += port.eq(cpu)
        # any valid bit set, as registered ORs of six bits each (one LUT: of six
        # valid signals, some a bit per pool, the OR was wide enough for the
        # mapper to build it from the pools' grant logic, six levels deep on a
        # random config), then their OR on a carry chain: a cycle late
        bits = Cat(*valids)
        parts = [Signal(name=f"busy_{i}") for i in range(0, len(bits), 6)]
        for i, part in enumerate(parts):
            m.d.sync += part.eq(bits[6 * i:6 * i + 6].any())
        m.d.comb += self.busy.eq(any_of(parts))
        return m


    def _view(self, m, state, k, view):
        """One of the guard's views of a slot (SPEC §8): asked at edge e with
        ``<view>_pool`` (one-hot) and ``<view>_slot`` (from registers), answered
        after edge e + VIEW_STAGES on ``<view>_held`` and ``<view>_tag``. Its
        own read port (``k``) of each pool's records, and the never-used slots
        as of VIEW_DELAY edges ago: a consistent picture of the slot as of some
        request accepted less than L cycles before, not forwarded (the SPEC
        leaves a burst free to see or miss what was accepted in the last L
        cycles)."""
        n = len(state)
        ask_pool, ask_slot = getattr(self, f"{view}_pool"), getattr(self, f"{view}_slot")
        # edge e: the address taken, and the never-used compare registered;
        # edge e + 1: the records in their registers, the flags beside them
        never0, pool0, never1, pool1 = (Signal(n, name=f"{view}_{part}")
                                        for part in ("never0", "pool0", "never1", "pool1"))
        m.d.sync += [pool0.eq(ask_pool), pool1.eq(pool0), never1.eq(never0)]
        held2, next2 = Signal(name=f"{view}_held2"), Signal(len(getattr(self, f"{view}_next")),
                                                         name=f"{view}_next2")
        held_by, next_by = [], []
        for st in state:
            sb = st.pool.slot_bits
            grant_r, parity_r = st.view_grant_r[k], st.view_parity_r[k]
            m.d.comb += [grant_r.addr.eq(ask_slot[:sb]), parity_r.addr.eq(ask_slot[:sb])]
            m.d.sync += never0[st.index].eq(st.view_never_granted(m, ask_slot, VIEW_DELAY))
            record = grant_r.data
            held_by.append(pool1[st.index] & ~never1[st.index] & (parity_r.data == record.snap))
            if st.tag_bits:
                next_by.append((pool1[st.index], record.next))
        m.d.sync += [held2.eq(or_all(held_by)),
                     next2.eq(choose_one_hot(next_by, len(next2)) if next_by else 0)]
        m.d.comb += [getattr(self, f"{view}_held").eq(held2), getattr(self, f"{view}_next").eq(next2)]


class HwallocTop(_Timing, wiring.Component):
    """The generated top module, ``hwalloc.Allocator``: SPEC §2 ports around
    :class:`AllocatorCore`, with the AXI4-Lite register interface and the
    interrupt of SPEC §6, and the access guard of SPEC §8 if the config has one.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config`
        A validated config (:func:`hwalloc.load_config`, :func:`hwalloc.parse_config`).

    Attributes
    ----------
    signature : the SPEC §2 ports: ``aclk``, ``aresetn``, the native request
        and response ports, ``s_axil_*``, ``irq``, and with a guard ``s_axi_*``
        and ``m_axi_*``: the names and widths of the generated Verilog.
    latency : int
        L: a request whose handshake is at edge t is answered at edge t + L.
    recycle_delay : int
        R: a slot freed at edge t is granted again no earlier than t + R.

    Notes
    -----
    Its logic runs in a clock domain of its own, ``aclk``, on the ``aclk``
    port with the synchronous active-low reset ``aresetn``: drive them from
    your design (``alloc.aclk.eq(ClockSignal())``,
    ``alloc.aresetn.eq(~ResetSignal())``). A register ALLOC, FREE or FLUSH
    takes the pipeline for one cycle, three cycles after its bus request, in
    which ``alloc_ready``, ``free_ready`` or ``flush_ready`` is low; a register
    request waits at most that one cycle and the native side loses at most that
    one cycle per register request. Otherwise the ready outputs are low only
    during reset and for the first cycle after it.
    """

    def __init__(self, config, *, flush=True):
        self._config = config
        self._flush = flush             # see AllocatorCore
        members = {"aclk": In(1), "aresetn": In(1)}
        for name, member in _native_members(config).items():
            members[name] = member
            if name == "alloc_user":
                members["alloc_ready"] = Out(1)
            if name == "free_user":
                members["free_ready"] = Out(1)
            if name == "flush_user":
                members["flush_ready"] = Out(1)
        members.update(axil_members())
        members["irq"] = Out(1)
        members.update(self._guard_ports())
        super().__init__(wiring.Signature(members))
        # inner state that the formal harness (hwalloc.formal) checks: not ports
        self.probe = {name: Signal(irq_bits(config)) for name in ("irq_status", "irq_set", "irq_clear")}

    def _guard_ports(self):
        """``s_axi_*`` and ``m_axi_*`` of a guard (SPEC §8), else none."""
        cfg = self._config
        if cfg.guard is None:
            return {}
        g, A, T = cfg.guard, cfg.addr_width, cfg.tag_bits
        return {**axi4_members("s_axi", addr_width=A + T, data_bytes=g.data_bytes,
                               id_width=g.id_width, master=False),
                **axi4_members("m_axi", addr_width=A, data_bytes=g.data_bytes,
                               id_width=g.id_width, master=True)}

    def _connect_guard(self, m, core, regs):
        guard = m.submodules.guard = AccessGuard(self._config)
        for name in self._guard_ports():
            port, inner = getattr(self, name), getattr(guard, name)
            m.d.comb += (inner.eq(port) if self.signature.members[name].flow == wiring.In
                         else port.eq(inner))
        for d in ("ar", "aw"):
            for part in ("pool", "slot"):
                m.d.comb += getattr(core, f"view_{d}_{part}").eq(getattr(guard, f"view_{d}_{part}"))
            for part in ("held", "next"):
                m.d.comb += getattr(guard, f"view_{d}_{part}").eq(getattr(core, f"view_{d}_{part}"))
            for part in ("checked", "refused", "err", "id", "addr", "tag", "pool"):
                m.d.comb += getattr(regs, f"guard_{d}_{part}").eq(getattr(guard, f"{d}_{part}"))
        m.d.comb += [guard.lock_on.eq(regs.guard_lock_on), guard.unlock.eq(regs.guard_unlock),
                     regs.guard_locked.eq(guard.locked)]

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        # its own clock domain on aclk/aresetn, named `aclk` (the logic is written
        # in `sync` and renamed below), so that a design that instantiates the
        # component keeps its own `sync`
        m.domains.sync = cd = ClockDomain(local=True)
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.core = core = AllocatorCore(cfg, flush=self._flush)
        depth = read_depth(cfg)
        m.submodules.axil = axil = AxiLiteAdapter(depth=depth)
        m.submodules.regs = regs = RegisterFile(cfg, depth=depth)
        m.d.comb += [probe.eq(getattr(regs, name)) for name, probe in self.probe.items()]
        wiring.connect(m, axil.bus, regs.bus)
        for name in axil_members():
            port, inner = getattr(self, name), getattr(axil, name)
            m.d.comb += (inner.eq(port) if axil.signature.members[name].flow == wiring.In
                         else port.eq(inner))
        if cfg.guard is not None:
            self._connect_guard(m, core, regs)

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
            # (a native flush takes the port when no register one does: it is
            # decoded apart, its select chosen by flush_src last)
            core.flush_port_valid.eq(self.flush_valid & running),
            core.flush_port_pool.eq(self.flush_pool),
            core.free_oor_pool.eq(regs.req_free_pool),
            core.free_reg_hit.eq(regs.req_free_hit),
            core.flush_reg_select.eq(regs.req_flush_select),
            self.flush_ready.eq(running & ~regs.req_flush),
            core.flush_valid.eq(regs.req_flush | (self.flush_valid & self.flush_ready)),
            core.flush_src.eq(regs.req_flush),
            core.flush_pool.eq(Mux(regs.req_flush, regs.req_flush_pool, self.flush_pool)),
            core.flush_user.eq(Mux(regs.req_flush, 0, self.flush_user)),
        ]
        if cfg.tag_bits:
            m.d.comb += core.free_tag.eq(Mux(regs.req_free, regs.req_free_tag, self.free_tag))

        # ---- responses: native ones to the ports, all of them to the register file
        for name in ("ok", "err", "pool", "slot", "addr", "user") + (("tag",) if cfg.tag_bits else ()):
            m.d.comb += getattr(self, f"grant_{name}").eq(getattr(core, f"grant_{name}"))
        for name in ("ok", "err", "user"):
            m.d.comb += [getattr(self, f"freed_{name}").eq(getattr(core, f"freed_{name}")),
                         getattr(self, f"flushed_{name}").eq(getattr(core, f"flushed_{name}"))]
        m.d.comb += [
            self.grant_valid.eq(core.grant_valid & ~core.grant_src),
            self.freed_valid.eq(core.freed_valid & ~core.freed_src),
            self.flushed_valid.eq(core.flushed_valid & ~core.flushed_src),
        ]
        for name in ("valid", "ok", "err", "pool", "slot", "user", "src", "size", "overwrite", "cpu"):
            m.d.comb += getattr(regs, f"rsp_grant_{name}").eq(getattr(core, f"grant_{name}"))
        if cfg.tag_bits:
            m.d.comb += regs.rsp_grant_tag.eq(core.grant_tag)
        for name in ("valid", "ok", "err", "pool", "in_pool", "user", "src", "addr", "tag", "cpu"):
            m.d.comb += getattr(regs, f"rsp_freed_{name}").eq(getattr(core, f"freed_{name}"))
        for name in ("valid", "ok", "err", "pool", "user", "src", "cpu"):
            m.d.comb += getattr(regs, f"rsp_flushed_{name}").eq(getattr(core, f"flushed_{name}"))
        m.d.comb += [regs.busy.eq(core.busy), regs.ready.eq(running), self.irq.eq(regs.irq),
                     regs.native_alloc_valid.eq(self.alloc_valid),
                     regs.native_free_valid.eq(self.free_valid),
                     regs.native_flush_valid.eq(self.flush_valid)]
        return DomainRenamer("aclk")(m)
