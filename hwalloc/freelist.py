"""Freelist pools (SPEC §4.1): never-used slots in index order, then released
slots in the order they were released (a FIFO), EXHAUSTED when neither is left.

``queue``   FIFO of released slots: ``{slot, next, snap, zero}`` (``next``:
            the tag the slot's next grant takes, its last + 1; ``zero``: the
            slot is slot 0, see alloc stage 3 in the core; both only with
            tags); written by the free
            decision (through registers, an edge later), read by the alloc
            commit. A released slot is in the queue from the edge after its
            decision (``push``), which makes the recycle delay R = 5. In a pool
            deeper than a bank, two memories (the even and the odd entries),
            read an edge before the commit, see :class:`FreelistPool`.
"""

from amaranth import Const, Mux, Signal
from amaranth.lib import data

from ._rtl import any_of
from .memory import banked, memory
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
        # In a pool deeper than a bank the queue's RAMs lie across the chip, and
        # its read takes three edges (see :func:`~hwalloc.memory.memory`), issued
        # an edge before the commit that pops, when the head is not known yet:
        # the entries alternate between two memories (entry i in half i % 2, at
        # row i // 2; the capacity made even so that they alternate across the
        # wrap), and each half reads the row of whichever of the head and the
        # entry after it is its own. Both addresses are registers, the pop only
        # moves them on; the head's parity, registered at the commit, gates the
        # half that is not the head's.
        self.split = banked(n)
        if self.split:
            self._rows = rows = (n + n % 2) // 2
            halves = [memory(m, f"{name}_queue_{half}", entry, rows, reads=1,
                             registered_write=True, late=(0,), forward=(0,))
                      for half in ("even", "odd")]
            self.half_w = [write for write, _ in halves]
            self.half_r = [read for _, (read,) in halves]
            # the head's and the tail's parity, and the rows of the even and the
            # odd entry among each one and the entry after it
            self.head_odd, self.tail_odd = Signal(name=f"{name}_head_odd"), Signal(name=f"{name}_tail_odd")
            self.head_rows = [Signal(range(rows), name=f"{name}_head_{half}") for half in ("even", "odd")]
            self.tail_rows = [Signal(range(rows), name=f"{name}_tail_{half}") for half in ("even", "odd")]
            # the parity of the head the commit of this edge pops (if it does)
            self.popped_odd = Signal(name=f"{name}_popped_odd")
        else:
            self.queue_w, (self.queue_r,) = memory(m, f"{name}_queue", entry, n, reads=1,
                                                   registered_write=True)
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
        if self.split:
            return [(select & part, entry) for read in self.half_r for part, entry in read.parts]
        return [(select & bank, entry) for bank, entry in self.queue_r.parts]

    def _move_on(self, m, odd, pair):
        # (one entry on: the odd row is the even one's, the even row the odd one's + 1)
        even_row, odd_row = pair
        m.d.sync += [odd.eq(~odd), odd_row.eq(even_row),
                     even_row.eq(Mux(odd_row == self._rows - 1, 0, odd_row + 1))]

    def _commit(self, m, selected, flushing):
        n = self.pool.slots
        m.d.comb += self.pop.eq(selected & ~flushing & ~self._has_fresh & self.nonempty)
        if self.split:
            self._commit_split(m, flushing)
        else:
            m.d.comb += self.queue_r.addr.eq(self.head)
        with m.If(self.take_fresh):
            m.d.comb += self.fresh_next.eq(self.fresh_slot + 1)
            m.d.sync += self._has_fresh.eq(self.fresh_slot != n - 1)
        with m.Elif(flushing):
            m.d.comb += self.fresh_next.eq(0)
            m.d.sync += self._has_fresh.eq(1)
        if not self.split:
            self._move_head(m, flushing)

    def _move_head(self, m, flushing):
        n = self.pool.slots
        with m.If(self.pop):
            m.d.sync += self.head.eq(Mux(self.head == n - 1, 0, self.head + 1))
        with m.If(flushing):
            # the queue emptied: a release deciding at this edge is older than
            # the flush and is not pushed (the core kills it), so the tail stays
            m.d.sync += self.head.eq(self.tail)

    def _commit_split(self, m, flushing):
        # Each half reads, at the edge before a commit, its row among the head
        # and the entry after it (the commit takes one of them: the head moves
        # on at most once in between); the row written at that very edge comes
        # forwarded. The commit's head is the one after this edge's pop: its
        # parity, registered at the next edge (the data lands the edge after),
        # gates the halves.
        even_r, odd_r = self.half_r
        m.d.comb += [even_r.addr.eq(self.head_rows[0]), odd_r.addr.eq(self.head_rows[1]),
                     even_r.gate.eq(~self.popped_odd), odd_r.gate.eq(self.popped_odd)]
        m.d.sync += self.popped_odd.eq(self.head_odd)
        with m.If(self.pop):
            self._move_on(m, self.head_odd, self.head_rows)
        with m.If(flushing):
            m.d.sync += [self.head_odd.eq(self.tail_odd),
                         *(head.eq(tail) for head, tail in zip(self.head_rows, self.tail_rows, strict=True))]

    def release(self, m, release, slot, snap, next_tag, rows):
        # toggle the parity, and queue the slot with the tag its next grant takes
        super().release(m, release, slot, snap, next_tag, rows)
        n = self.pool.slots
        if self.split:
            # the tail's entry is in the half of its parity, at the row that is
            # the odd one's among the tail and the entry after it
            writes = [(half_w, release & (self.tail_odd == k), self.tail_rows[1])
                      for k, half_w in enumerate(self.half_w)]
        else:
            writes = [(self.queue_w, release, self.tail)]
        for write, enable, addr in writes:
            m.d.comb += [
                write.addr.eq(addr),
                write.data.slot.eq(slot),
                write.data.snap.eq(~snap),
                # (on its own carry chain: the pools' compares as LUTs share prefixes, a chain of LUTs)
                *([write.data.zero.eq(~any_of(slot[:self.pool.slot_bits], chain=True))]
                  if self.tag_bits else []),
                write.en.eq(enable),
            ]
            if self.tag_bits:
                m.d.comb += write.data.next.eq(next_tag)
        m.d.sync += self.push.eq(release)
        with m.If(release):
            if self.split:
                self._move_on(m, self.tail_odd, self.tail_rows)
            else:
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
