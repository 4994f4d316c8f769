"""The reference model: SPEC §4-§5, cycle by cycle, the obviously correct way.

Pure Python, no Amaranth or cocotb import. It keeps, per pool, the queue of
waiting slots as a list (each with the first cycle it may be granted at) and
the tag of every held slot in a dict. It does not mirror the hardware's
pipeline, its O(1) reset or its forwarding: those are what it checks.

Use: call :meth:`Model.step` once per handshake cycle, in cycle order, with the
free and/or alloc accepted in that cycle. Within a cycle the free is ordered
before the alloc. Responses are due ``latency`` cycles after the handshake.
"""

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Err", "Grant", "Freed", "Model"]


class Err(IntEnum):
    """Error codes (SPEC §5)."""
    OK = 0
    EXHAUSTED = 1
    BAD_POOL = 2
    TOO_BIG = 3
    OUT_OF_RANGE = 4
    MISALIGNED = 5
    NOT_ALLOCATED = 6
    TAG_MISMATCH = 7


@dataclass(frozen=True)
class Grant:
    """The response to an alloc, as it appears on the ``grant_*`` ports."""
    ok: int
    err: int
    pool: int
    slot: int
    addr: int
    tag: int
    user: int


@dataclass(frozen=True)
class Freed:
    """The response to a free, as it appears on the ``freed_*`` ports."""
    ok: int
    err: int
    user: int


class Model:
    """Allocation semantics of one core.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config`
    recycle_delay : int
        R: a slot freed at cycle t is grantable to allocs at cycle t + R or later.
    """

    def __init__(self, config, *, recycle_delay):
        if not 1 <= recycle_delay <= config.latency:
            raise ValueError(f"Recycle delay must be within 1..{config.latency}, "
                             f"not {recycle_delay}")
        self.config = config
        self.recycle_delay = recycle_delay
        self.reset()

    def reset(self):
        """Every slot free, order restarted at 0, every tag zero."""
        self._last_cycle = None
        # per pool: deque of (slot, first cycle it may be granted at)
        self.waiting = [deque((slot, 0) for slot in range(p.slots)) for p in self.config.pools]
        # per pool: {slot: tag of its current grant}
        self.held = [{} for _ in self.config.pools]
        # per pool: {slot: number of grants since reset}
        self.grants = [{} for _ in self.config.pools]

    def in_use(self, pool):
        return len(self.held[pool])

    def step(self, cycle, *, alloc=None, free=None):
        """Apply the requests accepted at ``cycle``.

        ``alloc`` is ``(pool, size, user)``, ``free`` is ``(addr, tag, user)``;
        either may be None. Returns ``(grant, freed)`` (None where no request).
        """
        if self._last_cycle is not None and cycle <= self._last_cycle:
            raise ValueError(f"Cycles must increase: {cycle} after {self._last_cycle}")
        self._last_cycle = cycle
        freed = self.free(cycle, *free) if free is not None else None
        grant = self.alloc(cycle, *alloc) if alloc is not None else None
        return grant, freed

    def alloc(self, cycle, pool, size, user):
        def fail(err):
            return Grant(ok=0, err=err, pool=pool, slot=0, addr=0, tag=0, user=user)

        pools = self.config.pools
        if pool >= len(pools):
            return fail(Err.BAD_POOL)
        if max(size, 1) > pools[pool].slot_size:
            return fail(Err.TOO_BIG)
        queue = self.waiting[pool]
        if not queue or queue[0][1] > cycle:
            return fail(Err.EXHAUSTED)
        slot, _ = queue.popleft()
        count = self.grants[pool].get(slot, 0) + 1
        self.grants[pool][slot] = count
        tag = count % (1 << self.config.tag_bits)
        self.held[pool][slot] = tag
        return Grant(ok=1, err=Err.OK, pool=pool, slot=slot,
                     addr=pools[pool].addr_of(slot), tag=tag, user=user)

    def locate(self, addr):
        """(pool index, slot index, error) of a byte address presented for release."""
        for pool in self.config.pools:
            if pool.base <= addr < pool.end:
                offset = addr - pool.base
                if offset % pool.slot_size:
                    return pool.index, None, Err.MISALIGNED
                return pool.index, offset // pool.slot_size, Err.OK
        return None, None, Err.OUT_OF_RANGE

    def free(self, cycle, addr, tag, user):
        pool, slot, err = self.locate(addr)
        if err == Err.OK:
            held = self.held[pool]
            if slot not in held:
                err = Err.NOT_ALLOCATED
            elif self.config.tag_bits and held[slot] != tag:
                err = Err.TAG_MISMATCH
        if err != Err.OK:
            return Freed(ok=0, err=err, user=user)
        del self.held[pool][slot]
        self.waiting[pool].append((slot, cycle + self.recycle_delay))
        return Freed(ok=1, err=Err.OK, user=user)
