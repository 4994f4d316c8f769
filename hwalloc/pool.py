"""A pool's slot state, and the narrow interface through which the core's
alloc, free and flush pipelines use it (:class:`PoolState`).

The pipelines (:mod:`hwalloc.core`) own the timing: when a request commits,
what is forwarded, how the free check is resolved. A pool owns what a kind
decides: which slot an alloc takes (and whether it can), what a release leaves
behind, what a flush resets. :class:`~hwalloc.freelist.FreelistPool` and
:class:`~hwalloc.ring.RingPool` are the two kinds; :data:`hwalloc.kinds.KINDS`
maps a config's ``kind`` to its class. A new kind is one new file with a
subclass of :class:`PoolState`, and one entry in that table.

Every kind keeps the per-slot records the free check reads (SPEC §4.4):

``grant``   per slot ``{next, snap}`` of its latest grant (``next``: its tag
            + 1, the tag the slot's next grant takes); written by the alloc
            (three cycles after its commit; ``grant_w``, given the granted tag),
            read by the free check (``grant_r``) and by the commit for the slot
            it takes (``last_r``: the tag a grant goes on from).
            In a pool of a bank or more (:data:`hwalloc.memory.BANK_DEPTH`
            slots, :func:`hwalloc.memory.far`) the free check's reads of both
            take three edges (``edges``), and the core gives them their
            address an edge earlier.
``parity``  per slot, one bit toggled by every successful free (``parity_w``);
            read by the free check (``parity_r``) and by the commit for the slot
            it takes (``copy_r``: the grant's snapshot).

A slot is held iff ``parity == grant.snap``. No memory is ever cleared: slots at
or above the ``fresh`` counter are free (never granted since reset or the last
flush) whatever the memories hold, which makes reset and flush O(1).
"""

from amaranth import Cat, Const, Mux, Signal
from amaranth.lib import data

from ._rtl import at_least
from .memory import far, memory

__all__ = ["PoolState"]


class PoolState:
    """The state every kind has, built into the core's module ``m``.

    Parameters
    ----------
    m : the core's :class:`~amaranth.hdl.Module`
    pool : :class:`hwalloc.config.Pool`
    config : :class:`hwalloc.config.Config`
    reg : the core's register factory, ``reg(name, shape=1, *, valid=False)``
        (valid registers are reset, payloads are not)

    What the alloc commit reads (alloc stage 2; flags and registers only, so
    that the commit stays shallow):

    ``can_grant``    an alloc of this pool committing at this edge is granted
    ``takes_fresh``  ... and takes ``fresh_slot`` (else the queue's head)
    ``fresh_slot``   the never-used slot (a ring: its pointer's) taken at this edge
    ``may_be_held``  the slot it takes may still be held (an overwrite: rings)

    and, later in the pipelines, :meth:`head_parts`, :meth:`fresh_parity`,
    :meth:`never_granted` and :meth:`takes_now`. What they write:
    :meth:`commit` (alloc stage 2, with a flush of the same edge) and
    :meth:`release` (free stage 5).
    """

    #: Grants may overwrite held slots, and a free may race the grant that
    #: reuses its slot (no recycle delay): the core decides overwrites for it.
    overwrites = False

    def __init__(self, m, pool, config, reg):
        self.pool = pool
        self.index = pool.index
        self.tag_bits = T = config.tag_bits
        n, name = pool.slots, pool.name
        # a grant record holds the tag the slot's next grant takes (its last
        # tag + 1): the alloc reads it with no adder after the memory. The write
        # port is given the granted tag, the memory adds one behind its registers.
        latest = data.StructLayout({"snap": 1, **({"next": T} if T else {})})
        # with a guard, two more read ports of each (a copy of each RAM each):
        # the guard's own views of the slots, for its reads and its writes (see
        # :meth:`view_never_granted`)
        reads = 4 if config.guard is not None else 2
        # (the free check's reads take three edges in a pool of a bank or more:
        # its RAMs lie across the chip)
        late = (0,) if far(n) else ()
        self.grant_w, (self.grant_r, self.last_r, *view_grant) = memory(
            m, f"{name}_grant", latest, n, reads=reads, registered_write=True,
            stored=self._record_stored(latest) if T else None, late=late)
        self.parity_w, (self.parity_r, self.copy_r, *view_parity) = memory(
            m, f"{name}_parity", 1, n, reads=reads, write_rows=True, late=late)
        self.view_grant_r, self.view_parity_r = view_grant, view_parity
        self._delays = {}       # (signal name, delay) -> its delayed copy, shared by the views
        # never-used slots are fresh..n-1 (a ring: the slot its next alloc takes)
        self.fresh = Signal(range(n + 1), name=f"{name}_fresh")
        # slots 0..seen-1 were granted since reset: their grant records hold
        # the tag after their last, which a grant after a flush goes on from
        self.seen = Signal(range(n + 1), name=f"{name}_seen")
        self.seen_prev = Signal(range(n + 1), name=f"{name}_seen_prev")     # a cycle late
        self.flushing = Signal(name=f"{name}_flushing")     # a flush commits at this edge
        # what the counter is loaded with at this edge (the kind's _commit says)
        self.fresh_next = Signal(range(n + 1), name=f"{name}_fresh_next")
        # the never-used slot an alloc committing at this edge takes: 0 if a
        # flush commits with it, else the counter's; a register loaded with
        # what that will be, so that the memories' read address (the parity
        # and the record of the slot) comes from no logic: place and route
        # showed the choice, a LUT fanned out to every LUT RAM of a pool, on
        # SIZE_CLASSES' worst path
        self.fresh_slot = Signal(range(n), name=f"{name}_fresh_slot")
        self.take_fresh = Signal(name=f"{name}_take_fresh")

    @staticmethod
    def _record_stored(layout):
        # what a grant record holds for what its write port is given: the tag + 1
        field = layout["next"]
        lo, hi = field.offset, field.offset + field.width

        def stored(bits):
            return Cat(bits[:lo], (bits[lo:hi] + 1)[:hi - lo], bits[hi:])
        return stored

    # ---- what the kind says (overridden) -------------------------------------
    @property
    def has_fresh(self):
        """A never-used slot is left (a flag)."""
        raise NotImplementedError

    @property
    def can_grant(self):
        return self.has_fresh | self.flushing

    @property
    def takes_fresh(self):
        return self.has_fresh | self.flushing

    @property
    def may_be_held(self):
        return Const(0)

    def never_granted(self, slot):
        """``slot`` is free whatever the memories hold: not granted since reset
        or the last flush, as the allocs committed so far leave it (free stage 2)."""
        return at_least(slot, self.fresh)

    def _delayed(self, m, signal, delay):
        key = (signal.name, delay)
        if key not in self._delays:
            for k in range(delay):
                copy = Signal.like(signal, name=f"{signal.name}_view{k + 1}")
                m.d.sync += copy.eq(signal)
                signal = copy
            self._delays[key] = signal
        return self._delays[key]

    def view_never_granted(self, m, slot, delay):
        """:meth:`never_granted` as the guard's view sees it: with the pool's
        state ``delay`` edges late, the time a grant takes from its commit to
        its record in the memories, so that the view's counter and records agree."""
        return at_least(slot, self._delayed(m, self.fresh, delay))

    def head_parts(self, select):
        """The queue's head read at the commit, as ``(select, entry)`` per memory
        bank, ``select`` ANDed in (alloc stage 4); none if the kind queues nothing."""
        return []

    def fresh_parity(self, flip, flip_parity):
        """The parity of the never-used slot taken, as the grant snapshots it
        (alloc stage 4); ``flip``: free t-3 wrote it at the commit edge, with
        ``flip_parity`` (only a kind that ``overwrites`` can see that)."""
        return self.copy_r.data

    def takes_now(self, slot):
        """An alloc of this pool committing at this edge would take ``slot``
        (for a kind that ``overwrites``: the free racing it, free stage 4)."""
        return Const(0)

    # ---- what it writes ---------------------------------------------------------
    def commit(self, m, selected, flushing, flushing_next):
        """Alloc stage 2, the commit edge: ``selected`` says an alloc of this
        pool that fits commits at this edge, ``flushing`` that a flush of it does
        (first: the alloc then takes slot 0, and the order restarts), and
        ``flushing_next`` that one does at the next edge (the register
        ``flushing`` is loaded from)."""
        m.d.comb += [
            self.flushing.eq(flushing),
            self.take_fresh.eq(selected & self.takes_fresh),
            # The next never-used slot's parity and its last grant record are read
            # every cycle; the data is used only by the cycle that grants.
            self.copy_r.addr.eq(self.fresh_slot),
            self.last_r.addr.eq(self.fresh_slot),
            self.fresh_next.eq(self.fresh),
        ]
        with m.If(self.take_fresh & at_least(self.fresh_slot, self.seen)):
            m.d.sync += self.seen.eq(self.fresh_slot + 1)
        m.d.sync += self.seen_prev.eq(self.seen)
        self._commit(m, selected, flushing)
        # (fresh_slot is Mux(flushing, 0, fresh) at every edge: both are 0 after reset)
        m.d.sync += [self.fresh.eq(self.fresh_next),
                     self.fresh_slot.eq(Mux(flushing_next, 0, self.fresh_next))]

    def _commit(self, m, selected, flushing):
        """The kind's part of :meth:`commit`: what the counter ``fresh`` is
        loaded with at this edge, as ``fresh_next`` (comb; it holds otherwise)."""
        raise NotImplementedError

    def release(self, m, release, slot, snap, next_tag, rows):
        """Free stage 5, the decision edge: ``release`` says a free releases
        ``slot`` of this pool, whose grant had ``snap`` and a tag whose
        successor is ``next_tag`` (what the queue keeps: the tag of the slot's
        next grant), and ``rows`` the slot's row or group of rows one-hot (a
        register, for a parity built in flip-flops or LUT RAM groups:
        ``parity_w.rows``). A release toggles the slot's
        parity. (In a kind that :attr:`overwrites`, a free raced by an alloc
        younger than it that already took the slot releases nothing here: the
        core folds the race into ``release``, and the grant's snapshot stands
        for the release.)"""
        m.d.comb += [
            self.parity_w.addr.eq(slot), self.parity_w.data.eq(~snap),
            self.parity_w.en.eq(release),
        ]
        if self.parity_w.rows is not None:
            m.d.comb += self.parity_w.rows.eq(rows)
