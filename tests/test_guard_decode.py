"""The guard's address side (hwalloc.guard.BurstDecode) in the Amaranth
simulator, burst by burst against the reference model's verdict."""

import random

import pytest
from amaranth.sim import Simulator

from hwalloc.config import parse_config
from hwalloc.guard import DECODE_STAGES, BurstDecode
from hwalloc.model import Burst, Err, burst_span, judge_access, locate

CONFIGS = {
    "small": {
        "name": "g", "tag_bits": 2, "addr_width": 16,
        "pools": [{"name": "a", "base": 0x1000, "slot_size": 64, "slots": 4},
                  {"name": "t", "base": 0x2000, "slot_size": 256, "slots": 3, "access": "ro"}],
        "regions": [{"name": "rom", "base": 0x0, "size": 0x400},
                    {"name": "ram", "base": 0x400, "size": 0x400, "access": "rw"}],
        "guard": {"data_bytes": 8}},
    "refuse_wide": {
        "name": "g", "tag_bits": 4, "addr_width": 20,
        "pools": [{"name": "a", "base": 0x8000, "slot_size": 4096, "slots": 5},
                  {"name": "b", "base": 0x20000, "slot_size": 16, "slots": 9}],
        "regions": [{"name": "rom", "base": 0x0, "size": 0x1000}],
        "guard": {"data_bytes": 64, "outside": "refuse"}},
    "twelve_bits": {
        "name": "g", "tag_bits": 1, "addr_width": 12,
        "pools": [{"name": "a", "base": 0x800, "slot_size": 256, "slots": 8}],
        "regions": [{"name": "io", "base": 0x100, "size": 0x100, "access": "rw"}],
        "guard": {"data_bytes": 64}},
    "eight_pools_64_bits": {
        "name": "g", "tag_bits": 8, "addr_width": 64,
        "pools": [{"name": f"p{i}", "base": 2**64 - 2**40 + i * 2**36, "slot_size": 2**(4 + 3 * i),
                   "slots": 3 + 7 * i, "access": "ro" if i % 3 == 2 else "rw"} for i in range(8)],
        "regions": [{"name": "low", "base": 0, "size": 2**32},
                    {"name": "mid", "base": 2**63, "size": 2**20, "access": "rw"}],
        "guard": {"data_bytes": 16, "id_width": 8}},
    "top_of_space": {
        "name": "g", "tag_bits": 0, "addr_width": 16,
        "pools": [{"name": "a", "base": 0xFF00, "slot_size": 32, "slots": 8}],
        "guard": {"data_bytes": 4}},
}


def address_side(config, addr, length, size, burst, write):
    """The model's verdict with every slot held under the presented tag: only
    the address-side codes remain; and the slot of the first byte."""
    held = [{s: 0 for s in range(pool.slots)} for pool in config.pools]
    err = judge_access(config, held, addr=addr, tag=0, length=length, size=size, burst=burst,
                       write=write)
    pool = slot = 0
    if err == Err.OK:
        first = burst_span(addr, length, size, burst)[0]
        for p in config.pools:
            if p.base <= first < p.end:
                pool, slot = 1 << p.index, (first - p.base) // p.slot_size
    return err, pool, slot


def random_burst(rng, config):
    areas = [*config.pools, *config.regions]
    area = rng.choice(areas)
    near = rng.choice((area.base, area.end, area.base + rng.randrange(area.end - area.base)))
    addr = (near + rng.randrange(-80, 80)) % (1 << config.addr_width)
    burst = rng.choice((Burst.INCR, Burst.INCR, Burst.FIXED, Burst.WRAP, 3))
    size = rng.randrange(min(7, config.guard.max_size + 2))
    length = rng.choice((0, 1, 3, 7, 15, rng.randrange(256), rng.randrange(16)))
    if burst == Burst.WRAP and rng.random() < 0.8:
        addr -= addr % (1 << size)
    return addr, length, size, burst, rng.random() < 0.5


def directed_bursts(config):
    """Each slot end exactly and one beat past, bursts at the top of the space,
    every burst type at a pool's base."""
    size = config.guard.max_size
    top = 1 << config.addr_width
    bursts = [(top - 8, 1, min(3, size), Burst.INCR, 0), (top - 4, 0, 2, Burst.INCR, 1),
              (top - 64, 255, size, Burst.INCR, 0), (0, 255, size, Burst.INCR, 1)]
    for pool in config.pools:
        beats = max(1, pool.slot_size >> size)
        for write in (0, 1):
            bursts += [(pool.base, beats - 1, min(size, pool.offset_bits), Burst.INCR, write),
                       (pool.base, beats, size, Burst.INCR, write),
                       (pool.end - 4, 0, 2, Burst.FIXED, write),
                       (pool.base, 3, 2, Burst.WRAP, write), (pool.base + 4, 2, 2, Burst.WRAP, write),
                       (pool.base, 0, 2, 3, write), (pool.base, 0, size + 1, Burst.INCR, write)]
    return [burst for burst in bursts if burst[1] < 256]          # len is 8 bits


@pytest.mark.parametrize("name", CONFIGS)
def test_decode_matches_the_model(name):
    config = parse_config(CONFIGS[name])
    dut = BurstDecode(config)
    rng = random.Random(name)
    bursts = directed_bursts(config) + [random_burst(rng, config) for _ in range(1500)]
    seen, log_pools = [], []

    async def bench(ctx):
        for k in range(len(bursts) + DECODE_STAGES):
            if k < len(bursts):
                addr, length, size, burst, write = bursts[k]
                ctx.set(dut.valid, 1)
                ctx.set(dut.addr, addr)
                ctx.set(dut.len, length)
                ctx.set(dut.size, size)
                ctx.set(dut.burst, burst)
                ctx.set(dut.write, write)
            else:
                ctx.set(dut.valid, 0)
            await ctx.tick()
            if ctx.get(dut.out_valid):
                # the pool and slot mean something only for a burst OK so far
                ok = ctx.get(dut.out_err) == Err.OK
                seen.append((ctx.get(dut.out_err), ctx.get(dut.out_pool) if ok else 0,
                             ctx.get(dut.out_slot) if ok else 0, ctx.get(dut.out_write)))
                log_pools.append(ctx.get(dut.out_log_pool))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == len(bursts)
    codes = set()
    for burst, got in zip(bursts, seen, strict=True):
        expected = (*address_side(config, *burst), burst[4])
        assert got == expected, f"{burst}: got {got}, model {expected}"
        codes.add(expected[0])
    # a refusal's log names the pool of the burst's address (0xFF: none)
    named = [locate(config, burst[0])[0] for burst in bursts]
    assert log_pools == [0xFF if pool is None else pool for pool in named]
    assert len(set(log_pools)) > 1
    assert codes >= {Err.OK, Err.ACCESS_OUTSIDE, Err.ACCESS_BOUNDS} | (
        {Err.ACCESS_RO} if any(a.access == "ro" for a in (*config.pools, *config.regions)) else set())


def test_decode_stays_within_the_depth_budget(tmp_path):
    """The widest case: 64-bit addresses, 8 pools and two regions."""
    import json
    import subprocess

    from amaranth.back import verilog

    from hwalloc.synth import BUDGET_COUNT, DEPTH_BUDGET, _yosys, logic_depth

    config = parse_config(CONFIGS["eight_pools_64_bits"])
    (tmp_path / "decode.v").write_text(verilog.convert(BurstDecode(config), name="decode", emit_src=False))
    subprocess.run([_yosys(), "-q", "-p", "read_verilog decode.v; synth_xilinx -family xcup -top decode "
                    "-flatten -noiopad -noclkbuf; write_json net.json"], cwd=tmp_path, check=True)
    netlist = json.loads((tmp_path / "net.json").read_text())
    depth, path = logic_depth(netlist, "decode", count_carry=BUDGET_COUNT)
    assert depth <= DEPTH_BUDGET, f"{depth} LUT levels: {path['from']} -> {path['cells']} -> {path['to']}"
