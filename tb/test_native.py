"""cocotb bench of a generated core's native ports, against the reference model.

Configured through the environment (``hwalloc.sim.run_bench`` sets it):
``HWALLOC_CONFIG`` the YAML of the core under test, ``HWALLOC_SEED``,
``HWALLOC_OPS`` the number of requests of the random-traffic test, and
``HWALLOC_STATS`` a file to which each test appends its statistics (JSON lines).
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hwalloc.config import RECYCLE_DELAY, load_config
from hwalloc.tb.driver import Channels, NativeBench
from hwalloc.tb.scoreboard import Mismatch, earlier_failure
from hwalloc.tb.signals import int_reader, quiet_guard_ports

CONFIG = load_config(os.environ["HWALLOC_CONFIG"])
SEED = int(os.environ.get("HWALLOC_SEED", "1"))
OPS = int(os.environ.get("HWALLOC_OPS", "20000"))


class TB:
    """The core under test, its clock, and the shared native bench."""

    def __init__(self, dut, *, seed_offset=0):
        self.dut = dut
        handles = {name: getattr(dut, name) for name in (
            "alloc_valid", "alloc_pool", "alloc_size", "alloc_user", "alloc_ready",
            "grant_valid", "grant_ok", "grant_err", "grant_pool", "grant_slot", "grant_addr",
            "grant_user", "free_valid", "free_addr", "free_user", "free_ready",
            "freed_valid", "freed_ok", "freed_err", "freed_user",
            "flush_valid", "flush_pool", "flush_user", "flush_ready",
            "flushed_valid", "flushed_ok", "flushed_err", "flushed_user")}
        if CONFIG.tag_bits:
            handles["grant_tag"], handles["free_tag"] = dut.grant_tag, dut.free_tag
        self.handles = handles
        readers = {name: int_reader(handle) for name, handle in handles.items()}

        def get(name):
            return readers[name]()

        def put(name, value):
            handles[name].value = value

        async def tick():
            await FallingEdge(dut.aclk)

        self.bench = NativeBench(CONFIG, recycle_delay=RECYCLE_DELAY, get=get, set=put,
                                 tick=tick, rng=random.Random(SEED * 1000 + seed_offset),
                                 progress=self.progress)
        self.test_name = None

    async def start(self):
        """Clock, a power-on reset, and ready within 8 cycles."""
        dut = self.dut
        Clock(dut.aclk, 10, unit="ns").start()
        for name in ("alloc_valid", "free_valid", "alloc_pool", "alloc_size", "alloc_user",
                     "free_addr", "free_user", "flush_valid", "flush_pool", "flush_user") + \
                (("free_tag",) if CONFIG.tag_bits else ()):
            self.handles[name].value = 0
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            getattr(dut, f"s_axil_{name}").value = 0
        quiet_guard_ports(dut, CONFIG)
        dut.aresetn.value = 0
        await FallingEdge(dut.aclk)
        await self.reset(4)

    async def reset(self, cycles):
        """Hold ``aresetn`` low for ``cycles`` edges, then check ready returns in time."""
        self.dut.aresetn.value = 0
        await self.bench.reset_edge()
        for _ in range(cycles - 1):
            await self.bench.step(check_ready=False)
        self.dut.aresetn.value = 1
        self.bench.reset_released()
        waited = await self.bench.wait_ready(8)
        self.dut._log.info("ready %d cycle(s) after reset", waited)

    def progress(self, bench):
        path = os.environ.get("HWALLOC_PROGRESS")
        if path:
            with open(path, "w") as f:
                f.write(f"{self.test_name}: {bench.stats.ops} ops checked, cycle {bench.cycle}\n")

    def record(self, test, mismatch=None):
        stats = self.bench.stats
        self.dut._log.info("%s: %s", test, stats.summary())
        path = os.environ.get("HWALLOC_STATS")
        if path:
            line = {"config": CONFIG.name, "test": test, "seed": SEED, **stats.to_dict()}
            if mismatch is not None:
                line["mismatch"] = (str(mismatch) if isinstance(mismatch, Mismatch)
                                    else f"{type(mismatch).__name__}: {mismatch}")
            with open(path, "a") as f:
                f.write(json.dumps(line) + "\n")


async def _guarded(tb, name, body):
    tb.test_name = name
    if earlier_failure():
        return
    try:
        await body()
    except Exception as mismatch:
        tb.dut._log.error("MISMATCH %s", mismatch)
        tb.record(name, mismatch)
        raise
    tb.record(name)


@cocotb.test()
async def test_random_traffic_matches_model(dut):
    """Fill to exhaustion, churn, drain, error storms; both ports, every cycle."""
    tb = TB(dut)

    async def body():
        await tb.start()
        # a request per port per cycle at most; ~1.2 of them a cycle on average
        await tb.bench.random_traffic(max(1, OPS * 5 // 6))
        await tb.bench.drain()
    await _guarded(tb, "random_traffic", body)


@cocotb.test()
async def test_reset_with_requests_in_flight(dut):
    """A reset mid-traffic: no stale pulse, order and tags restart, old pointers fail."""
    tb = TB(dut, seed_offset=1)

    async def body():
        await tb.start()
        for cycles in (3, 1, 2):
            await tb.bench.random_traffic(tb.bench.rng.randint(200, 1500))
            # a flush in flight too (of any pool: it may be refused)
            flush = (tb.bench.rng.randrange(len(CONFIG.pools)), 0)
            await tb.bench.step(*tb.bench.stimulus.next()[:2], flush)
            await tb.reset(cycles)
            await tb.bench.stale_pointers()
        await tb.bench.random_traffic(1000)
        await tb.bench.drain()
    await _guarded(tb, "reset_in_flight", body)


@cocotb.test()
async def test_tag_wraps_around(dut):
    """A slot of each pool freed 1 to 6 cycles after its grant and again 1 to 6
    cycles later (every forwarding of the free check at every distance); one
    slot of each full pool released and regranted past 2**tag_bits grants (a
    persistent pool's slots are never released: its frees answer CONTRACT);
    then slot 0 of each pool granted back to back across flushes."""
    tb = TB(dut, seed_offset=2)

    async def body():
        await tb.start()
        for pool in range(len(CONFIG.pools)):
            await tb.bench.free_at_every_distance(pool, range(1, 7))
        for pool in range(len(CONFIG.pools)):
            rounds = 2 if CONFIG.pools[pool].lifetime == "persistent" else (1 << CONFIG.tag_bits) + 2
            await tb.bench.hold_all_but_one(pool, rounds)
        # slot 0 granted back to back across flushes (a persistent pool is never flushed)
        for pool in range(len(CONFIG.pools)):
            if CONFIG.pools[pool].lifetime != "persistent":
                await tb.bench.flush_restarts(pool, 4)
        await tb.bench.drain()
    await _guarded(tb, "tag_wrap", body)


@cocotb.test()
async def test_channels_never_fail(dut):
    """Up to 1000 channels allocate, hold and free on the largest pool whose
    slots are released (not persistent): zero failures."""
    tb = TB(dut, seed_offset=3)
    # (a ring pool would overwrite held buffers: the headline is a freelist's)
    transient = [p for p in range(len(CONFIG.pools))
                 if CONFIG.pools[p].lifetime == "transient" and CONFIG.pools[p].kind == "freelist"]
    if not transient:
        tb.record("channels")
        return
    pool = max(transient, key=lambda p: CONFIG.pools[p].slots)
    # channels are told apart by the user id they send. Each holds at most one
    # slot, and at most one slot a cycle enters the recycle window, so held plus
    # recycling slots never pass channels + min(channels, R): within the pool.
    slots = CONFIG.pools[pool].slots
    channels = min(1000, max(slots - RECYCLE_DELAY, slots // 2), 1 << CONFIG.user_bits)

    async def body():
        await tb.start()
        await Channels(tb.bench, pool=pool, channels=channels, hold=(100, 4000)).run(max(2000, OPS // 2))
        await tb.bench.drain()
        stats = tb.bench.stats
        dut._log.info("%d channels on pool %d: %s", channels, pool, stats.summary())
        assert not stats.failures, f"failures with {channels} channels: {dict(stats.failures)}"
        assert stats.grants == stats.allocs, "every alloc must be granted"
        assert stats.latency_min == stats.latency_max == CONFIG.latency
    await _guarded(tb, "channels", body)


@cocotb.test()
async def test_ring_pools(dut):
    """Each ring pool at full speed with frees racing its pointer (stale ones and
    flushes among them), then as a log: a writer that never frees beside a
    reader that frees in order, falling behind now and then (SPEC §4.2)."""
    tb = TB(dut, seed_offset=4)
    rings = [p for p in range(len(CONFIG.pools)) if CONFIG.pools[p].kind == "ring"]
    if not rings:
        tb.record("ring")
        return

    async def body():
        await tb.start()
        for pool in rings:
            await tb.bench.ring_races(pool, max(1000, OPS // 8))
            await tb.bench.ring_log(pool, max(1000, OPS // 8))
        await tb.bench.drain()
    await _guarded(tb, "ring", body)
