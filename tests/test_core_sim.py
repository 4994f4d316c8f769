"""Fast unit tests of the core in Amaranth's simulator, against the model.

The same shared bench as the Verilator runs, on the shipped examples and on
configs chosen for their corners (no tags, minimum latency, tiny pools, eight
pools, 64-bit addresses at the top of the space, a persistent pool).
"""

import dataclasses
import re

import pytest

from hwalloc import memory
from hwalloc.config import MIN_LATENCY, RECYCLE_DELAY, example_names, example_path, load_config, parse_config
from hwalloc.core import AllocatorCore, HwallocTop
from hwalloc.emit import emit_verilog

from simutil import run_core

CORNERS = {
    "no_tags_min_latency": {
        "name": "c0", "latency": MIN_LATENCY, "tag_bits": 0, "user_bits": 1, "addr_width": 12,
        "error_log_depth": 2,
        "pools": [{"name": "a", "base": 0x000, "slot_size": 4, "slots": 3},
                  {"name": "b", "base": 0x800, "slot_size": 256, "slots": 7}]},
    "tiny_pools_wide_tags": {
        "name": "c1", "latency": 6, "tag_bits": 8, "user_bits": 32, "addr_width": 16,
        "pools": [{"name": "a", "base": 0x100, "slot_size": 128, "slots": 2},
                  {"name": "b", "base": 0x400, "slot_size": 4, "slots": 2}],
        "regions": [{"name": "r", "base": 0x0, "size": 0x100}]},
    "eight_pools_top_of_64bit": {
        "name": "c2", "latency": 16, "tag_bits": 1, "addr_width": 64,
        "pools": [{"name": f"p{i}", "base": 2**64 - 2**20 * (i + 1), "slot_size": 2 ** (i + 2),
                   "slots": 5 + 3 * i} for i in range(8)]},
    "five_pools_l32": {
        "name": "c3", "latency": 32, "tag_bits": 3, "addr_width": 20, "error_log_depth": 128,
        "pools": [{"name": f"p{i}", "base": 0x10000 * (i + 1), "slot_size": 64, "slots": 9 + i,
                   "lifetime": "persistent" if i == 2 else "transient"} for i in range(5)]},
    "rings": {
        "name": "c4", "latency": MIN_LATENCY, "tag_bits": 2, "user_bits": 4, "addr_width": 16,
        "pools": [{"name": "log", "base": 0x1000, "slot_size": 16, "slots": 4, "kind": "ring"},
                  # (its base aligned to its slot size only, not to its span)
                  {"name": "ev", "base": 0x2040, "slot_size": 64, "slots": 5},
                  {"name": "trace", "base": 0x4000, "slot_size": 16, "slots": 9, "kind": "ring"},
                  {"name": "boot", "base": 0x8000, "slot_size": 256, "slots": 3, "lifetime": "persistent"}]},
}


def unused(elaboratable):
    """Inspected, never elaborated: tell Amaranth that is on purpose."""
    elaboratable._MustUse__silence = True
    return elaboratable


def corner(name):
    return parse_config(CORNERS[name])


def configs():
    return ([pytest.param(load_config(example_path(n)), id=n)
             for n in example_names()] +
            [pytest.param(corner(n), id=n) for n in CORNERS])


def test_latency_and_recycle_delay_are_properties():
    config = load_config()
    core, top = unused(AllocatorCore(config)), unused(HwallocTop(config))
    assert core.latency == top.latency == config.latency == 7
    assert core.recycle_delay == top.recycle_delay == RECYCLE_DELAY == 5
    for latency in (MIN_LATENCY, 16, 32):
        assert unused(AllocatorCore(dataclasses.replace(config, latency=latency))).latency == latency


def test_core_refuses_a_latency_below_the_minimum():
    config = dataclasses.replace(load_config(), latency=MIN_LATENCY - 1)
    with pytest.raises(ValueError, match=f"Latency must be at least {MIN_LATENCY}, not {MIN_LATENCY - 1}"):
        AllocatorCore(config)


def test_ports_follow_the_spec():
    top = unused(HwallocTop(load_config(example_path("size_classes"))))
    widths = {name: len(getattr(top, name)) for name in top.signature.members}
    assert widths == {
        "aclk": 1, "aresetn": 1, "alloc_valid": 1, "alloc_ready": 1, "alloc_pool": 2,
        "alloc_size": 14, "alloc_user": 16, "grant_valid": 1, "grant_ok": 1, "grant_err": 4,
        "grant_pool": 2, "grant_slot": 8, "grant_addr": 40, "grant_tag": 8, "grant_user": 16,
        "free_valid": 1, "free_ready": 1, "free_addr": 40, "free_tag": 8, "free_user": 16,
        "freed_valid": 1, "freed_ok": 1, "freed_err": 4, "freed_user": 16,
        "flush_valid": 1, "flush_ready": 1, "flush_pool": 2, "flush_user": 16,
        "flushed_valid": 1, "flushed_ok": 1, "flushed_err": 4, "flushed_user": 16, "irq": 1,
        "s_axil_awvalid": 1, "s_axil_awready": 1, "s_axil_awaddr": 12, "s_axil_awprot": 3,
        "s_axil_wvalid": 1, "s_axil_wready": 1, "s_axil_wdata": 32, "s_axil_wstrb": 4,
        "s_axil_bvalid": 1, "s_axil_bready": 1, "s_axil_bresp": 2,
        "s_axil_arvalid": 1, "s_axil_arready": 1, "s_axil_araddr": 12, "s_axil_arprot": 3,
        "s_axil_rvalid": 1, "s_axil_rready": 1, "s_axil_rdata": 32, "s_axil_rresp": 2}
    untagged = unused(HwallocTop(corner("no_tags_min_latency"))).signature.members
    assert "grant_tag" not in untagged and "free_tag" not in untagged


@pytest.mark.parametrize("config", configs())
def test_random_traffic_matches_model(config):
    async def body(bench, reset):
        await bench.random_traffic(max(4000, 6 * max(p.slots for p in config.pools)))
        await bench.drain()

    bench = run_core(config, body)
    stats = bench.stats
    assert stats.ops > 4000 and stats.grants > 500
    assert stats.latency_min == stats.latency_max == config.latency
    # every error class was presented and answered
    assert set(stats.failures) >= {1, 3, 4, 5, 6}


@pytest.mark.parametrize("config", configs())
def test_reset_with_requests_in_flight(config):
    async def body(bench, reset):
        for cycles in (1, 3):
            await bench.random_traffic(600)
            await bench.step(None, None, (0, 0))              # a flush in flight too
            await reset(cycles)
            await bench.stale_pointers()
        await bench.random_traffic(600)
        await bench.drain()

    bench = run_core(config, body, seed=2)
    assert bench.stats.latency_max == config.latency


@pytest.mark.parametrize("config", configs())
def test_tag_wraps_around(config):
    async def body(bench, reset):
        for pool in range(len(config.pools)):
            await bench.hold_all_but_one(pool, (1 << config.tag_bits) + 2)
            await bench.drain()
            await reset(1)

    bench = run_core(config, body, seed=3)
    # each freelist pool ran dry (a ring never does)
    assert bench.stats.failures.get(1, 0) >= sum(pool.kind == "freelist" for pool in config.pools)


def test_a_slot_freed_at_t_is_granted_at_t_plus_r():
    """The recycle delay as seen on the ports: exhausted until t+R, granted at t+R."""
    config = corner("tiny_pools_wide_tags")

    async def body(bench, reset):
        await bench.step((0, 1, 1))
        await bench.step((0, 1, 2))
        await bench.idle(config.latency)
        await bench.step((0, 1, 3), (config.pools[0].addr_of(1), 1, 9))   # free slot 1 at t
        for _ in range(RECYCLE_DELAY - 1):
            await bench.step((0, 1, 4))
        await bench.step((0, 1, 5))                                        # alloc at t+R
        await bench.drain()

    bench = run_core(config, body)
    grants = [(g.ok, g.err, g.slot, g.tag, g.user) for g in bench.last_grants]
    assert grants == [(1, 0, 0, 1, 1), (1, 0, 1, 1, 2), (0, 1, 0, 0, 3)] + \
        [(0, 1, 0, 0, 4)] * (RECYCLE_DELAY - 1) + [(1, 0, 1, 2, 5)]


def test_a_persistent_pool_never_releases():
    """SPEC §4.4: a free in a persistent pool answers CONTRACT (after the range
    and alignment checks, before NOT_ALLOCATED), and its slot stays held."""
    config = parse_config({**CORNERS["tiny_pools_wide_tags"], "pools": [
        {"name": "a", "base": 0x100, "slot_size": 128, "slots": 2, "lifetime": "persistent"},
        {"name": "b", "base": 0x400, "slot_size": 4, "slots": 2}]})
    a = config.pools[0]

    async def body(bench, reset):
        await bench.step((0, 1, 1))
        await bench.idle(config.latency)
        await bench.step(None, (a.addr_of(0), 1, 2))        # held, right tag: CONTRACT
        await bench.step(None, (a.addr_of(1), 0, 3))        # never granted: CONTRACT
        await bench.step(None, (a.addr_of(0) + 4, 1, 4))    # MISALIGNED first
        await bench.step((0, 1, 5), (0x400, 0, 6))          # slot 1; pool b: NOT_ALLOCATED
        await bench.step((0, 1, 7))                          # EXHAUSTED: nothing came back
        await bench.drain()

    bench = run_core(config, body)
    assert [(f.ok, f.err, f.user) for f in bench.last_freeds] == [
        (0, 8, 2), (0, 8, 3), (0, 5, 4), (0, 6, 6)]
    assert [(g.ok, g.err, g.slot) for g in bench.last_grants] == [(1, 0, 0), (1, 0, 1), (0, 1, 0)]


@pytest.mark.parametrize("config, name", [
    (corner("tiny_pools_wide_tags"), "a"), (corner("no_tags_min_latency"), "a"),
    (load_config(example_path("event_region")), "event"), (corner("rings"), "log"),
    # a freelist pool with fewer slot bits than the widest pool (fields of
    # different widths compared in the forwarding)
    (corner("rings"), "ev")],
    ids=["tiny_pools_wide_tags", "no_tags_min_latency", "event_region", "rings_ring", "rings_freelist"])
def test_flush_around_requests_in_flight(config, name):
    """SPEC §4.3: flushes with allocs and frees of the pool 0..L cycles before and
    after them, the same slots granted again and again across flushes (their
    tags go on counting), frees older than the flush still in flight, and flushes
    back to back. Every response is checked against the model."""
    pool = next(p for p in config.pools if p.name == name)

    async def body(bench, reset):
        rng = bench.rng
        held = bench.scoreboard.model.held[pool.index]
        for gap in list(range(config.latency + 2)) * 3:
            for _ in range(rng.randint(1, 4)):                    # a few grants
                await bench.step((pool.index, 1, bench.user(1)))
            # frees of held slots, then the flush after ``gap`` cycles of allocs
            for _ in range(gap):
                free = None
                if held and rng.random() < 0.7:
                    slot, tag = rng.choice(list(held.items()))
                    free = (pool.addr_of(slot), tag, bench.user(2))
                await bench.step((pool.index, 1, bench.user(3)) if rng.random() < 0.7 else None, free)
            slot, tag = next(iter(held.items()), (0, 0))
            await bench.step((pool.index, 1, bench.user(4)), (pool.addr_of(slot), tag, bench.user(5)),
                             (pool.index, bench.user(6)))
            if rng.random() < 0.3:
                await bench.step(None, None, (pool.index, bench.user(7)))     # back to back
            # the free of a handle from before the flush: stale
            await bench.step((pool.index, 1, bench.user(8)), (pool.addr_of(slot), tag, bench.user(9)))
        await bench.drain()

    bench = run_core(config, body, seed=5)
    assert bench.stats.flushes >= 3 * (config.latency + 2)
    assert bench.stats.latency_min == bench.stats.latency_max == config.latency
    assert {f.ok for f in bench.last_flusheds} == {1}
    # slot 0 was granted right after many flushes: its tag kept counting
    tags = [g.tag for g in bench.last_grants if g.ok and g.slot == 0]
    if config.tag_bits:
        assert len(set(tags)) > 2


def test_memories_cut_into_banks_match_the_model(monkeypatch):
    """Memories deeper than BANK_DEPTH are cut into banks, each with its own
    output registers, the bank chosen after them. With the banks made 16 rows
    deep, pools of 40 (three banks, the last one short) and 33 slots run the
    random traffic and the reset replay through every bank boundary, and each
    pool's queue (split into halves of 20 and 17 rows, two banks each, read an
    edge before the commit: see hwalloc.freelist) at full speed, every
    released slot granted again at the first commit that can pop it."""
    monkeypatch.setattr(memory, "BANK_DEPTH", 16)
    config = parse_config({
        "name": "banked", "tag_bits": 3, "addr_width": 20,
        "pools": [{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 40},
                  {"name": "b", "base": 0x8000, "slot_size": 64, "slots": 33}]})

    async def body(bench, reset):
        await bench.random_traffic(6000)
        await reset(2)
        await bench.stale_pointers()
        await bench.random_traffic(2000)
        await bench.drain()
        for pool in (0, 1):
            await bench.queue_at_full_speed(pool, 600)

    bench = run_core(config, body, seed=5)
    assert bench.stats.ops > 6000 and bench.stats.grants > 1000
    assert bench.stats.latency_min == bench.stats.latency_max == config.latency
    # the deep memories really were banked: 3 banks of grant and parity, 2 of each queue half
    verilog = emit_verilog(config)
    for name in ("a_queue_even_bank0", "a_queue_odd_bank1", "b_queue_even_bank1", "b_grant_bank2",
                 "b_parity_bank1"):
        assert re.search(rf"reg \[\d+:0\] {name} \[", verilog), name
    assert not re.search(r"reg \[\d+:0\] a_(queue|queue_even)_bank2 \[", verilog)


@pytest.mark.parametrize("bank_depth", [memory.BANK_DEPTH, 16], ids=["plain", "banked"])
def test_free_at_every_distance_from_its_grant(monkeypatch, bank_depth):
    """A slot freed 1 to 8 cycles after the alloc that takes it, then again 1
    to 8 cycles later, the tag wrong every other round: every forwarding path
    of the free check at every distance, in a freelist and a ring pool. With
    16-row banks the pools are a bank deep or deeper: their free check reads
    its memories an edge earlier (three-edge reads) and forwards alloc t-4
    and free t-4 as well, the pool of exactly a bank from one bank."""
    monkeypatch.setattr(memory, "BANK_DEPTH", bank_depth)
    config = parse_config({
        "name": "distances", "tag_bits": 3, "addr_width": 20,
        "pools": [{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 40},
                  {"name": "r", "base": 0x8000, "slot_size": 64, "slots": 20, "kind": "ring"},
                  {"name": "e", "base": 0x10000, "slot_size": 32, "slots": 16}]})
    verilog = emit_verilog(config)
    if bank_depth == 16:
        assert re.search(r"a_grant_r0_late_b1\b", verilog)
        assert re.search(r"e_grant_r0_late\b", verilog) and not re.search(r"e_grant_r0_late_b", verilog)
    else:
        assert not re.search(r"_grant_r0_late", verilog)

    async def body(bench, reset):
        for pool in range(len(config.pools)):
            await bench.free_at_every_distance(pool)
        await bench.random_traffic(3000)
        await bench.drain()

    bench = run_core(config, body, seed=9)
    assert bench.stats.frees > 200


def test_ring_order_overwrite_and_stale_handles():
    """SPEC §4.2 on the ports: slots in ring order, never EXHAUSTED; the fifth
    grant of a 4-slot ring overwrites slot 0 (its old handle then answers
    TAG_MISMATCH); a freed slot's reuse is no overwrite; a flush puts the
    pointer back to 0 and tags go on."""
    config = corner("rings")
    log = config.pools[0]

    async def body(bench, reset):
        for user in range(5):
            await bench.step((0, 1, user))                       # slots 0 1 2 3 0
        await bench.step(None, (log.addr_of(1), 1, 5))           # slot 1 freed
        await bench.step((0, 1, 6))                              # slot 1 again: no overwrite
        await bench.idle(config.latency)
        await bench.step(None, (log.addr_of(0), 1, 7))           # the overwritten handle
        await bench.step(None, (log.addr_of(0), 2, 8))           # the holder's: released
        await bench.step(None, None, (0, 9))                     # flush
        await bench.step((0, 1, 10))                             # slot 0, tag 3
        await bench.drain()

    bench = run_core(config, body)
    assert [(g.slot, g.tag, g.overwrote) for g in bench.last_grants] == [
        (0, 1, False), (1, 1, False), (2, 1, False), (3, 1, False), (0, 2, True), (1, 2, False),
        (0, 3, False)]
    assert [(f.ok, f.err) for f in bench.last_freeds] == [(1, 0), (0, 7), (1, 0)]


@pytest.mark.parametrize("latency", [MIN_LATENCY, 9])
def test_ring_frees_racing_the_pointer(latency):
    """Frees of ring slots 0..4 cycles before and after the pointer grants them
    again (the free still deciding when the alloc commits, so neither the
    recycle delay nor the memories order them), stale handles, flushes, and a
    log writer beside a reader that falls behind. Overwrites are checked on
    every grant (the core shows them)."""
    config = dataclasses.replace(corner("rings"), latency=latency)

    async def body(bench, reset):
        for pool in (0, 2):
            await bench.ring_races(pool, 3000)
            await bench.ring_log(pool, 1500)
        await bench.random_traffic(3000)
        await bench.drain()

    bench = run_core(config, body, seed=latency)
    grants = [g for g in bench.last_grants if g.ok and config.pools[g.pool].kind == "ring"]
    overwrites = sum(g.overwrote for g in grants)
    assert len(grants) > 4000 and 500 < overwrites < len(grants)
    counts = bench.stats.coverage
    for name in ("ring.overwrite", "ring.stale_free.TAG_MISMATCH", "ring.release_then_regrant", "ring.wrap"):
        assert counts[name] > 0, name


@pytest.mark.parametrize("name", ["ev", "log"])
def test_tag_goes_on_across_a_flush_right_after_a_regrant(name):
    """Slot 0 granted again (from the queue, or by the ring's pointer, back at
    slot 0), then in
    the very next cycle a flush with an alloc, which takes slot 0 again: its tag
    comes from the grant still on its way to the record (forwarded), in a pool
    with fewer slot bits than the widest one."""
    config = corner("rings")
    pool = next(p for p in config.pools if p.name == name)

    async def body(bench, reset):
        for user in range(pool.slots):
            await bench.step((pool.index, 1, bench.user(user)))       # every slot, tag 1
        await bench.step(None, (pool.addr_of(0), 1, 10))                # slot 0 released
        await bench.idle(RECYCLE_DELAY)
        await bench.step((pool.index, 1, 12))                           # slot 0 again: tag 2
        await bench.step((pool.index, 1, 13), None, (pool.index, 14))   # flush, slot 0: tag 3
        await bench.drain()

    bench = run_core(config, body)
    assert [(g.slot, g.tag) for g in bench.last_grants[-2:]] == [(0, 2), (0, 3)]
