"""The reference model: SPEC §4-§5, cycle by cycle, the obviously correct way.

Pure Python, no Amaranth or cocotb import. It keeps, per pool, the queue of
waiting slots as a list (each with the first cycle it may be granted at) or a
ring's pointer, the tag of every held slot in a dict, and each slot's count of
grants. It does not mirror the hardware's pipeline, its O(1) reset and flush or
its forwarding: those are what it checks.

Use: call :meth:`Model.step` once per handshake cycle, in cycle order, with the
free, flush and/or alloc accepted in that cycle. Within a cycle the free comes
first, then the flush, then the alloc. Responses are due ``latency`` cycles
after the handshake.
"""

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

__all__ = ["Err", "Op", "Burst", "Grant", "Freed", "Flushed", "Answers", "Model", "Monitor", "LogEntry",
           "locate", "burst_span", "judge_access", "split_axi_addr", "GuardModel"]


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
    CONTRACT = 8
    ACCESS_OUTSIDE = 9
    ACCESS_RO = 10
    ACCESS_BOUNDS = 11
    ACCESS_FREE = 12
    ACCESS_TAG = 13
    ACCESS_LOCKED = 14


class Op(IntEnum):
    """The request an error log entry is about (SPEC §6, ERR_HEAD0.OP)."""
    ALLOC = 0
    FREE = 1
    FLUSH = 2
    READ_ACCESS = 3
    WRITE_ACCESS = 4


class Burst(IntEnum):
    """AXI4 ``burst`` (AxBURST)."""
    FIXED = 0
    INCR = 1
    WRAP = 2


@dataclass(frozen=True)
class Grant:
    """The response to an alloc, as it appears on the ``grant_*`` ports.

    ``overwrote``: a ring pool granted a slot that was still held (SPEC §4.2);
    not a port, so not compared by ``==`` (None: not observed)."""
    ok: int
    err: int
    pool: int
    slot: int
    addr: int
    tag: int
    user: int
    overwrote: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Freed:
    """The response to a free, as it appears on the ``freed_*`` ports."""
    ok: int
    err: int
    user: int


@dataclass(frozen=True)
class Flushed:
    """The response to a flush, as it appears on the ``flushed_*`` ports."""
    ok: int
    err: int
    user: int


class Answers(NamedTuple):
    """The model's answers to one cycle's requests (None where no request)."""
    grant: Grant | None
    freed: Freed | None
    flushed: Flushed | None


def locate(config, addr):
    """(pool index, slot index, error) of a byte address presented for release."""
    for pool in config.pools:
        if pool.base <= addr < pool.end:
            offset = addr - pool.base
            if offset % pool.slot_size:
                return pool.index, None, Err.MISALIGNED
            return pool.index, offset // pool.slot_size, Err.OK
    return None, None, Err.OUT_OF_RANGE


def burst_span(addr, length, size, burst):
    """The bytes an AXI4 burst touches, ``(first, last)`` inclusive, or None for
    a burst AXI4 does not allow (a reserved ``burst``, a WRAP whose ``length``
    + 1 beats are not 2, 4, 8 or 16 or whose start is not aligned to ``size``,
    an INCR burst that crosses a 4 KiB boundary: memory cannot be trusted with
    it, so the guard refuses it).

    ``length`` is AxLEN (beats - 1), ``size`` is AxSIZE (bytes a beat = 2**size).
    INCR: from the address to the end of its last beat (the first beat may start
    unaligned; the others are aligned). FIXED: the first beat, every time. WRAP:
    its whole wrap container.
    """
    beat = 1 << size
    aligned = addr - addr % beat
    if burst == Burst.INCR:
        last = aligned + (length + 1) * beat - 1
        return (addr, last) if addr >> 12 == last >> 12 else None
    if burst == Burst.FIXED:
        return addr, aligned + beat - 1
    if burst == Burst.WRAP and length in (1, 3, 7, 15) and addr == aligned:
        container = (length + 1) * beat
        start = addr - addr % container
        return start, start + container - 1
    return None


def split_axi_addr(config, axi_addr):
    """``(address, tag)`` of an address on the guard's ``s_axi`` (the tag in its
    top T bits, SPEC §8)."""
    width = config.addr_width
    return axi_addr & ((1 << width) - 1), axi_addr >> width


def _area_of(config, byte):
    """The pool or region holding ``byte`` (a Pool, a Region or None)."""
    for area in (*config.pools, *config.regions):
        if area.base <= byte < area.end:
            return area
    return None


def judge_access(config, held, *, addr, tag, length, size, burst, write, locked=False):
    """The guard's verdict on one AXI4 burst (SPEC §8, codes §5): the first of
    ACCESS_LOCKED (writes), ACCESS_OUTSIDE, ACCESS_RO, ACCESS_BOUNDS,
    ACCESS_FREE, ACCESS_TAG that applies, else OK.

    ``held`` is, per pool, ``{slot: current tag}`` of the slots held
    (:attr:`Model.held`); ``addr`` is the address without tag bits and ``tag``
    the tag the master presented in the address's top bits. A burst AXI4 does
    not allow, or one whose size is wider than the guard's data bus, touches
    bytes nobody can name: ACCESS_OUTSIDE.
    """
    if write and locked:
        return Err.ACCESS_LOCKED
    span = burst_span(addr, length, size, burst)
    if span is None or size > config.guard.max_size:
        return Err.ACCESS_OUTSIDE
    first, last = span
    area = _area_of(config, first)
    if area is None:
        if last >= 1 << config.addr_width or any(a.base <= last and first < a.end
                                                 for a in (*config.pools, *config.regions)):
            return Err.ACCESS_OUTSIDE          # from nowhere into a pool or region
        return Err.OK if config.guard.outside == "pass" else Err.ACCESS_OUTSIDE
    if last >= area.end:
        return Err.ACCESS_OUTSIDE              # leaves the pool or region it starts in
    if write and area.access == "ro":
        return Err.ACCESS_RO
    if not hasattr(area, "slots"):
        return Err.OK                          # a region: no slots, no tags
    slot = (first - area.base) // area.slot_size
    if (last - area.base) // area.slot_size != slot:
        return Err.ACCESS_BOUNDS
    if slot not in held[area.index]:
        return Err.ACCESS_FREE
    if config.tag_bits and held[area.index][slot] != tag:
        return Err.ACCESS_TAG
    return Err.OK


class GuardModel:
    """The guard's own state (SPEC §8, §6 GUARD_*): the lock of degraded mode
    and the counters. Judges bursts with :func:`judge_access` against the
    allocation state it is handed.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config` with a ``guard``
    """

    def __init__(self, config):
        if config.guard is None:
            raise ValueError(f"Config {config.name} has no guard")
        self.config = config
        self.reset()

    def reset(self):
        self.locked = False
        self.lock_on_violation = False
        self.checks = self.refused = 0

    def clear(self):
        """CTRL.CLEAR: GUARD_CHECKS and GUARD_REFUSED."""
        self.checks = self.refused = 0

    def split(self, axi_addr):
        return split_axi_addr(self.config, axi_addr)

    def access(self, held, *, axi_addr, length, size, burst, write):
        """One AR (``write`` False) or AW burst: its verdict, counted, and the
        lock taken if it is refused while LOCK_ON_VIOLATION is set."""
        addr, tag = self.split(axi_addr)
        err = judge_access(self.config, held, addr=addr, tag=tag, length=length, size=size,
                           burst=burst, write=write, locked=self.locked)
        self.checks = (self.checks + 1) % 2**32
        if err != Err.OK:
            self.refused = (self.refused + 1) % 2**32
            self.locked |= self.lock_on_violation
        return err


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
        # per pool: {slot: tag of its current grant}
        self.held = [{} for _ in self.config.pools]
        # per pool: {slot: number of grants since reset}; a flush keeps it
        self.grants = [{} for _ in self.config.pools]
        self.waiting = [None] * len(self.config.pools)
        self.ring_next = [0] * len(self.config.pools)
        for pool in self.config.pools:
            self._restart(pool.index)

    def _restart(self, pool):
        """The pool's order as after reset: every slot waiting, in index order."""
        # freelist: deque of (slot, first cycle it may be granted at)
        self.waiting[pool] = deque((slot, 0) for slot in range(self.config.pools[pool].slots))
        # ring: the slot the next alloc gets
        self.ring_next[pool] = 0

    def in_use(self, pool):
        return len(self.held[pool])

    def step(self, cycle, *, alloc=None, free=None, flush=None):
        """Apply the requests accepted at ``cycle``: the free, then the flush,
        then the alloc.

        ``alloc`` is ``(pool, size, user)``, ``free`` is ``(addr, tag, user)``,
        ``flush`` is ``(pool, user)``; any may be None. Returns
        :class:`Answers` ``(grant, freed, flushed)``.
        """
        if self._last_cycle is not None and cycle <= self._last_cycle:
            raise ValueError(f"Cycles must increase: {cycle} after {self._last_cycle}")
        self._last_cycle = cycle
        freed = self.free(cycle, *free) if free is not None else None
        flushed = self.flush(cycle, *flush) if flush is not None else None
        grant = self.alloc(cycle, *alloc) if alloc is not None else None
        return Answers(grant, freed, flushed)

    def alloc(self, cycle, pool, size, user):
        def fail(err):
            return Grant(ok=0, err=err, pool=pool, slot=0, addr=0, tag=0, user=user)

        pools = self.config.pools
        if pool >= len(pools):
            return fail(Err.BAD_POOL)
        if max(size, 1) > pools[pool].slot_size:
            return fail(Err.TOO_BIG)
        if pools[pool].kind == "ring":
            # never EXHAUSTED: the pointer's slot, held or not (an overwrite)
            slot = self.ring_next[pool]
            self.ring_next[pool] = (slot + 1) % pools[pool].slots
        else:
            queue = self.waiting[pool]
            if not queue or queue[0][1] > cycle:
                return fail(Err.EXHAUSTED)
            slot, _ = queue.popleft()
        overwrote = slot in self.held[pool]
        count = self.grants[pool].get(slot, 0) + 1
        self.grants[pool][slot] = count
        tag = count % (1 << self.config.tag_bits)
        self.held[pool][slot] = tag
        return Grant(ok=1, err=Err.OK, pool=pool, slot=slot,
                     addr=pools[pool].addr_of(slot), tag=tag, user=user, overwrote=overwrote)

    def locate(self, addr):
        return locate(self.config, addr)

    def free(self, cycle, addr, tag, user):
        pool, slot, err = self.locate(addr)
        if err == Err.OK and self.config.pools[pool].lifetime == "persistent":
            err = Err.CONTRACT
        if err == Err.OK:
            held = self.held[pool]
            if slot not in held:
                err = Err.NOT_ALLOCATED
            elif self.config.tag_bits and held[slot] != tag:
                err = Err.TAG_MISMATCH
        if err != Err.OK:
            return Freed(ok=0, err=err, user=user)
        del self.held[pool][slot]
        if self.config.pools[pool].kind == "freelist":
            self.waiting[pool].append((slot, cycle + self.recycle_delay))
        return Freed(ok=1, err=Err.OK, user=user)

    def flush(self, cycle, pool, user):
        """Release every slot of ``pool`` at once (SPEC §4.3). Tags go on
        counting, so every handle from before the flush is stale."""
        pools = self.config.pools
        if pool >= len(pools):
            return Flushed(ok=0, err=Err.BAD_POOL, user=user)
        if pools[pool].lifetime == "persistent":
            return Flushed(ok=0, err=Err.CONTRACT, user=user)
        self.held[pool].clear()
        self._restart(pool)
        return Flushed(ok=1, err=Err.OK, user=user)


@dataclass(frozen=True)
class LogEntry:
    """One error log entry (SPEC §6, ERR_HEAD0..3)."""
    code: int
    op: int          # Op: 0 alloc, 1 free, 2 flush
    source: int      # 0 native, 1 register
    pool: int        # 0xFF: an address in no pool
    tag: int         # tag presented (0 for allocs and flushes)
    info: int        # low 32 bits of the free address, or the alloc size; 0 for a flush
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
        self.flushes, self.overwrites = [0] * n, [0] * n
        self.log = deque()
        self.err_count = self.err_dropped = 0
        self.irq_status = 0
        self.low_water = [0] * n      # LOW_WATER thresholds (0: off)

    def clear(self):
        """CTRL.CLEAR."""
        n = len(self.config.pools)
        self.allocs, self.fails, self.frees = [0] * n, [0] * n, [0] * n
        self.flushes, self.overwrites = [0] * n, [0] * n
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

    def record_access(self, cycle, *, axi_addr, axi_id, write, err):
        """Account one burst the guard judged (SPEC §8): a refusal is logged
        (source guard, its AXI ID, the address without tag bits, the tag
        presented) and raises ERROR and ACCESS."""
        if err == Err.OK:
            return
        addr, tag = split_axi_addr(self.config, axi_addr)
        pool = locate(self.config, addr)[0]
        self._error(LogEntry(err, Op.WRITE_ACCESS if write else Op.READ_ACCESS, 2,
                             0xFF if pool is None else pool, tag, addr % 2**32, axi_id, cycle % 2**32))
        self.irq_status |= 32

    def record(self, cycle, *, alloc=None, grant=None, free=None, freed=None, flush=None,
               flushed=None, source=0, free_pool=None):
        """Account one handshake cycle's requests and responses (free, flush, alloc).

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
                self._error(LogEntry(freed.err, Op.FREE, source, 0xFF if pool is None else pool,
                                     tag, addr % 2**32, user, stamp))
        if flush is not None:
            pool, user = flush
            if flushed.ok:
                self.in_use[pool] = 0
                self.flushes[pool] = (self.flushes[pool] + 1) % 2**32
            else:
                self._error(LogEntry(flushed.err, Op.FLUSH, source, pool, 0, 0, user, stamp))
        if alloc is not None:
            pool, size, user = alloc
            if grant.overwrote:
                # the slot changes hands: IN_USE stays
                self.overwrites[pool] = (self.overwrites[pool] + 1) % 2**32
                self.irq_status |= 8
                self.allocs[pool] = (self.allocs[pool] + 1) % 2**32
            elif grant.ok:
                self.in_use[pool] += 1
                self.high_water[pool] = max(self.high_water[pool], self.in_use[pool])
                self.allocs[pool] = (self.allocs[pool] + 1) % 2**32
            elif grant.err == Err.EXHAUSTED:
                self.fails[pool] = (self.fails[pool] + 1) % 2**32
                self.irq_status |= 2
            else:
                self._error(LogEntry(grant.err, Op.ALLOC, source, pool, 0, size % 2**32, user, stamp))
            if grant.ok and self.config.pools[pool].slots - self.in_use[pool] < self.low_water[pool]:
                self.irq_status |= 16             # fewer slots left than the threshold
