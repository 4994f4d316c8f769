"""Functional coverage bins: which a config can reach, and how the scoreboard
samples them (pure Python, on the reference model)."""

import random

from hwalloc.config import RECYCLE_DELAY, parse_config
from hwalloc.model import Err
from hwalloc.tb.coverage import expected_bins, report
from hwalloc.tb.scoreboard import Scoreboard


def make(**overrides):
    raw = {"name": "cov", "tag_bits": 2, "latency": 7,
           "pools": [{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 4},
                     {"name": "b", "base": 0x2000, "slot_size": 64, "slots": 2},
                     {"name": "c", "base": 0x3000, "slot_size": 64, "slots": 2}]}
    raw.update(overrides)
    return parse_config(raw)


def test_bins_follow_what_the_config_can_reach():
    bins = expected_bins(make())
    assert "error.BAD_POOL.native" in bins and "tag_wrap" in bins and "error.TAG_MISMATCH.axi" in bins
    assert "occupancy.b.N-1" in bins and "axi_stall.r" in bins
    # two pools fill a 1-bit pool field; no tags: no tag bins
    untagged = expected_bins(make(tag_bits=0, pools=make().to_dict()["pools"][:2]))
    assert not {"error.BAD_POOL.native", "tag_wrap", "error.TAG_MISMATCH.native"} & set(untagged)
    # register requests can never be misaligned, name a bad pool, or be too big
    assert not any(b.endswith((".axi",)) and ("MISALIGNED" in b or "BAD_POOL" in b or "TOO_BIG" in b)
                   for b in bins)
    assert not any(b.endswith(".axi") or b.startswith("axi_") for b in expected_bins(make(), axi=False))


def test_bins_that_need_a_release_need_a_transient_pool():
    pools = make().to_dict()["pools"]
    persistent = [dict(pool, lifetime="persistent") for pool in pools]
    only = set(expected_bins(make(pools=persistent)))
    assert "error.CONTRACT.native" in only and "error.CONTRACT.flush" in only
    assert not {"error.NOT_ALLOCATED.native", "error.NOT_ALLOCATED.axi", "error.TAG_MISMATCH.native",
                "recycle.alloc_inside_window", "exhausted_then_recovered", "tag_wrap",
                "flush.ok"} & only
    mixed = set(expected_bins(make(pools=[pools[0]] + persistent[1:])))
    assert {"error.NOT_ALLOCATED.native", "tag_wrap", "flush.ok", "error.CONTRACT.axi"} <= mixed


def test_scoreboard_samples_the_bins_and_reports_holes():
    config = make()
    board = Scoreboard(config, recycle_delay=RECYCLE_DELAY)
    cycle = 0

    def step(alloc=None, free=None, **kw):
        nonlocal cycle
        cycle += 1
        return board.handshake(cycle, alloc=alloc, free=free, **kw)

    a = config.pools[0]
    assert step(None, (a.addr_of(0), 1, 0))[1].err == Err.NOT_ALLOCATED    # pool a empty
    grants = [step((0, 1, 0))[0] for _ in range(4)]
    assert [g.slot for g in grants] == [0, 1, 2, 3]
    assert step((0, 1, 0))[0].err == Err.EXHAUSTED
    # a free and an alloc of the same pool in one cycle: the alloc is inside the
    # recycle window, so the pool is still exhausted
    grant, freed = step((0, 1, 0), (a.addr_of(2), grants[2].tag, 0))
    assert freed.ok and grant.err == Err.EXHAUSTED
    cycle += RECYCLE_DELAY
    assert step((0, 1, 0))[0].ok
    counts = board.stats.coverage
    for name in ("occupancy.a.empty", "occupancy.a.one", "occupancy.a.half", "occupancy.a.N-1",
                 "occupancy.a.full", "error.EXHAUSTED.native", "recycle.alloc_inside_window",
                 "recycle.exhausted_inside_window", "exhausted_then_recovered"):
        assert counts[name] > 0, name
    assert counts["alloc_and_free.same_cycle_same_pool"] == 0     # that alloc failed
    assert counts["tag_wrap"] == 0
    step(None, (a.addr_of(1) + 4, 0, 0))
    step(None, (0x9000, 0, 0), free_src=1)
    assert counts["error.MISALIGNED.native"] == 1 and counts["error.OUT_OF_RANGE.axi"] == 1
    lines, holes = report(config, counts)
    assert len(lines) == len(expected_bins(config))
    assert "tag_wrap" in holes and "axi_stall.aw" in holes and "occupancy.a.full" not in holes
    board.reset(cycle)
    assert counts["reset.requests_in_flight"] == 1      # the responses above were never observed


def test_tag_wrap_is_the_first_grant_with_tag_zero():
    config = make(tag_bits=1, pools=[{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 2}])
    board = Scoreboard(config, recycle_delay=RECYCLE_DELAY)
    rng = random.Random(3)
    cycle, held = 0, {}
    while not board.stats.coverage["tag_wrap"]:
        cycle += 1 + RECYCLE_DELAY
        if held and rng.random() < 0.5:
            slot, tag = held.popitem()
            board.handshake(cycle, free=(config.pools[0].addr_of(slot), tag, 0))
        else:
            grant, _ = board.handshake(cycle, alloc=(0, 1, 0))
            if grant.ok:
                held[grant.slot] = grant.tag
        assert cycle < 200
    # the wrapping grant was a slot's second: 2 mod 2**1 is 0
    assert 2 in board.model.grants[0].values()
