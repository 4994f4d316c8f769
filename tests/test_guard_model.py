"""The access guard's reference model (SPEC §8, codes 9-14 of §5): the bytes a
burst touches, the verdict's order, degraded mode and what a refusal logs.
A guarded config generates a top with both AXI4 ports."""

import random

import pytest

from hwalloc import cli
from hwalloc.config import ConfigError, parse_config
from hwalloc.model import Burst, Err, GuardModel, LogEntry, Model, Monitor, Op, burst_span, judge_access

DATA = {
    "name": "g", "tag_bits": 2, "addr_width": 16,
    "pools": [{"name": "a", "base": 0x1000, "slot_size": 64, "slots": 4},
              {"name": "t", "base": 0x2000, "slot_size": 256, "slots": 2, "access": "ro"}],
    "regions": [{"name": "rom", "base": 0x0, "size": 0x400},
                {"name": "ram", "base": 0x400, "size": 0x400, "access": "rw"}],
    "guard": {"data_bytes": 8, "id_width": 3},
}
CONFIG = parse_config(DATA)


def judge(held, addr, *, tag=1, length=0, size=2, burst=Burst.INCR, write=False, locked=False,
          config=CONFIG):
    return judge_access(config, held, addr=addr, tag=tag, length=length, size=size, burst=burst,
                        write=write, locked=locked)


def test_guard_config_defaults_and_problems():
    plain = {k: v for k, v in DATA.items() if k != "guard"}
    assert parse_config(plain).guard is None
    guard = parse_config(dict(plain, guard={})).guard
    assert (guard.data_bytes, guard.id_width, guard.outside, guard.max_size) == (8, 4, "pass", 3)
    assert parse_config(dict(plain, guard=None)).guard == guard
    assert parse_config(dict(plain, guard={})).to_dict()["guard"] == {
        "data_bytes": 8, "id_width": 4, "outside": "pass"}
    with pytest.raises(ConfigError) as refused:
        parse_config(dict(plain, guard={"data_bytes": 12, "id_width": 0, "outside": "drop", "ids": 2}))
    assert refused.value.problems == [
        "guard.ids: unknown key (expected one of: data_bytes, id_width, outside)",
        "guard.data_bytes: 12 is not one of: 4, 8, 16, 32, 64",
        "guard.id_width: 0 is out of range (1..8)",
        "guard.outside: 'drop' is not one of: pass, refuse"]
    with pytest.raises(ConfigError, match="guard: expected a mapping"):
        parse_config(dict(plain, guard=[1]))


def test_a_guarded_config_generates_a_top_with_both_axi4_ports(tmp_path):
    """SPEC §8: s_axi with A + T address bits, m_axi with A; data, strobes and
    IDs as configured; the GUARD_* registers in the collateral."""
    import re
    path = tmp_path / "g.yaml"
    path.write_text(__import__("yaml").safe_dump(DATA))
    assert cli.main(["generate", str(path), "--out", str(tmp_path / "out")]) == 0
    verilog = (tmp_path / "out" / "rtl_out" / f"{CONFIG.name}.v").read_text()
    header = verilog[:verilog.index(");")]
    ports = {name: int(msb or 0) + 1 for msb, name in
             re.findall(r"^  (?:input|output) (?:\[(\d+):0\] )?(\w+);", verilog, re.M)}
    A, T, g = CONFIG.addr_width, CONFIG.tag_bits, CONFIG.guard
    assert ports["s_axi_araddr"] == ports["s_axi_awaddr"] == A + T
    assert ports["m_axi_araddr"] == ports["m_axi_awaddr"] == A
    for side in ("s_axi", "m_axi"):
        assert ports[f"{side}_wdata"] == ports[f"{side}_rdata"] == 8 * g.data_bytes
        assert ports[f"{side}_wstrb"] == g.data_bytes
        assert ports[f"{side}_arid"] == ports[f"{side}_rid"] == ports[f"{side}_bid"] == g.id_width
        for name in ("awlen", "awsize", "awburst", "wlast", "bresp", "arlen", "rresp", "rlast",
                     "awvalid", "awready", "wvalid", "wready", "bvalid", "bready", "arvalid", "arready",
                     "rvalid", "rready"):
            assert f"{side}_{name}" in header
    c_header = (tmp_path / "out" / "rtl_out" / f"{CONFIG.name}.h").read_text()
    for name in ("GUARD_CTRL", "GUARD_STATUS", "GUARD_CHECKS", "GUARD_REFUSED"):
        assert f"_{name} " in c_header


def test_burst_spans():
    assert burst_span(0x1003, 3, 2, Burst.INCR) == (0x1003, 0x100F)     # unaligned start
    assert burst_span(0x1000, 0, 3, Burst.INCR) == (0x1000, 0x1007)
    assert burst_span(0x1005, 7, 0, Burst.FIXED) == (0x1005, 0x1005)
    assert burst_span(0x1006, 7, 2, Burst.FIXED) == (0x1006, 0x1007)
    assert burst_span(0x1018, 3, 3, Burst.WRAP) == (0x1000, 0x101F)     # the wrap container
    assert burst_span(0x1018, 2, 3, Burst.WRAP) is None                 # 3 beats cannot wrap
    assert burst_span(0x1014, 3, 3, Burst.WRAP) is None                 # unaligned wrap
    assert burst_span(0x1000, 0, 2, 3) is None                          # reserved burst type
    assert burst_span(0x1FFC, 1, 2, Burst.INCR) is None                 # across 4 KiB
    assert burst_span(0x1FF8, 1, 2, Burst.INCR) == (0x1FF8, 0x1FFF)     # up to it


def beats(addr, length, size, burst):
    """The bytes of every beat, as AXI4 (A3.4.1) computes the beat addresses."""
    nbytes = 1 << size
    aligned = addr // nbytes * nbytes
    container = nbytes * (length + 1)
    lower = addr // container * container
    touched = set()
    for n in range(length + 1):
        if burst == Burst.FIXED:
            start = addr
        elif burst == Burst.INCR:
            start = addr if n == 0 else aligned + n * nbytes
        else:
            start = aligned + n * nbytes
            if start >= lower + container:
                start -= container
        touched.update(range(start, (start // nbytes + 1) * nbytes))
    return touched


def test_spans_match_the_beats_of_random_bursts():
    rng = random.Random(3)
    for _ in range(3000):
        burst = rng.choice(list(Burst))
        size = rng.randrange(4)
        length = rng.choice((1, 3, 7, 15)) if burst == Burst.WRAP else rng.randrange(256)
        addr = rng.randrange(0x10000)
        if burst == Burst.WRAP:
            addr -= addr % (1 << size)
        touched = beats(addr, length, size, burst)
        crosses = min(touched) >> 12 != max(touched) >> 12          # AXI4 forbids it
        assert burst_span(addr, length, size, burst) == (None if crosses else (min(touched), max(touched)))
        assert len(touched) == max(touched) - min(touched) + 1       # no holes


def held_slot(slot=1, tag=1):
    return [{slot: tag}, {}]


def test_verdicts_in_the_spec_order():
    held = held_slot()
    slot1 = 0x1040
    assert judge(held, slot1, tag=1, length=15, size=2) == Err.OK                 # the whole slot
    assert judge(held, slot1, tag=1, length=15, size=2, write=True) == Err.OK
    assert judge(held, slot1, tag=1, write=True, locked=True) == Err.ACCESS_LOCKED
    assert judge(held, slot1, tag=1, locked=True) == Err.OK                       # reads go on
    assert judge(held, slot1 + 60, tag=1, size=3) == Err.OK                      # unaligned: 4 bytes
    assert judge(held, slot1 + 60, tag=1, length=1, size=3) == Err.ACCESS_BOUNDS  # runs past the slot
    assert judge(held, slot1, tag=1, length=16, size=2) == Err.ACCESS_BOUNDS     # one beat too many
    assert judge(held, 0x1000, tag=1) == Err.ACCESS_FREE                          # slot 0 not held
    assert judge(held, slot1, tag=2) == Err.ACCESS_TAG                            # stale or forged
    assert judge(held, 0x10F8, tag=0, length=1, size=3) == Err.ACCESS_OUTSIDE    # leaves the pool
    assert judge(held, 0x0FF8, length=1, size=3) == Err.ACCESS_OUTSIDE           # enters it
    assert judge(held, 0x07F8, length=1, size=3) == Err.ACCESS_OUTSIDE           # region to nothing
    assert judge(held, 0x03F8, length=1, size=3) == Err.ACCESS_OUTSIDE           # region to region
    assert judge(held, slot1, size=4) == Err.ACCESS_OUTSIDE                      # wider than the bus
    assert judge(held, slot1, length=2, burst=Burst.WRAP) == Err.ACCESS_OUTSIDE  # not AXI4


def test_ro_pools_and_regions():
    held = [{}, {0: 1}]
    assert judge(held, 0x2000, length=63) == Err.OK
    assert judge(held, 0x2000, write=True) == Err.ACCESS_RO
    assert judge([{}, {}], 0x2000, write=True) == Err.ACCESS_RO    # ACCESS_RO before ACCESS_FREE
    assert judge(held, 0x2100, tag=3) == Err.ACCESS_FREE         # slot 1 not held
    assert judge([{}, {1: 3}], 0x2100, tag=3) == Err.OK
    # regions: no slots, no tags
    assert judge(held, 0x0, length=255, size=2, tag=3) == Err.OK
    assert judge(held, 0x10, write=True) == Err.ACCESS_RO
    assert judge(held, 0x400, write=True, length=255, size=2) == Err.OK


def test_outside_everything_passes_or_is_refused():
    refuse = parse_config(dict(DATA, guard={"outside": "refuse"}))
    for config, expected in ((CONFIG, Err.OK), (refuse, Err.ACCESS_OUTSIDE)):
        assert judge([{}, {}], 0x3000, write=True, config=config) == expected
        assert judge([{}, {}], 0x0900, length=7, size=3, config=config) == expected
    assert judge([{}, {}], 0xFFF8, length=1, size=3) == Err.ACCESS_OUTSIDE     # past 2**A


def test_without_tags_only_the_held_bit_counts():
    config = parse_config(dict(DATA, tag_bits=0))
    assert judge(held_slot(tag=0), 0x1040, tag=0, config=config) == Err.OK
    assert judge(held_slot(tag=0), 0x1000, tag=0, config=config) == Err.ACCESS_FREE


def test_wrap_bursts_are_judged_by_their_container():
    held = held_slot()
    assert judge(held, 0x1078, tag=1, length=3, size=3, burst=Burst.WRAP) == Err.OK   # 0x1060..0x107F
    assert judge(held, 0x1078, tag=1, length=15, size=3, burst=Burst.WRAP) == Err.ACCESS_BOUNDS


def test_the_guard_follows_the_allocator_and_locks_in_degraded_mode():
    m, guard, monitor = Model(CONFIG, recycle_delay=5), GuardModel(CONFIG), Monitor(CONFIG)
    grant = m.alloc(0, 0, 64, 0)
    pointer = (grant.tag << CONFIG.addr_width) | grant.addr
    assert guard.split(pointer) == (grant.addr, grant.tag)

    def access(cycle, axi_addr, write, axi_id=5):
        err = guard.access(m.held, axi_addr=axi_addr, length=7, size=3, burst=Burst.INCR, write=write)
        monitor.record_access(cycle, axi_addr=axi_addr, axi_id=axi_id, write=write, err=err)
        return err

    assert access(1, pointer, write=True) == Err.OK
    assert m.free(2, grant.addr, grant.tag, 0).ok
    assert access(3, pointer, write=True) == Err.ACCESS_FREE             # use after free
    assert monitor.irq_status == 1 | 32
    assert list(monitor.log) == [LogEntry(Err.ACCESS_FREE, Op.WRITE_ACCESS, 2, 0, grant.tag,
                                          grant.addr, 5, 3)]
    guard.lock_on_violation = True
    assert access(4, 0x3000, write=False, axi_id=1) == Err.OK            # outside: pass
    regrant = m.alloc(10, 0, 64, 0)
    assert regrant.slot != grant.slot
    assert access(11, 0x0010, write=False, axi_id=2) == Err.OK           # a read of the ro region
    assert access(12, 0x0010, write=True, axi_id=2) == Err.ACCESS_RO     # locks the guard
    assert guard.locked
    fresh = (regrant.tag << CONFIG.addr_width) | regrant.addr
    assert access(13, fresh, write=True) == Err.ACCESS_LOCKED
    assert access(14, fresh, write=False) == Err.OK                      # reads still checked
    assert monitor.log[-2] == LogEntry(Err.ACCESS_RO, Op.WRITE_ACCESS, 2, 0xFF, 0, 0x10, 2, 12)
    assert (guard.checks, guard.refused) == (7, 3)
    guard.locked = False                                                 # GUARD_STATUS W1C
    assert access(15, fresh, write=True) == Err.OK
    guard.clear()
    assert (guard.checks, guard.refused) == (0, 0)
    with pytest.raises(ValueError, match="has no guard"):
        GuardModel(parse_config({k: v for k, v in DATA.items() if k != "guard"}))
