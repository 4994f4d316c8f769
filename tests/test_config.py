"""Config validation: every rule of SPEC §1, each with its exact message."""

import copy

import pytest

from hwalloc.config import (MIN_LATENCY, ConfigError, example_names, example_path, load_config,
                            parse_config)

BASE = {
    "name": "hwalloc_t",
    "pools": [{"name": "a", "base": 0x1000, "slot_size": 64, "slots": 16}],
}


def problems(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def pool_problems(**changes):
    pool = dict(BASE["pools"][0], **changes)
    return problems(pools=[pool])


def test_defaults_follow_the_spec():
    config = parse_config(copy.deepcopy(BASE))
    assert (config.clock_mhz, config.latency, config.addr_width, config.tag_bits,
            config.user_bits, config.error_log_depth) == (350, 7, 32, 4, 10, 16)
    pool = config.pools[0]
    assert (pool.kind, pool.access, pool.lifetime) == ("freelist", "rw", "transient")
    assert config.regions == ()


def test_widths_follow_the_spec():
    config = parse_config({"name": "x", "pools": [
        {"name": "a", "base": 0, "slot_size": 4096, "slots": 1000},
        {"name": "b", "base": 0x1000000, "slot_size": 4, "slots": 2},
        {"name": "c", "base": 0x2000000, "slot_size": 8, "slots": 65536}]})
    assert config.pool_bits == 2            # ceil(log2(3))
    assert config.slot_bits == 16           # ceil(log2(65536))
    assert config.size_bits == 14           # bit length of 4096 (13) + 1
    single = parse_config(copy.deepcopy(BASE))
    assert single.pool_bits == 1 and single.slot_bits == 4


@pytest.mark.parametrize("name", ["event_region", "acquisition", "size_classes", "three_regions"])
def test_shipped_examples_are_valid(name):
    assert name in example_names()
    config = load_config(example_path(name))
    assert config.pools


def test_default_is_the_event_region_example():
    config = load_config()
    assert config.name == "hwalloc_event"
    assert [(p.name, p.base, p.slot_size, p.slots) for p in config.pools] == \
        [("event", 0x80000000, 4096, 64)]
    assert config.tag_bits == 4
    assert [r.name for r in config.regions] == ["init"]


def test_unknown_keys_are_refused():
    assert problems(colour="red") == [
        "colour: unknown key (expected one of: name, clock_mhz, latency, addr_width, tag_bits, "
        "user_bits, error_log_depth, pools, regions, guard)"]
    assert pool_problems(size=3) == [
        "pools[0].size: unknown key (expected one of: name, base, slot_size, slots, kind, "
        "access, lifetime); did you mean slot_size?"]


def test_required_keys():
    assert parse_problems({"pools": BASE["pools"]}) == ["name: is required"]
    assert parse_problems({"name": "x"}) == ["pools: is required"]
    assert pool_problems(base=None) == ["pools[0].base: None is not an integer"]
    pool = dict(BASE["pools"][0])
    del pool["slots"]
    assert problems(pools=[pool]) == ["pools[0].slots: is required"]


def parse_problems(data):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_wrong_types():
    assert problems(latency="7") == ["latency: '7' is not an integer"]
    assert problems(tag_bits=True) == ["tag_bits: True is not an integer"]
    assert problems(clock_mhz="fast") == ["clock_mhz: 'fast' is not a number"]
    assert problems(pools={"a": 1}) == ["pools: expected a list of pools, not dict"]
    assert problems(pools=[5]) == ["pools[0]: expected a mapping, not int"]
    assert problems(name="9lives") == [
        "name: '9lives' is not an identifier (letters, digits and _, not starting with a digit)"]
    assert problems(name="module") == ["name: 'module' is a Verilog keyword"]
    assert parse_problems([1, 2]) == ["config: expected a mapping of keys, not list"]


@pytest.mark.parametrize("key, value, message", [
    ("clock_mhz", 0, "clock_mhz: 0 is out of range (1..1000)"),
    ("clock_mhz", 1001, "clock_mhz: 1001 is out of range (1..1000)"),
    ("latency", 33, f"latency: 33 is out of range ({MIN_LATENCY}..32)"),
    ("addr_width", 11, "addr_width: 11 is out of range (12..64)"),
    ("addr_width", 65, "addr_width: 65 is out of range (12..64)"),
    ("tag_bits", 9, "tag_bits: 9 is out of range (0..8)"),
    ("tag_bits", -1, "tag_bits: -1 is out of range (0..8)"),
    ("user_bits", 0, "user_bits: 0 is out of range (1..32)"),
    ("user_bits", 33, "user_bits: 33 is out of range (1..32)"),
    ("error_log_depth", 1, "error_log_depth: 1 is out of range (2..128)"),
    ("error_log_depth", 256, "error_log_depth: 256 is out of range (2..128)"),
    ("error_log_depth", 24, "error_log_depth: 24 is not a power of two (16 or 32?)"),
])
def test_out_of_range_values(key, value, message):
    assert problems(**{key: value}) == [message]


def test_latency_below_the_architecture_minimum():
    assert problems(latency=MIN_LATENCY - 1) == [
        f"latency: {MIN_LATENCY - 1} is below the architecture's minimum of {MIN_LATENCY} cycles"]
    assert parse_config(dict(BASE, latency=MIN_LATENCY)).latency == MIN_LATENCY


@pytest.mark.parametrize("changes, message", [
    ({"slot_size": 3000}, "pools[0].slot_size: 3000 is not a power of two (2048 or 4096?)"),
    ({"slot_size": 2}, "pools[0].slot_size: 2 is out of range (4..9223372036854775808)"),
    ({"slots": 1}, "pools[0].slots: 1 is out of range (2..65536)"),
    ({"slots": 65537}, "pools[0].slots: 65537 is out of range (2..65536)"),
    ({"base": 0x1010}, "pools[0].base: 0x1010 is not aligned to slot_size 64"),
    ({"base": -64}, "pools[0].base: -64 is out of range (0..18446744073709551615)"),
    ({"kind": "stack"}, "pools[0].kind: 'stack' is not one of: freelist, ring"),
    ({"kind": "ring", "lifetime": "persistent"},
     "pools[0].lifetime: a ring pool cannot be persistent (a ring always reuses its oldest slot)"),
    ({"kind": "ring", "slots": 3}, "pools[0].slots: 3: a ring pool needs at least 4 slots"),
    ({"access": "wo"}, "pools[0].access: 'wo' is not one of: rw, ro"),
    ({"lifetime": "forever"}, "pools[0].lifetime: 'forever' is not one of: transient, persistent"),
    ({"base": 0xFFFFFC40}, "pools[0]: ends at 0x100000040, which does not fit in addr_width 32"),
])
def test_pool_rules(changes, message):
    assert pool_problems(**changes) == [message]


def test_pool_count():
    pool = BASE["pools"][0]
    assert problems(pools=[]) == ["pools: 0 pools given; 1..8 are supported"]
    nine = [dict(pool, name=f"p{i}", base=0x10000 * (i + 1)) for i in range(9)]
    assert problems(pools=nine) == ["pools: 9 pools given; 1..8 are supported"]


def test_overlaps_and_duplicates():
    pools = [{"name": "a", "base": 0x0, "slot_size": 64, "slots": 16},
             {"name": "a", "base": 0x200, "slot_size": 64, "slots": 4}]
    assert problems(pools=pools) == [
        "pools[1].name: 'a' is already used by pools[0]",
        "pools[1]: [0x200, 0x300) overlaps pools[0] [0x0, 0x400)"]
    regions = [{"name": "r", "base": 0x1200, "size": 0x100}]
    assert problems(regions=regions) == [
        "regions[0]: [0x1200, 0x1300) overlaps pools[0] [0x1000, 0x1400)"]
    regions = [{"name": "a", "base": 0x0, "size": 0x100}]
    assert problems(regions=regions) == ["regions[0].name: 'a' is already used by pools[0]"]


def test_region_rules():
    assert problems(regions=[{"name": "r", "base": 0, "size": 0}]) == [
        "regions[0].size: 0 is out of range (1..18446744073709551616)"]
    assert problems(regions=[{"name": "r", "base": 0xFFFFF000, "size": 0x2000}]) == [
        "regions[0]: ends at 0x100001000, which does not fit in addr_width 32"]
    assert problems(regions=[{"name": "r", "base": 0, "size": 16, "mode": 1}]) == [
        "regions[0].mode: unknown key (expected one of: name, base, size, access, lifetime)"]


def test_every_problem_is_reported_at_once():
    found = problems(latency=2, tag_bits=12,
                     pools=[{"name": "a", "base": 3, "slot_size": 48, "slots": 1}])
    assert found == [
        f"latency: 2 is below the architecture's minimum of {MIN_LATENCY} cycles",
        "tag_bits: 12 is out of range (0..8)",
        "pools[0].slot_size: 48 is not a power of two (32 or 64?)",
        "pools[0].slots: 1 is out of range (2..65536)",
    ]


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_a_ring_pool_needs_tags():
    assert problems(tag_bits=0, pools=[dict(BASE["pools"][0], kind="ring")]) == [
        "tag_bits: 0, but pools[0] (a) is a ring pool, which needs tag_bits >= 1 (without tags an "
        "overwritten holder's handle would release the new holder's slot)"]
    ring = parse_config(dict(copy.deepcopy(BASE), tag_bits=1, pools=[dict(BASE["pools"][0], kind="ring")]))
    assert ring.pools[0].kind == "ring"
