"""The reference model on its own: SPEC §4-§5, edge case by edge case."""

from dataclasses import replace

import pytest

from hwalloc.config import parse_config
from hwalloc.model import Err, Flushed, LogEntry, Model, Monitor, Op

CONFIG = parse_config({
    "name": "m", "tag_bits": 2, "latency": 7,
    "pools": [{"name": "a", "base": 0x1000, "slot_size": 64, "slots": 3},
              {"name": "b", "base": 0x2000, "slot_size": 256, "slots": 2}],
    "regions": [{"name": "rom", "base": 0x0, "size": 0x100}],
})


def model(recycle_delay=2, config=CONFIG):
    return Model(config, recycle_delay=recycle_delay)


def test_slots_are_granted_in_order_after_reset():
    m = model()
    grants = [m.alloc(c, 0, 64, 5) for c in range(3)]
    assert [(g.ok, g.slot, g.addr, g.tag, g.user) for g in grants] == [
        (1, 0, 0x1000, 1, 5), (1, 1, 0x1040, 1, 5), (1, 2, 0x1080, 1, 5)]
    assert m.alloc(3, 0, 64, 5).err == Err.EXHAUSTED


def test_released_slots_queue_behind_the_waiting_ones():
    m = model()
    m.alloc(0, 0, 1, 0)                                  # slot 0
    assert m.free(1, 0x1000, 1, 0).ok
    assert m.alloc(10, 0, 1, 0).slot == 1                # never-used slots first
    assert m.alloc(11, 0, 1, 0).slot == 2
    assert m.alloc(12, 0, 1, 0).slot == 0                # then in order of release


def test_recycle_delay():
    for r in (1, 2, 5):
        m = model(recycle_delay=r)
        for c in range(3):
            m.alloc(c, 0, 1, 0)
        assert m.free(10, 0x1040, 1, 0).ok
        for c in range(10, 10 + r):
            assert m.alloc(c, 0, 1, 0).err == Err.EXHAUSTED
        grant = m.alloc(10 + r, 0, 1, 0)
        assert (grant.ok, grant.slot, grant.tag) == (1, 1, 2)


def test_free_is_ordered_before_alloc_in_a_cycle():
    m = model(recycle_delay=1)
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    grant, freed, _ = m.step(5, alloc=(0, 1, 0), free=(0x1000, 1, 0))
    assert freed.ok and grant.err == Err.EXHAUSTED       # R >= 1: not yet grantable
    m = model()
    grant, freed, _ = m.step(0, alloc=(0, 1, 0), free=(0x1000, 1, 0))
    assert freed.err == Err.NOT_ALLOCATED and grant.slot == 0


def test_tags_count_grants_and_wrap():
    m = model(recycle_delay=1)
    m.alloc(0, 1, 1, 0)                                  # b slot 0
    m.alloc(1, 1, 1, 0)                                  # b slot 1
    tags = []
    cycle = 2
    for _ in range(6):                                   # regrant slot 0 of pool b
        tag = m.held[1][0]
        assert m.free(cycle, 0x2000, tag, 0).ok
        grant = m.alloc(cycle + 1, 1, 1, 0)
        assert grant.slot == 0
        tags.append(grant.tag)
        cycle += 2
    assert tags == [2, 3, 0, 1, 2, 3]                    # k-th grant carries k mod 4


@pytest.mark.parametrize("request_, err", [
    ((2, 1, 0), Err.BAD_POOL),
    ((3, 10_000, 0), Err.BAD_POOL),                      # BAD_POOL before TOO_BIG
    ((0, 65, 0), Err.TOO_BIG),
    ((1, 257, 0), Err.TOO_BIG),
])
def test_alloc_errors(request_, err):
    grant = model().alloc(0, *request_)
    assert (grant.ok, grant.err, grant.slot, grant.addr, grant.tag) == (0, err, 0, 0, 0)
    assert grant.pool == request_[0]                     # grant_pool echoes alloc_pool


def test_size_zero_counts_as_one_and_slot_size_fits():
    m = model()
    assert m.alloc(0, 0, 0, 0).ok
    assert m.alloc(1, 0, 64, 0).ok


def test_too_big_before_exhausted():
    m = model()
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    assert m.alloc(3, 0, 65, 0).err == Err.TOO_BIG
    assert m.alloc(4, 0, 64, 0).err == Err.EXHAUSTED


@pytest.mark.parametrize("addr, err", [
    (0x0080, Err.OUT_OF_RANGE),                          # static region
    (0x10C0, Err.OUT_OF_RANGE),                          # just past pool a
    (0x0FFF, Err.OUT_OF_RANGE),
    (0x1001, Err.MISALIGNED),
    (0x2080, Err.MISALIGNED),                            # inside slot 0 of pool b
    (0x1040, Err.NOT_ALLOCATED),                         # never granted
])
def test_free_errors(addr, err):
    m = model()
    m.alloc(0, 0, 1, 0)
    freed = m.free(1, addr, 1, 9)
    assert (freed.ok, freed.err, freed.user) == (0, err, 9)


def test_double_free_and_stale_tag():
    m = model(recycle_delay=1)
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    assert m.free(3, 0x1000, 0, 0).err == Err.TAG_MISMATCH
    assert m.free(4, 0x1000, 1, 0).ok
    assert m.free(5, 0x1000, 1, 0).err == Err.NOT_ALLOCATED     # double free
    m.alloc(6, 0, 1, 0)                                          # regranted, tag 2
    assert m.free(7, 0x1000, 1, 0).err == Err.TAG_MISMATCH      # stale pointer


def test_rejected_requests_change_nothing():
    m, ref = model(), model()
    m.alloc(0, 0, 1, 0)
    ref.alloc(0, 0, 1, 0)
    for c, (kind, args) in enumerate([("free", (0x1000, 3, 0)), ("free", (0x1040, 1, 0)),
                                      ("free", (0x0, 0, 0)), ("alloc", (0, 999, 0)),
                                      ("alloc", (7, 1, 0))], start=1):
        getattr(m, kind)(c, *args)
    assert m.held == ref.held and list(m.waiting[0]) == list(ref.waiting[0])


def test_without_tags_any_tag_frees():
    config = parse_config({"name": "n", "tag_bits": 0,
                           "pools": [{"name": "a", "base": 0, "slot_size": 4, "slots": 2}]})
    m = model(config=config)
    assert m.alloc(0, 0, 1, 0).tag == 0
    assert m.free(1, 0, 3, 0).ok


def test_reset_restarts_everything():
    m = model(recycle_delay=1)
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    m.free(3, 0x1040, 1, 0)
    m.reset()
    grant = m.alloc(0, 0, 1, 0)
    assert (grant.slot, grant.tag) == (0, 1)
    assert m.free(1, 0x1040, 1, 0).err == Err.NOT_ALLOCATED


def test_cycles_must_increase_and_delay_must_fit():
    m = model()
    m.step(3, alloc=(0, 1, 0))
    with pytest.raises(ValueError, match="Cycles must increase: 3 after 3"):
        m.step(3, alloc=(0, 1, 0))
    with pytest.raises(ValueError, match="Recycle delay must be within 1..7, not 0"):
        model(recycle_delay=0)


# ---- flush, ring pools and persistent pools (SPEC §4.2-§4.4) -------------------

def with_pool(config=CONFIG, index=0, **changes):
    """``config`` with pool ``index`` changed (ring pools are not accepted by the
    config parser until the core builds them; the model knows them already)."""
    pools = list(config.pools)
    pools[index] = replace(pools[index], **changes)
    return replace(config, pools=tuple(pools))


def test_flush_frees_every_slot_and_restarts_the_order():
    m = model(recycle_delay=5)
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    assert m.free(3, 0x1040, 1, 0).ok                    # slot 1 inside its recycle delay
    assert m.flush(4, 0, 7) == Flushed(ok=1, err=Err.OK, user=7)
    assert m.in_use(0) == 0
    grants = [m.alloc(c, 0, 1, 0) for c in range(5, 8)]  # recycle window or not: all free
    assert [g.slot for g in grants] == [0, 1, 2]         # order as after reset
    assert [g.tag for g in grants] == [2, 2, 2]          # tags go on counting
    assert m.alloc(8, 0, 1, 0).err == Err.EXHAUSTED


def test_flush_keeps_other_pools_and_released_slots_queue_behind():
    m = model(recycle_delay=1)
    b = m.alloc(0, 1, 1, 0)
    m.alloc(1, 0, 1, 0)
    m.flush(2, 0, 0)
    assert m.held[1] == {b.slot: b.tag}                  # pool b untouched
    m.alloc(3, 0, 1, 0)                                  # slot 0
    assert m.free(4, 0x1000, 2, 0).ok
    assert [m.alloc(c, 0, 1, 0).slot for c in range(5, 8)] == [1, 2, 0]


def test_stale_handle_after_flush():
    m = model(recycle_delay=1)
    g = m.alloc(0, 0, 1, 0)
    m.flush(1, 0, 0)
    assert m.free(2, g.addr, g.tag, 0).err == Err.NOT_ALLOCATED       # slot free
    again = m.alloc(3, 0, 1, 0)
    assert again.slot == g.slot and again.tag != g.tag
    assert m.free(4, g.addr, g.tag, 0).err == Err.TAG_MISMATCH        # granted again
    assert m.free(5, again.addr, again.tag, 0).ok


def test_free_flush_alloc_order_within_a_cycle():
    m = model(recycle_delay=5)
    for c in range(3):
        m.alloc(c, 0, 1, 0)
    # free first (ok), then the flush empties the pool, then the alloc gets slot 0
    grant, freed, flushed = m.step(3, alloc=(0, 1, 0), free=(0x1040, 1, 0), flush=(0, 0))
    assert freed.ok and flushed.ok and (grant.ok, grant.slot, grant.tag) == (1, 0, 2)
    assert m.in_use(0) == 1


def test_flush_errors_change_nothing():
    config = with_pool(index=1, lifetime="persistent")
    m = model(config=config)
    m.alloc(0, 1, 1, 0)
    assert m.flush(1, 2, 3) == Flushed(ok=0, err=Err.BAD_POOL, user=3)
    assert m.flush(2, 1, 4) == Flushed(ok=0, err=Err.CONTRACT, user=4)
    assert m.in_use(1) == 1


def test_persistent_free_answers_contract_after_range_checks():
    m = model(config=with_pool(index=0, lifetime="persistent"))
    g = m.alloc(0, 0, 1, 0)
    assert m.free(1, g.addr, g.tag, 0).err == Err.CONTRACT
    assert m.free(2, g.addr + 1, g.tag, 0).err == Err.MISALIGNED      # MISALIGNED first
    assert m.free(3, 0x1040, 0, 0).err == Err.CONTRACT                # before NOT_ALLOCATED
    assert m.held[0] == {g.slot: g.tag}


def test_ring_grants_in_order_and_overwrites_the_oldest():
    m = model(config=with_pool(index=0, kind="ring"))
    grants = [m.alloc(c, 0, 1, 0) for c in range(7)]
    assert [g.slot for g in grants] == [0, 1, 2, 0, 1, 2, 0]
    assert [g.ok for g in grants] == [1] * 7                          # never EXHAUSTED
    assert [g.overwrote for g in grants] == [False] * 3 + [True] * 4
    assert m.in_use(0) == 3
    assert m.free(7, grants[0].addr, grants[0].tag, 0).err == Err.TAG_MISMATCH   # overwritten
    assert m.free(8, grants[5].addr, grants[5].tag, 0).ok             # slot 2, current holder
    g = m.alloc(9, 0, 1, 0)                                           # slot 1: still held
    assert (g.slot, g.overwrote) == (1, True)
    g = m.alloc(10, 0, 1, 0)                                          # slot 2: freed, no overwrite
    assert (g.slot, g.overwrote) == (2, False)


def test_ring_has_no_recycle_delay_and_flush_resets_its_pointer():
    m = model(recycle_delay=5, config=with_pool(index=0, kind="ring"))
    a, b = m.alloc(0, 0, 1, 0), m.alloc(1, 0, 1, 0)
    assert m.free(2, a.addr, a.tag, 0).ok
    m.alloc(3, 0, 1, 0)                                               # slot 2
    g = m.alloc(4, 0, 1, 0)                                           # slot 0 again, 2 cycles after its free
    assert (g.slot, g.overwrote) == (0, False)
    m.flush(5, 0, 0)
    g = m.alloc(6, 0, 1, 0)
    assert (g.slot, g.tag, g.overwrote) == (0, 3, False)
    assert m.free(7, b.addr, b.tag, 0).err == Err.NOT_ALLOCATED


def test_monitor_counts_flushes_overwrites_and_logs_flush_errors():
    config = with_pool(index=0, kind="ring")
    config = with_pool(config, index=1, lifetime="persistent")
    m, mon = model(config=config), Monitor(config)
    for c in range(4):
        alloc = (0, 1, 0)
        mon.record(c, alloc=alloc, grant=m.alloc(c, *alloc))
    assert (mon.in_use[0], mon.allocs[0], mon.overwrites[0], mon.irq_status) == (3, 4, 1, 8)
    mon.record(4, flush=(0, 5), flushed=m.flush(4, 0, 5))
    mon.record(5, flush=(1, 6), flushed=m.flush(5, 1, 6))
    assert (mon.in_use[0], mon.flushes[0], mon.high_water[0]) == (0, 1, 3)
    assert list(mon.log) == [LogEntry(Err.CONTRACT, Op.FLUSH, 0, 1, 0, 0, 6, 5)]
    mon.clear()
    assert (mon.flushes[0], mon.overwrites[0]) == (0, 0)
