"""Configs nobody wrote by hand: random ones, each run against the model.

The shipped examples and the corners of ``test_core_sim.py`` are configs
someone chose; a user's are not. Here a seed draws a whole config (1 to 8
pools of any kind and lifetime, slot sizes, slot counts, bases aligned to
their slot size only, gaps, the top of the address space, tag and user
widths, latency), and the memories' LUT RAM and bank depths (so that small
pools take the block RAM and banked paths too), then runs the shared bench
on the core in Amaranth's simulator: random traffic with every error class,
flushes around requests in flight, ring races, a reset with requests in
flight, and stale handles after it. Every response is checked against the
model.

A longer campaign, outside the suite::

    python tests/test_random_configs.py --first 1000 --count 500

and one of the whole top module under Verilator (``hwalloc verify``, with
read-only pools, regions and the access guard drawn as well)::

    python tests/test_random_configs.py --first 1000 --count 10 --verify /tmp/work
"""

import argparse
import random
import sys
import traceback
from pathlib import Path

import pytest
import yaml

from hwalloc import memory
from hwalloc.config import MIN_LATENCY, MIN_RING_SLOTS, parse_config

from simutil import run_core

#: The seeds the suite runs (a campaign runs any others).
SUITE_SEEDS = range(1, 9)
SLOT_COUNTS = (2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100, 257, 300)


def random_config(seed):
    """A valid config drawn from ``seed``, and the memories' (LUTRAM_DEPTH,
    BANK_DEPTH) to build it with."""
    rng = random.Random(seed)
    tag_bits = rng.choice((0, 1, 2, 3, 4, 8))
    pools, base = [], rng.randrange(64) * 4
    for index in range(rng.randint(1, 8)):
        slot_size = 2 ** rng.randint(2, 8)
        slots = rng.choice(SLOT_COUNTS)
        ring = tag_bits > 0 and slots >= MIN_RING_SLOTS and rng.random() < 0.25
        persistent = not ring and rng.random() < 0.15
        # aligned to the slot size, rarely to the pool's span
        base = -(-base // slot_size) * slot_size + slot_size * rng.randint(0, 5)
        pools.append({"name": f"p{index}", "base": base, "slot_size": slot_size, "slots": slots,
                      "kind": "ring" if ring else "freelist",
                      "lifetime": "persistent" if persistent else "transient"})
        base += slot_size * slots
    addr_width = max(base.bit_length(), rng.choice((12, 16, 20, 32, 40, 64)))
    if rng.random() < 0.3:              # everything moved up to the top of the space
        shift = ((1 << addr_width) - base) // 4096 * 4096
        for pool in pools:
            pool["base"] += shift
    raw = {"name": f"random_{seed}", "latency": rng.choice((MIN_LATENCY, 7, 7, 8, 9, 12)),
           "tag_bits": tag_bits, "user_bits": rng.choice((1, 4, 10)), "addr_width": addr_width,
           "error_log_depth": rng.choice((2, 16)), "pools": pools}
    depths = (rng.choice((memory.LUTRAM_DEPTH, 8, 16)), rng.choice((memory.BANK_DEPTH, 16, 32)))
    return raw, depths


def with_guard(raw, seed):
    """``raw`` with what only the top module uses, drawn from ``seed`` too: read-only
    pools, a region below the first pool, and (one time in two) the access guard."""
    rng = random.Random(f"guard {seed}")
    raw = {**raw, "pools": [{**pool, "access": rng.choice(("rw", "rw", "ro"))} for pool in raw["pools"]]}
    first = min(pool["base"] for pool in raw["pools"])
    if first >= 4 and rng.random() < 0.7:
        size = rng.randrange(1, first + 1)
        raw["regions"] = [{"name": "r", "base": first - size, "size": size,
                           "access": rng.choice(("ro", "rw"))}]
    if rng.random() < 0.5:
        raw["guard"] = {"data_bytes": rng.choice((4, 8, 16, 32, 64)), "id_width": rng.randint(1, 8),
                        "outside": rng.choice(("pass", "refuse"))}
    return raw


def run(seed):
    """Build and run the config of ``seed``; returns the bench (raises on a mismatch)."""
    raw, (lutram_depth, bank_depth) = random_config(seed)
    config = parse_config(raw)
    rng = random.Random(seed)
    saved = memory.LUTRAM_DEPTH, memory.BANK_DEPTH
    memory.LUTRAM_DEPTH, memory.BANK_DEPTH = lutram_depth, bank_depth

    async def body(bench, reset):
        await bench.random_traffic(2500)
        for pool in config.pools:
            if pool.kind == "ring" and rng.random() < 0.5:
                await bench.ring_races(pool.index, 300)
            elif pool.lifetime == "transient" and rng.random() < 0.3:
                await bench.flush_restarts(pool.index, 3)
        await bench.step(None, None, (0, 0))            # a flush in flight at the reset
        await reset(rng.choice((1, 2)))
        await bench.stale_pointers()
        await bench.random_traffic(1000)
        await bench.drain()

    try:
        return config, run_core(config, body, seed=seed)
    finally:
        memory.LUTRAM_DEPTH, memory.BANK_DEPTH = saved


def test_random_configs_are_valid_and_varied():
    """The draw covers what it claims: every kind and lifetime, bases aligned
    to their slot size only, banked and block RAM memories."""
    drawn = [random_config(seed) for seed in range(1, 201)]
    configs = [parse_config(raw) for raw, _ in drawn]
    pools = [pool for config in configs for pool in config.pools]
    assert {pool.kind for pool in pools} == {"freelist", "ring"}
    assert {pool.lifetime for pool in pools} == {"transient", "persistent"}
    assert any(pool.base % (pool.slot_size << pool.slot_bits) for pool in pools)
    assert {len(config.pools) for config in configs} == set(range(1, 9))
    # (and with what the top module adds: valid too, half of them guarded)
    tops = [parse_config(with_guard(raw, seed)) for seed, (raw, _) in enumerate(drawn, start=1)]
    assert 60 < sum(top.guard is not None for top in tops) < 140
    assert any(top.regions for top in tops) and any(p.access == "ro" for top in tops for p in top.pools)
    deepest = [max(pool.slots for pool in config.pools) for config in configs]
    assert any(bank < n for n, (_, (_, bank)) in zip(deepest, drawn, strict=True))
    assert any(lutram < n for n, (_, (lutram, _)) in zip(deepest, drawn, strict=True))


@pytest.mark.parametrize("seed", SUITE_SEEDS)
def test_a_random_config_matches_the_model(seed):
    config, bench = run(seed)
    assert bench.stats.ops > 3500 and bench.stats.grants > 100
    assert bench.stats.latency_min == bench.stats.latency_max == config.latency


def verify(seed, work, ops):
    """``hwalloc verify`` (every Verilator bench) on the config of ``seed`` with
    :func:`with_guard`'s additions, its memories built with the drawn depths
    as :func:`run`'s are (so that small pools take the banked paths under
    Verilator too; campaigns before seed 298 built them at the product's
    depths); returns its exit status."""
    from hwalloc import cli

    plain, (lutram_depth, bank_depth) = random_config(seed)
    raw = with_guard(plain, seed)
    path = Path(work) / f"{raw['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    saved = memory.LUTRAM_DEPTH, memory.BANK_DEPTH
    memory.LUTRAM_DEPTH, memory.BANK_DEPTH = lutram_depth, bank_depth
    try:
        return cli.main(["verify", str(path), "--ops", str(ops), "--quick",
                         "--work", str(path.with_suffix(""))])
    finally:
        memory.LUTRAM_DEPTH, memory.BANK_DEPTH = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--verify", metavar="WORK", help="run hwalloc verify (Verilator, the top "
                        "module with its register interface and guard) on each config, in WORK")
    parser.add_argument("--ops", type=int, default=20000, help="random requests per verify run")
    args = parser.parse_args(argv)
    failed = []
    for seed in range(args.first, args.first + args.count):
        try:
            if args.verify:
                if verify(seed, args.verify, args.ops) != 0:
                    raise RuntimeError(f"hwalloc verify failed on seed {seed}")
                print(f"seed {seed}: ok", flush=True)
            else:
                config, bench = run(seed)
                print(f"seed {seed}: ok ({len(config.pools)} pools, {bench.stats.ops} requests)", flush=True)
        except Exception:               # a mismatch, or a build that failed: report it, go on
            failed.append(seed)
            print(f"seed {seed}: FAILED on {random_config(seed)[0]}", flush=True)
            traceback.print_exc()
    print(f"{args.count - len(failed)} of {args.count} passed" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
