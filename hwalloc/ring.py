"""Ring pools (SPEC §4.2): slots in ring order, 0, 1, ..., N-1, 0, ...; never
EXHAUSTED; a grant of a slot still held overwrites it.

A ring has no queue: its ``fresh`` counter is the pointer and wraps, and
``lapped`` says it went round since reset or the last flush (then every slot
was granted since, and the one taken may still be held: an overwrite if its
parity still equals its record's snapshot, which the core decides).

Released slots are not queued, so a free can race the grant that reuses its
slot (no recycle delay). The core orders them by handshake: a free older than
the alloc that decides after the alloc's commit either writes the parity at
the commit edge itself (the core forwards that write into the grant's snapshot:
:meth:`RingPool.fresh_parity`), or writes nothing (``raced``: the snapshot,
taken before it, stands for its release); either way it cancels the overwrite.
Four grants in flight never name one slot of a ring of at least
:data:`~hwalloc.config.MIN_RING_SLOTS` slots (but across a flush, which frees
the slot anyway).
"""

from amaranth import Const, Mux, Signal

from ._rtl import equal
from .pool import PoolState

__all__ = ["RingPool"]


class RingPool(PoolState):
    """A ring pool's pointer (see :class:`~hwalloc.pool.PoolState` for the interface)."""

    overwrites = True

    def __init__(self, m, pool, config, reg):
        super().__init__(m, pool, config, reg)
        self.lapped = Signal(name=f"{pool.name}_lapped")
        # the pointer is at slot n-1: a register, so that the wrap is decided
        # from registers only
        self.at_last = Signal(name=f"{pool.name}_at_last")

    @property
    def has_fresh(self):
        return Const(1)         # the pointer's slot, always

    @property
    def may_be_held(self):
        return self.lapped & ~self.flushing

    def never_granted(self, slot):
        # the slots from the pointer on, until it has lapped
        return super().never_granted(slot) & ~self.lapped

    def view_never_granted(self, m, slot, delay):
        return super().view_never_granted(m, slot, delay) & ~self._delayed(m, self.lapped, delay)

    def fresh_parity(self, flip, flip_parity):
        return Mux(flip, flip_parity, self.copy_r.data)

    def takes_now(self, slot):
        # (if a flush commits now, the racing free is older than it: the core
        # kills it whatever this says)
        sb = self.pool.slot_bits
        return equal(slot[:sb], self.fresh[:sb])

    def _commit(self, m, selected, flushing):
        # the pointer's slot, then the next one round the ring; after a flush
        # the alloc takes slot 0 (fresh_slot) and the lap restarts (n >= 4:
        # after a flush the pointer is at 0 or 1, never at n-1)
        at_last, lapped = self.at_last, self.lapped
        last = ~flushing & at_last
        with m.If(self.take_fresh):
            m.d.comb += self.fresh_next.eq(Mux(last, 0, Mux(flushing, 1, self.fresh + 1)))
            m.d.sync += [at_last.eq(~flushing & ~at_last & (self.fresh == self.pool.slots - 2)),
                         lapped.eq((lapped & ~flushing) | last)]
        with m.Elif(flushing):
            m.d.comb += self.fresh_next.eq(0)
            m.d.sync += [at_last.eq(0), lapped.eq(0)]

    # (released ring slots are not queued: the base class's release writes the
    # parity only; a release raced by the grant that reused its slot is none,
    # as the core decides)
