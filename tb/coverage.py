"""Functional coverage: named bins that the benches sample as they run.

The scoreboard samples every accepted request against the reference model
(:meth:`Coverage.handshake`), the native bench samples resets, and the AXI bench
samples its five channels. :func:`expected_bins` lists the bins a config can
reach; a run's report shows each with its count, and a bin left at zero is a
hole (the suite fails on holes in the shipped examples).

Bins that cannot be reached by construction are not listed:
- a register ALLOC always names a real pool with ``size = slot_size``, so it
  never sees BAD_POOL or TOO_BIG; a register FREE is built from a handle's
  slot index, so it is never MISALIGNED;
- BAD_POOL needs a pool index field wider than the pools (``2**P > pools``);
- TAG_MISMATCH and the tag wrap need ``tag_bits > 0``;
- a native OUT_OF_RANGE needs an address that no pool covers;
- CONTRACT needs a persistent pool; a release (and so NOT_ALLOCATED,
  TAG_MISMATCH, the recycle window, the tag wrap, a flush that frees anything)
  needs a transient one;
- EXHAUSTED needs a freelist pool (a ring never runs dry), and recovery from
  it a transient freelist pool; the ring bins need a ring pool.
"""

from collections import Counter

from hwalloc.model import Err

__all__ = ["Coverage", "expected_bins", "AXI_CHANNELS", "FLUSH_BINS", "RING_BINS", "report", "table"]

#: A flush with an alloc and a free of its pool in the same cycle; allocs and
#: frees of its pool 1..L cycles before it (in flight when it commits) and after
#: it; flushes back to back; frees of handles from before a flush (their slot
#: free: NOT_ALLOCATED; granted again since: TAG_MISMATCH); a reset with a flush
#: in flight; slot 0 granted in a flush's cycle (with it) and in the cycle
#: before, the older grant still on its way to the slot's record (that grant
#: a never-used slot, or for a freelist's, a released one from its queue).
FLUSH_BINS = ["flush.ok", "flush.with_alloc_and_free", "flush.alloc_before", "flush.free_before",
              "flush.alloc_after", "flush.free_after", "flush.back_to_back",
              "flush.stale_free.NOT_ALLOCATED", "flush.stale_free.TAG_MISMATCH",
              "reset.flush_in_flight", "flush.slot0_regranted", "flush.slot0_queued_regranted"]

#: A ring pool (SPEC §4.2): a grant that overwrote a held slot; a free of the
#: overwritten handle (TAG_MISMATCH); a slot released and granted again by the
#: pointer 0..4 cycles later (the free still in flight when the alloc commits);
#: the pointer coming round from the last slot to slot 0.
RING_BINS = ["ring.overwrite", "ring.stale_free.TAG_MISMATCH", "ring.release_then_regrant",
             "ring.wrap"]

AXI_CHANNELS = ("aw", "w", "b", "ar", "r")
_OCCUPANCY = ("empty", "one", "half", "N-1", "full")


def _occupancy_labels(in_use, slots):
    labels = []
    for label, value in zip(_OCCUPANCY, (0, 1, slots // 2, slots - 1, slots), strict=True):
        if in_use == value:
            labels.append(label)
    return labels


def expected_bins(config, *, axi=True):
    """The bins ``config`` can reach; ``axi=False`` leaves out the register side."""
    bins = [f"occupancy.{pool.name}.{label}" for pool in config.pools for label in _OCCUPANCY]
    native = [Err.TOO_BIG, Err.MISALIGNED, Err.NOT_ALLOCATED]
    if (1 << config.pool_bits) > len(config.pools):
        native.append(Err.BAD_POOL)
    if sum(p.slots * p.slot_size for p in config.pools) < 2 ** config.addr_width:
        native.append(Err.OUT_OF_RANGE)
    register = [Err.OUT_OF_RANGE, Err.NOT_ALLOCATED]
    freelists = [pool for pool in config.pools if pool.kind == "freelist"]
    if freelists:
        native.append(Err.EXHAUSTED)
        register.append(Err.EXHAUSTED)
    # Without a transient pool no slot is ever released (every free in a pool
    # answers CONTRACT before any state is looked at), so nothing that needs a
    # release can happen.
    releases = any(pool.lifetime == "transient" for pool in config.pools)
    if any(pool.lifetime == "persistent" for pool in config.pools):
        native.append(Err.CONTRACT)
        register.append(Err.CONTRACT)
    if config.tag_bits and releases:
        native.append(Err.TAG_MISMATCH)
        register.append(Err.TAG_MISMATCH)
    if not releases:
        native.remove(Err.NOT_ALLOCATED)
        register.remove(Err.NOT_ALLOCATED)
    bins += [f"error.{Err(code).name}.native" for code in sorted(native)]
    if releases:
        bins += ["alloc_and_free.same_cycle_same_pool", "recycle.alloc_inside_window"]
    if any(pool.lifetime == "transient" for pool in freelists):
        bins += ["recycle.exhausted_inside_window", "exhausted_then_recovered"]
    if any(pool.kind == "ring" for pool in config.pools):
        bins += RING_BINS
    bins += ["reset.requests_in_flight"]
    # flush (SPEC §4.3), on the native port
    if any(pool.lifetime == "transient" for pool in config.pools):
        bins += [b for b in FLUSH_BINS if (config.tag_bits or not b.endswith("TAG_MISMATCH")) and
                 (b != "flush.slot0_queued_regranted" or
                  any(pool.lifetime == "transient" for pool in freelists))]
    if (1 << config.pool_bits) > len(config.pools):
        bins.append("error.BAD_POOL.flush")
    if any(pool.lifetime == "persistent" for pool in config.pools):
        bins.append("error.CONTRACT.flush")
    if config.tag_bits and releases:
        bins.append("tag_wrap")
    if axi:
        bins += [f"error.{Err(code).name}.axi" for code in sorted(register)]
        bins += ["native_and_register.same_cycle"]
        bins += [f"axi_stall.{channel}" for channel in AXI_CHANNELS]
        if config.guard is not None:
            bins += guard_expected(config)
    return bins


_BURSTS = {0: "FIXED", 1: "INCR", 2: "WRAP", 3: "reserved"}


def guard_expected(config):
    """The access guard's bins (tb/test_guard.py): every verdict the config can
    give, and each burst type both forwarded and refused."""
    codes = [Err.ACCESS_OUTSIDE, Err.ACCESS_BOUNDS, Err.ACCESS_FREE, Err.ACCESS_LOCKED]
    if any(area.access == "ro" for area in (*config.pools, *config.regions)):
        codes.append(Err.ACCESS_RO)
    if config.tag_bits:
        codes.append(Err.ACCESS_TAG)
    return ([f"guard.{Err(code).name}" for code in sorted(codes)] +
            ["guard.forwarded.read", "guard.forwarded.write"] +
            [f"guard.burst.{name}.{fate}" for name in ("FIXED", "INCR", "WRAP")
             for fate in ("forwarded", "refused")])


def guard_coverage(counts, codes):
    """Bins hit by the guard bench's bursts: ``counts`` by (write, burst type,
    refused), ``codes`` the logged refusal codes."""
    hits = Counter(f"guard.{Err(code).name}" for code in codes)
    for (write, burst, refused), n in counts.items():
        hits[f"guard.burst.{_BURSTS[burst]}.{'refused' if refused else 'forwarded'}"] += n
        if not refused:
            hits[f"guard.forwarded.{'write' if write else 'read'}"] += n
    return hits


class Coverage:
    """Samples bins into ``counts`` (a Counter shared with the run's statistics)."""

    def __init__(self, config, recycle_delay, counts=None):
        self.config = config
        self.recycle_delay = recycle_delay
        self.counts = counts if counts is not None else Counter()
        self.reset()

    def reset(self):
        pools = len(self.config.pools)
        self.last_release = [None] * pools      # cycle of the latest successful free
        self.exhausted = [False] * pools        # an EXHAUSTED since the latest grant
        self.last_alloc = [None] * pools        # cycle of the latest alloc / free of the pool
        self.last_free = [None] * pools
        self.last_flush = [None] * pools        # cycle of the latest successful flush
        self.last_flush_any = None
        self.handles = [{} for _ in range(pools)]      # slot -> tag, as granted
        self.flushed = [{} for _ in range(pools)]      # slot -> tag held at the latest flush
        self.overwritten = [{} for _ in range(pools)]  # ring slot -> tag of its overwritten holder
        self.released = [{} for _ in range(pools)]     # slot -> cycle of its latest release
        self.last_slot = [None] * pools                # ring: the slot of the latest grant
        self.last_grant = [None] * pools               # (cycle, slot, from the queue) of the latest grant

    def hit(self, name):
        self.counts[name] += 1

    def _within(self, then, cycle):
        return then is not None and 0 < cycle - then <= self.config.latency

    def handshake(self, model, cycle, *, alloc, grant, free, freed, free_pool, alloc_src, free_src,
                  flush=None, flushed=None):
        """Requests accepted at ``cycle``, their model answers, and the model
        after them. ``free_pool``: the pool the free's address lies in, or None."""
        cfg = self.config
        if freed is not None:
            if freed.ok:
                self.last_release[free_pool] = cycle
                slot = model.locate(free[0])[1]
                self.handles[free_pool].pop(slot, None)
                self.released[free_pool][slot] = cycle
            else:
                self.hit(f"error.{Err(freed.err).name}.{'axi' if free_src else 'native'}")
                if free_pool is not None and freed.err in (Err.NOT_ALLOCATED, Err.TAG_MISMATCH):
                    slot = model.locate(free[0])[1]
                    if slot is not None and self.flushed[free_pool].get(slot) == free[1]:
                        self.hit(f"flush.stale_free.{Err(freed.err).name}")
                    if (freed.err == Err.TAG_MISMATCH and slot is not None and
                            self.overwritten[free_pool].get(slot) == free[1]):
                        self.hit("ring.stale_free.TAG_MISMATCH")
            if free_pool is not None:
                if self._within(self.last_flush[free_pool], cycle):
                    self.hit("flush.free_after")
                self.last_free[free_pool] = cycle
        if flushed is not None:
            pool = flush[0]
            if not flushed.ok:
                self.hit(f"error.{Err(flushed.err).name}.flush")
            else:
                self.hit("flush.ok")
                if alloc is not None and alloc[0] == pool and free_pool == pool:
                    self.hit("flush.with_alloc_and_free")
                if self._within(self.last_alloc[pool], cycle):
                    self.hit("flush.alloc_before")
                if self._within(self.last_free[pool], cycle):
                    self.hit("flush.free_before")
                if self.last_flush_any == cycle - 1:
                    self.hit("flush.back_to_back")
                self.flushed[pool] = self.handles[pool]
                self.handles[pool] = {}
                self.overwritten[pool], self.released[pool], self.last_slot[pool] = {}, {}, None
                self.last_flush[pool] = self.last_flush_any = cycle
        if grant is not None:
            pool = alloc[0]
            if not grant.ok:
                self.hit(f"error.{Err(grant.err).name}.{'axi' if alloc_src else 'native'}")
            if pool < len(cfg.pools):
                if self._within(self.last_flush[pool], cycle):
                    self.hit("flush.alloc_after")
                self.last_alloc[pool] = cycle
                if grant.ok:
                    prev = self.last_grant[pool]
                    if self.last_flush[pool] == cycle and grant.slot == 0 and prev is not None and \
                            prev[:2] == (cycle - 1, 0):
                        self.hit("flush.slot0_regranted")
                        if prev[2]:
                            self.hit("flush.slot0_queued_regranted")
                    queued = cfg.pools[pool].kind == "freelist" and grant.slot in self.released[pool]
                    self.last_grant[pool] = (cycle, grant.slot, queued)
                    if grant.overwrote:
                        self.hit("ring.overwrite")
                        self.overwritten[pool][grant.slot] = self.handles[pool].get(grant.slot)
                    self.handles[pool][grant.slot] = grant.tag
                    if cfg.pools[pool].kind == "ring":
                        if cycle - self.released[pool].get(grant.slot, -99) <= 4:
                            self.hit("ring.release_then_regrant")
                        if grant.slot == 0 and self.last_slot[pool] == cfg.pools[pool].slots - 1:
                            self.hit("ring.wrap")
                        self.last_slot[pool] = grant.slot
                released = self.last_release[pool]
                inside = released is not None and cycle - released < self.recycle_delay
                if inside:
                    self.hit("recycle.alloc_inside_window")
                if grant.err == Err.EXHAUSTED:
                    self.exhausted[pool] = True
                    if inside:
                        self.hit("recycle.exhausted_inside_window")
                if grant.ok:
                    if self.exhausted[pool]:
                        self.hit("exhausted_then_recovered")
                    self.exhausted[pool] = False
                    if cfg.tag_bits and grant.tag == 0:
                        self.hit("tag_wrap")
            if freed is not None and freed.ok and grant.ok and free_pool == pool:
                self.hit("alloc_and_free.same_cycle_same_pool")
        if grant is not None and freed is not None and alloc_src != free_src:
            self.hit("native_and_register.same_cycle")
        for index, pool in enumerate(cfg.pools):
            for label in _occupancy_labels(model.in_use(index), pool.slots):
                self.hit(f"occupancy.{pool.name}.{label}")

    def reset_seen(self, outstanding, flushes=0):
        """A reset, with ``outstanding`` requests (``flushes`` of them flushes) still to answer."""
        if outstanding:
            self.hit("reset.requests_in_flight")
        if flushes:
            self.hit("reset.flush_in_flight")
        self.reset()


def report(config, counts, *, axi=True):
    """``(lines, holes)``: a line per expected bin with its count, and the empty bins."""
    return table(expected_bins(config, axi=axi), counts)


def table(bins, counts):
    """``(lines, holes)`` for the bins ``bins`` given their ``counts``."""
    width = max(len(name) for name in bins)
    lines = [f"  {name:<{width}} {counts.get(name, 0):>10}" for name in bins]
    holes = [name for name in bins if not counts.get(name)]
    return lines, holes
