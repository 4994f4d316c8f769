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

__all__ = ["Err", "Grant", "Freed", "Model", "Monitor", "LogEntry", "locate"]


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


def locate(config, addr):
    """(pool index, slot index, error) of a byte address presented for release."""
    for pool in config.pools:
        if pool.base <= addr < pool.end:
            offset = addr - pool.base
            if offset % pool.slot_size:
                return pool.index, None, Err.MISALIGNED
            return pool.index, offset // pool.slot_size, Err.OK
    return None, None, Err.OUT_OF_RANGE


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
        return locate(self.config, addr)

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


@dataclass(frozen=True)
class LogEntry:
    """One error log entry (SPEC §6, ERR_HEAD0..3)."""
    code: int
    op: int          # 0 alloc, 1 free
    source: int      # 0 native, 1 register
    pool: int        # 0xFF: an address in no pool
    tag: int         # tag presented (0 for allocs)
    info: int        # low 32 bits of the free address, or the alloc size
    user: int
    cycle: int       # low 32 bits of the handshake cycle


class Monitor:
    """What the register interface reports: counters, the error log and the
    interrupt causes, fed with each request and its (model) response.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config`
    """

    def __init__(self, config):
        self.config = config
        self.reset()

    def reset(self):
        n = len(self.config.pools)
        self.in_use, self.high_water = [0] * n, [0] * n
        self.allocs, self.fails, self.frees = [0] * n, [0] * n, [0] * n
        self.log = deque()
        self.err_count = self.err_dropped = 0
        self.irq_status = 0

    def clear(self):
        """CTRL.CLEAR."""
        n = len(self.config.pools)
        self.allocs, self.fails, self.frees = [0] * n, [0] * n, [0] * n
        self.high_water = list(self.in_use)
        self.err_count = self.err_dropped = 0

    def pop(self):
        """ERR_POP."""
        if self.log:
            self.log.popleft()

    def _error(self, entry):
        self.irq_status |= 1
        if len(self.log) < self.config.error_log_depth:
            self.log.append(entry)
            self.err_count = (self.err_count + 1) % 2**32
        else:
            self.err_dropped = (self.err_dropped + 1) % 2**32
            self.irq_status |= 4

    def record(self, cycle, *, alloc=None, grant=None, free=None, freed=None, source=0,
               free_pool=None):
        """Account one handshake cycle's requests and responses (free first).

        ``free_pool`` names the pool of a register FREE whose slot index is past
        the pool (its error is logged under that pool).
        """
        stamp = cycle % 2**32
        if free is not None:
            addr, tag, user = free
            pool = locate(self.config, addr)[0] if free_pool is None else free_pool
            if freed.ok:
                self.in_use[pool] -= 1
                self.frees[pool] = (self.frees[pool] + 1) % 2**32
            else:
                self._error(LogEntry(freed.err, 1, source, 0xFF if pool is None else pool,
                                     tag, addr % 2**32, user, stamp))
        if alloc is not None:
            pool, size, user = alloc
            if grant.ok:
                self.in_use[pool] += 1
                self.high_water[pool] = max(self.high_water[pool], self.in_use[pool])
                self.allocs[pool] = (self.allocs[pool] + 1) % 2**32
            elif grant.err == Err.EXHAUSTED:
                self.fails[pool] = (self.fails[pool] + 1) % 2**32
                self.irq_status |= 2
            else:
                self._error(LogEntry(grant.err, 0, source, pool, 0, size % 2**32, user, stamp))
