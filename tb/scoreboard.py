"""Stimulus and scoreboard shared by every bench (cocotb under Verilator and
Amaranth's simulator). Pure Python: no simulator import.

The scoreboard follows what the design *accepted*: each handshake is fed to the
reference model, whose answer joins a queue per port; each response pulse is
matched to the oldest outstanding request of its port, and its latency is
measured as the distance between the two edges, never assumed.
"""

import os
from collections import Counter, deque
from dataclasses import dataclass, field

from hwalloc.model import Err, Freed, Model, Monitor

from .coverage import Coverage

__all__ = ["Mismatch", "Stats", "Scoreboard", "Stimulus", "PHASES", "earlier_failure"]


def earlier_failure():
    """Whether to skip the next test: ``HWALLOC_FIRST_FAIL`` is set (a mutant's
    run: one failure is the verdict) and a test of this run already failed (its
    statistics in ``HWALLOC_STATS`` name a mismatch)."""
    path = os.environ.get("HWALLOC_STATS")
    if not os.environ.get("HWALLOC_FIRST_FAIL") or not path or not os.path.exists(path):
        return False
    with open(path) as f:
        return any('"mismatch"' in line for line in f)


class Mismatch(AssertionError):
    """The design disagreed with the reference model."""

    def __init__(self, cycle, what, request, expected, got):
        self.cycle, self.what, self.request, self.expected, self.got = cycle, what, request, expected, got
        super().__init__(f"cycle {cycle}: {what}\n  request:  {request}\n"
                         f"  expected: {expected}\n  got:      {got}")


@dataclass
class Stats:
    """What a run checked."""
    ops: int = 0
    allocs: int = 0
    frees: int = 0
    flushes: int = 0
    grants: int = 0
    releases: int = 0
    failures: Counter = field(default_factory=Counter)
    latency_min: int = None
    latency_max: int = None
    cycles: int = 0
    max_in_use: int = 0
    coverage: Counter = field(default_factory=Counter)     # functional coverage bins

    def latency(self, value):
        self.latency_min = value if self.latency_min is None else min(self.latency_min, value)
        self.latency_max = value if self.latency_max is None else max(self.latency_max, value)

    def merge(self, other):
        for name in ("ops", "allocs", "frees", "flushes", "grants", "releases", "cycles"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        self.coverage.update(other.coverage)
        self.max_in_use = max(self.max_in_use, other.max_in_use)
        for value in (other.latency_min, other.latency_max):
            if value is not None:
                self.latency(value)

    def summary(self):
        fails = ", ".join(f"{Err(code).name} {n}" for code, n in sorted(self.failures.items())) or "none"
        return (f"{self.ops} ops checked ({self.allocs} allocs, {self.frees} frees, "
                f"{self.flushes} flushes) over "
                f"{self.cycles} cycles; {self.grants} grants, {self.releases} releases; "
                f"failures by code: {fails}; latency min/max: "
                f"{self.latency_min}/{self.latency_max} cycles")

    def to_dict(self):
        return {"ops": self.ops, "allocs": self.allocs, "frees": self.frees, "flushes": self.flushes,
                "grants": self.grants, "releases": self.releases, "cycles": self.cycles,
                "failures": {Err(c).name: n for c, n in sorted(self.failures.items())},
                "latency_min": self.latency_min, "latency_max": self.latency_max,
                "max_in_use": self.max_in_use, "coverage": dict(sorted(self.coverage.items()))}

    @classmethod
    def from_dict(cls, d):
        stats = cls(**{k: d[k] for k in ("ops", "allocs", "frees", "grants", "releases", "cycles")})
        stats.failures = Counter({Err[name].value: n for name, n in d["failures"].items()})
        stats.latency_min, stats.latency_max = d["latency_min"], d["latency_max"]
        stats.max_in_use = d["max_in_use"]
        stats.flushes = d.get("flushes", 0)
        stats.coverage = Counter(d.get("coverage", {}))
        return stats


class Scoreboard:
    """Checks responses against the model, edge by edge.

    Call :meth:`observe` with what the consumer samples at each edge, and
    :meth:`handshake` with what the design accepted at that edge.
    """

    def __init__(self, config, *, recycle_delay, stats=None):
        self.config = config
        self.latency = config.latency
        self.model = Model(config, recycle_delay=recycle_delay)
        self.monitor = Monitor(config)
        self.stats = stats if stats is not None else Stats()
        self.pending = {"grant": deque(), "freed": deque(), "flushed": deque()}
        self.cycle_base = 0          # the last edge of the latest reset
        self.coverage = Coverage(config, recycle_delay, self.stats.coverage)

    def reset(self, last_reset_edge=0):
        """The design was reset: nothing in flight may answer afterwards."""
        self.coverage.reset_seen(self.outstanding, flushes=len(self.pending["flushed"]))
        self.model.reset()
        self.monitor.reset()
        self.cycle_base = last_reset_edge
        for queue in self.pending.values():
            queue.clear()

    def handshake(self, cycle, *, alloc=None, free=None, flush=None, alloc_src=0, free_src=0,
                  flush_src=0, free_oor_pool=None):
        """Requests accepted at edge ``cycle``; ``*_src`` 1 for a register request
        (its response is checked by whoever made it, not on the native ports).
        ``free_oor_pool``: a register FREE of a slot index past that pool.
        Returns the model's ``(grant, freed)``."""
        free_pool = free_oor_pool
        if free_oor_pool is not None:
            grant, _, flushed = self.model.step(cycle, alloc=alloc, flush=flush)
            freed = Freed(ok=0, err=Err.OUT_OF_RANGE, user=free[2])
        else:
            if free is not None:
                free_pool = self.model.locate(free[0])[0]
            grant, freed, flushed = self.model.step(cycle, alloc=alloc, free=free, flush=flush)
        self.coverage.handshake(self.model, cycle, alloc=alloc, grant=grant, free=free, freed=freed,
                                flush=flush, flushed=flushed, free_pool=free_pool,
                                alloc_src=alloc_src, free_src=free_src)
        stamp = cycle - 1 - self.cycle_base      # CYCLE as read in the handshake cycle
        if free is not None:
            self.monitor.record(stamp, free=free, freed=freed, source=free_src,
                                free_pool=free_oor_pool)
            if not free_src:
                self.pending["freed"].append((cycle, ("free", free), freed))
            self.stats.frees += 1
        self.last_flushed = flushed
        if flush is not None:
            self.monitor.record(stamp, flush=flush, flushed=flushed, source=flush_src)
            if not flush_src:
                self.pending["flushed"].append((cycle, ("flush", flush), flushed))
            self.stats.flushes += 1
        if alloc is not None:
            self.monitor.record(stamp, alloc=alloc, grant=grant, source=alloc_src)
            if not alloc_src:
                self.pending["grant"].append((cycle, ("alloc", alloc), grant))
            self.stats.allocs += 1
        for pool in range(len(self.config.pools)):
            self.stats.max_in_use = max(self.stats.max_in_use, self.model.in_use(pool))
        return grant, freed

    def observe(self, cycle, *, grant=None, freed=None, flushed=None):
        """``grant``/``freed``/``flushed``: the response sampled at edge ``cycle``, or None."""
        self.stats.cycles += 1
        for port, got in (("grant", grant), ("freed", freed), ("flushed", flushed)):
            queue = self.pending[port]
            if got is None:
                if queue and queue[0][0] + self.latency <= cycle:
                    accepted, request, expected = queue[0]
                    raise Mismatch(cycle, f"no {port}_valid {self.latency} cycles after the "
                                          f"handshake at cycle {accepted}", request, expected, None)
                continue
            if not queue:
                raise Mismatch(cycle, f"{port}_valid with no request outstanding", None, None, got)
            accepted, request, expected = queue.popleft()
            latency = cycle - accepted
            if latency != self.latency:
                raise Mismatch(cycle, f"{port} latency {latency}, not {self.latency} "
                                      f"(handshake at cycle {accepted})", request, expected, got)
            if got != expected or (port == "grant" and got.overwrote not in (None, expected.overwrote)):
                raise Mismatch(cycle, f"{port} differs from the model (handshake at cycle "
                                      f"{accepted})", request, expected, got)
            self.stats.latency(latency)
            self.stats.ops += 1
            if got.ok:
                if port == "grant":
                    self.stats.grants += 1
                elif port == "freed":
                    self.stats.releases += 1
            else:
                self.stats.failures[got.err] += 1

    @property
    def outstanding(self):
        return sum(len(q) for q in self.pending.values())


#: Traffic phases: (name, probability of an alloc, of a free, of an error-making request).
PHASES = {
    "fill": (0.95, 0.1, 0.05),
    "churn": (0.7, 0.7, 0.08),
    "drain": (0.2, 0.95, 0.05),
    "errors": (0.5, 0.8, 0.6),
    "quiet": (0.1, 0.1, 0.1),
}
#: Probability of a flush per cycle, by phase: none while filling (a pool must
#: reach exhaustion), a few while churning and in error storms. Flushes come in
#: runs now and then (back to back).
FLUSH_RATE = {"fill": 0.0, "churn": 0.004, "drain": 0.002, "errors": 0.01, "quiet": 0.0}


class Stimulus:
    """Random traffic that reaches every corner of SPEC §4-§5.

    Reads the model's state to pick frees, so that it can release slots granted
    one or two cycles earlier (well before their grant is visible on the ports)
    and so reach every forwarding path, and to present stale tags and double
    frees on purpose.
    """

    def __init__(self, config, model, rng):
        self.config = config
        self.model = model
        self.rng = rng
        self.recently_freed = deque(maxlen=16)
        self.before_reset = []        # (pool, slot, tag) held when the core was reset
        self.before_flush = []        # (pool, slot, tag) held when their pool was last flushed
        self.flush_run = 0            # flushes still to present back to back
        self.phase = "fill"

    def _alloc(self, error):
        cfg, rng = self.config, self.rng
        npools = len(cfg.pools)
        user = rng.getrandbits(cfg.user_bits)
        if error:
            kind = rng.random()
            if kind < 0.5 and (1 << cfg.pool_bits) > npools:
                return rng.randrange(npools, 1 << cfg.pool_bits), rng.randrange(0, 5), user
            pool = rng.randrange(npools)
            limit = (1 << cfg.size_bits) - 1
            return pool, rng.randint(cfg.pools[pool].slot_size + 1, limit), user
        pool = rng.randrange(npools)
        size = rng.choice([0, 1, cfg.pools[pool].slot_size, rng.randint(0, cfg.pools[pool].slot_size)])
        return pool, size, user

    def _free(self, error):
        cfg, rng, model = self.config, self.rng, self.model
        user = rng.getrandbits(cfg.user_bits)
        tags = 1 << cfg.tag_bits
        held = [(p, s, t) for p in range(len(cfg.pools)) for s, t in model.held[p].items()]
        # A persistent pool's slots stay held for good: a free of one (CONTRACT) is
        # an error case here, so that they do not crowd out the releasable ones.
        releasable = [h for h in held if cfg.pools[h[0]].lifetime == "transient"]
        if not error and releasable:
            pool, slot, tag = rng.choice(releasable[-8:] if rng.random() < 0.3 else releasable)
            return cfg.pools[pool].addr_of(slot), tag, user
        if error and held and rng.random() < 0.1:
            pool, slot, tag = rng.choice(held)                         # maybe persistent: CONTRACT
            return cfg.pools[pool].addr_of(slot), tag, user
        if not error and held:
            pool, slot, tag = rng.choice(held[-8:] if rng.random() < 0.3 else held)
            return cfg.pools[pool].addr_of(slot), tag, user
        kind = rng.randrange(8)
        if kind == 7 and self.before_flush:
            pool, slot, tag = rng.choice(self.before_flush)            # pointer from before a flush
            return cfg.pools[pool].addr_of(slot), tag, user
        if kind == 6 and self.before_reset:
            pool, slot, tag = rng.choice(self.before_reset)            # pointer from before reset
            return cfg.pools[pool].addr_of(slot), tag, user
        if kind == 0 and self.recently_freed:
            pool, slot, tag = rng.choice(self.recently_freed)          # double free
            return cfg.pools[pool].addr_of(slot), tag, user
        if kind == 1 and held and cfg.tag_bits:
            pool, slot, tag = rng.choice(held)                         # stale pointer
            return cfg.pools[pool].addr_of(slot), (tag + rng.randrange(1, tags)) % tags, user
        pool = cfg.pools[rng.randrange(len(cfg.pools))]
        if kind == 2:                                                  # misaligned
            return pool.addr_of(rng.randrange(pool.slots)) + rng.randrange(1, pool.slot_size), \
                rng.randrange(tags), user
        if kind == 3 and cfg.regions:                                  # static region
            region = rng.choice(cfg.regions)
            return region.base + rng.randrange(region.size), rng.randrange(tags), user
        if kind == 4:                                                  # any address
            return rng.getrandbits(cfg.addr_width), rng.randrange(tags), user
        return pool.addr_of(rng.randrange(pool.slots)), rng.randrange(tags), user

    def _flush(self, error):
        cfg, rng = self.config, self.rng
        npools = len(cfg.pools)
        user = rng.getrandbits(cfg.user_bits)
        persistent = [p.index for p in cfg.pools if p.lifetime == "persistent"]
        if error and (1 << cfg.pool_bits) > npools and rng.random() < 0.5:
            return rng.randrange(npools, 1 << cfg.pool_bits), user           # BAD_POOL
        if error and persistent:
            return rng.choice(persistent), user                             # CONTRACT
        pool = rng.randrange(npools)
        held = [(pool, slot, tag) for slot, tag in self.model.held[pool].items()]
        self.before_flush = (self.before_flush + rng.sample(held, min(len(held), 16)))[-64:]
        return pool, user

    def next(self):
        """The requests to present this cycle: ``(alloc or None, free or None, flush or None)``."""
        p_alloc, p_free, p_error = PHASES[self.phase]
        rng = self.rng
        alloc = self._alloc(rng.random() < p_error) if rng.random() < p_alloc else None
        free = self._free(rng.random() < p_error) if rng.random() < p_free else None
        flush = None
        if self.flush_run or rng.random() < FLUSH_RATE[self.phase]:
            if not self.flush_run and rng.random() < 0.2:
                self.flush_run = rng.randint(1, 3)
            self.flush_run = max(0, self.flush_run - 1)
            flush = self._flush(rng.random() < p_error)
        return alloc, free, flush

    def accepted(self, free, freed):
        """Tell the stimulus which free went through (to replay it as a double free)."""
        if free is not None and freed is not None and freed.ok:
            pool, slot, _ = self.model.locate(free[0])
            self.recently_freed.append((pool, slot, free[1]))
