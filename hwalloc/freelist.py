"""Freelist pools (SPEC §4.1): never-used slots in index order, then released
slots in the order they were released (a FIFO), EXHAUSTED when neither is left.

``queue``   FIFO of released slots: ``{slot, next, snap, zero}`` (``next``:
            the tag the slot's next grant takes, its last + 1; ``zero``: the
            slot is slot 0, see alloc stage 3 in the core; both only with
            tags); written by the free
            decision (through registers, an edge later), read by the alloc
            commit. A released slot is in the queue from the edge after its
            decision (``push``), which makes the recycle delay R = 5.
"""

from amaranth import Const, Mux, Signal
from amaranth.lib import data

from ._rtl import any_of
from .memory import memory
from .pool import PoolState

__all__ = ["FreelistPool"]


class FreelistPool(PoolState):
    """A freelist pool's queue of released slots and its counters (see
    :class:`~hwalloc.pool.PoolState` for the interface)."""

    def __init__(self, m, pool, config, reg):
        super().__init__(m, pool, config, reg)
        n, name, T = pool.slots, pool.name, config.tag_bits
        # (zero: slot == 0, for the alloc's forwarding of tags after a flush,
        # alloc stage 3: without tags nothing is forwarded)
        entry = data.StructLayout({"slot": pool.slot_bits, "snap": 1,
                                   **({"zero": 1, "next": T} if T else {})})
        self.queue_w, (self.queue_r,) = memory(m, f"{name}_queue", entry, n, reads=1, registered_write=True)
        self.head = Signal(range(n), name=f"{name}_head")
        self.tail = Signal(range(n), name=f"{name}_tail")
        # released slots in the queue, but for the last edge's push and pop
        # (``pushed``, ``popped``), which it takes in a cycle late
        self.count = Signal(range(n + 1), name=f"{name}_count")
        self.pushed = Signal(name=f"{name}_pushed")
        self.popped = Signal(name=f"{name}_popped")
        self.at = Signal(3, init=1, name=f"{name}_at")     # count == 0, 1, 2
        # count != 0 and fresh != n, kept as flags so the commit is shallow
        self.nonempty = Signal(name=f"{name}_nonempty")
        self._has_fresh = Signal(init=1, name=f"{name}_has_fresh")
        self.pop = Signal(name=f"{name}_pop")
        # the queue's push of a release, a register one edge after the decision
        self.push = reg(f"{name}_push", valid=True)

    @property
    def has_fresh(self):
        return self._has_fresh

    @property
    def can_grant(self):
        return self._has_fresh | self.nonempty | self.flushing

    def head_parts(self, select):
        return [(select & bank, entry) for bank, entry in self.queue_r.parts]

    def _commit(self, m, selected, flushing):
        n = self.pool.slots
        m.d.comb += [
            self.pop.eq(selected & ~flushing & ~self._has_fresh & self.nonempty),
            self.queue_r.addr.eq(self.head),
        ]
        with m.If(self.take_fresh):
            m.d.comb += self.fresh_next.eq(self.fresh_slot + 1)
            m.d.sync += self._has_fresh.eq(self.fresh_slot != n - 1)
        with m.Elif(flushing):
            m.d.comb += self.fresh_next.eq(0)
            m.d.sync += self._has_fresh.eq(1)
        with m.If(self.pop):
            m.d.sync += self.head.eq(Mux(self.head == n - 1, 0, self.head + 1))
        with m.If(flushing):
            # the queue emptied: a release deciding at this edge is older than
            # the flush and is not pushed (the core kills it), so the tail stays
            m.d.sync += self.head.eq(self.tail)

    def release(self, m, release, slot, snap, next_tag, rows):
        # toggle the parity, and queue the slot with the tag its next grant takes
        super().release(m, release, slot, snap, next_tag, rows)
        n = self.pool.slots
        m.d.comb += [
            self.queue_w.addr.eq(self.tail),
            self.queue_w.data.slot.eq(slot),
            self.queue_w.data.snap.eq(~snap),
            # (on its own carry chain: the pools' compares as LUTs share prefixes, a chain of LUTs)
            *([self.queue_w.data.zero.eq(~any_of(slot[:self.pool.slot_bits], chain=True))]
              if self.tag_bits else []),
            self.queue_w.en.eq(release),
        ]
        if self.tag_bits:
            m.d.comb += self.queue_w.data.next.eq(next_tag)
        m.d.sync += self.push.eq(release)
        with m.If(release):
            m.d.sync += self.tail.eq(Mux(self.tail == n - 1, 0, self.tail + 1))
        # The queue holds count + pushed - popped slots: the count takes the
        # last edge's push and pop a cycle late, so its adder sees registers
        # only, and so do the flags at[k] (count == k) that decide whether
        # this edge's pop empties the queue.
        up, down, at, count = self.pushed, self.popped, self.at, self.count

        def at_k(k):
            return at[k] if 0 <= k < 3 else (count == k if k > 0 else Const(0))
        m.d.sync += [
            up.eq(self.push), down.eq(self.pop),
            count.eq(count + Mux(up == down, 0, Mux(up, 1, Const(-1, len(count))))),
        ]
        for u in (0, 1):
            for d in (0, 1):
                with m.If((up == u) & (down == d)):
                    # count' = count + u - d; empty after this edge if count == d + pop - u
                    m.d.sync += [at[k].eq(at_k(k - u + d)) for k in range(3)]
                    empties = Mux(self.pop, at_k(d + 1 - u), at_k(d - u))
                    m.d.sync += self.nonempty.eq(self.push | ~empties)
        with m.If(self.flushing):
            # emptied: no push or pop at this edge, none pending
            m.d.sync += [count.eq(0), up.eq(0), down.eq(0), at.eq(1), self.nonempty.eq(0)]
