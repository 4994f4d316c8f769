"""The ``hwalloc`` command.

``hwalloc generate [CONFIG] [--out DIR]``
    Write ``DIR/rtl_out/<name>.v`` (+ the Verilator waiver file) and
    ``DIR/constraints/<name>.xdc``. No CONFIG: the built-in EVENT_REGION example.
``hwalloc verify CONFIG [--ops N] [--seed S] [--seeds K] [-j N] [--shard I/N] [--tests A,B]
[--rtl-coverage] [--junit FILE] [--result FILE]``
    Generate the core, build it under Verilator and run the benches against
    the reference model (K seeds, N at a time; with --shard, the I-th of N
    slices of them); non-zero exit on any mismatch. Prints the functional
    coverage bins, and with --rtl-coverage Verilator's line and toggle
    coverage of the Verilog; writes a machine-readable result.
``hwalloc report RESULT... [--junit FILE]``
    Merge the results of verify runs (the shards of one regression) into one
    verdict, one coverage table with its holes, and one JUnit file.
``hwalloc synth CONFIG [--family xcup|xc7]``
    Yosys synth_xilinx on the core: resources and logic depth (an estimate).
``hwalloc pnr CONFIG [--device 85k] [--seeds N] [--freq MHZ]``
    Place and route on Lattice ECP5 (synth_ecp5 + nextpnr-ecp5 from PyPI) with
    every port registered: Fmax of ``aclk`` per seed, resources, worst path.
``hwalloc prove CONFIG [--task NAME ...]``
    Formal checks (bounded model checks, k-induction, covers) of a small core
    with SymbiYosys and Yices from PyPI; see :mod:`hwalloc.formal`.

Long commands show their progress and elapsed time on a terminal and stay
quiet without one (a CI log).

Exit status: 0 success, 1 the core disagreed with the model (or a tool failed,
or a merged report found a hole or a missing shard), 2 bad input or a missing
tool (nothing was checked).
"""

import argparse
import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__, results
from ._env import ToolMissing
from ._progress import Progress
from .config import DEFAULT_EXAMPLE, ConfigError, example_path, load_config
from .emit import generate
from .pnr import DEVICES, TARGET_MHZ
from .tb.scoreboard import Stats

__all__ = ["main"]


def _load(path):
    try:
        return load_config(path)
    except ConfigError as error:
        where = path or f"built-in example {DEFAULT_EXAMPLE}"
        print(f"hwalloc: {where}: config refused, nothing written:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _missing(error):
    """A tool the command needs is not there: say which and how to get it."""
    print(f"hwalloc: {error}", file=sys.stderr)
    return 2


def cmd_generate(args):
    config = _load(args.config)
    if config is None:
        return 2
    for path in generate(config, args.out):
        print(f"wrote {path}")
    return 0


def _print_coverage(bins, counts, *, shards=False):
    """The coverage table of ``bins`` (their ``counts``), then its holes;
    ``shards``: merged over the shards of a report."""
    from .tb.coverage import table
    lines, holes = table(bins, counts)
    print(f"  functional coverage{' over every shard' if shards else ''} (bin, hits):")
    print("\n".join(lines))
    print(f"  coverage holes{' (no shard hit them)' if shards else ''}: {', '.join(holes)}" if holes else
          f"  every one of the {len(lines)} coverage bins was hit")


def _progress(stop, progress_file):
    """Show the bench's progress: one rewritten line on a terminal, a line
    every few seconds in a log."""
    tty, last = sys.stderr.isatty(), ""
    while not stop.wait(0.5 if tty else 5):
        try:
            text = progress_file.read_text().strip()
        except OSError:
            continue
        if text and text != last:
            print(f"\r[verify] {text}    " if tty else f"[verify] {text}",
                  end="" if tty else "\n", file=sys.stderr, flush=True)
            last = text
    if last and tty:
        print(file=sys.stderr)


def _run_seed(sim, config, config_path, build_dir, seed, ops, folder, tests=None):
    """One seed's benches (``tests``: their short names, None for all) in
    ``folder``; returns whether cocotb reported a failure."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("stats.jsonl", "progress.txt", "results.xml", "coverage.dat"):
        (folder / stale).unlink(missing_ok=True)
    try:
        sim.run_bench(config, config_path, build_dir, seed=seed, ops=ops,
                      testcase=[_TESTCASES[name] for name in tests] if tests else None,
                      stats_file=folder / "stats.jsonl", progress_file=folder / "progress.txt",
                      results_xml=folder / "results.xml", log_file=folder / "sim.log",
                      test_dir=folder)
    except SystemExit:
        return True
    return False


def _soak_progress(stop, folders, done, total_seeds):
    """One line for a parallel soak: seeds finished, and what the running ones checked."""
    tty, last = sys.stderr.isatty(), ""
    while not stop.wait(0.5 if tty else 10):
        running = []
        for seed, folder in folders.items():
            if seed in done:
                continue
            try:
                text = (folder / "progress.txt").read_text().strip()
            except OSError:
                continue
            running.append(f"seed {seed}: {text}")
        width = 20
        filled = width * len(done) // total_seeds
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {len(done)}/{total_seeds} seeds done"
                + (f"; {running[0]}" if running else "")
                + (f" (+{len(running) - 1} more running)" if len(running) > 1 else ""))
        if line != last:
            print(f"\r[verify] {line}    " if tty else f"[verify] {line}",
                  end="" if tty else "\n", file=sys.stderr, flush=True)
            last = line
    if last and tty:
        print(file=sys.stderr)


def _parse_shard(text):
    """``I/N`` -> (I, N), or None if malformed."""
    index, _, count = (text or "").partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        return None
    return int(index), int(count)


def cmd_verify(args):
    config = _load(args.config)
    if config is None:
        return 2
    for name, value in (("--ops", args.ops), ("--seeds", args.seeds), ("-j", args.jobs)):
        if value < 1:
            print(f"hwalloc: {name} must be at least 1, not {value}", file=sys.stderr)
            return 2
    shard = _parse_shard(args.shard) if args.shard else (1, 1)
    if shard is None:
        print(f"hwalloc: --shard {args.shard}: give I/N, the I-th of N shards, 1 <= I <= N "
              "(for example --shard 3/16)", file=sys.stderr)
        return 2
    all_seeds = [args.seed + k for k in range(args.seeds)]
    seeds = results.shard_seeds(all_seeds, *shard)
    if not seeds:
        print(f"hwalloc: --shard {shard[0]}/{shard[1]} has no seeds: --seeds {args.seeds} makes "
              f"{args.seeds} seeds for {shard[1]} shards; give --seeds {shard[1]} or more",
              file=sys.stderr)
        return 2
    try:
        tests = _selected_tests(config, args.tests)
    except ValueError as error:
        print(f"hwalloc: --tests: {error}", file=sys.stderr)
        return 2
    from . import sim

    work = Path(args.work or f"hwalloc_verify/{config.name}")
    work.mkdir(parents=True, exist_ok=True)
    # one seed: its files straight in the work folder, as before; several: a folder each
    folders = {seed: (work if len(seeds) == 1 else work / f"seed{seed}") for seed in seeds}
    config_path = args.config or example_path(DEFAULT_EXAMPLE)
    result_path = Path(args.result or work / "result.json")

    started = time.monotonic()
    try:
        build_dir = sim.build(config, cache=args.cache, coverage=args.rtl_coverage, quick=args.quick,
                              log=lambda text: print(f"[verify] {text}", file=sys.stderr))
    except ToolMissing as error:
        return _missing(error)
    except RuntimeError as error:
        log = sim.build_log(config, cache=args.cache, coverage=args.rtl_coverage, quick=args.quick)
        print(f"hwalloc: the Verilator build of {config.name} failed ({error}); its log: {log}",
              file=sys.stderr)
        return 1
    jobs = min(args.jobs, len(seeds))
    print(f"[verify] {config.name}: running the benches (seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(map(str, seeds))}"
          f"{f', shard {shard[0]}/{shard[1]}' if shard[1] > 1 else ''}, about {args.ops} random "
          f"requests each, {jobs} at a time); logs in {work}", file=sys.stderr)
    stop, done, failed = threading.Event(), set(), set()
    if len(seeds) == 1:
        watcher = threading.Thread(target=_progress, args=(stop, work / "progress.txt"), daemon=True)
    else:
        watcher = threading.Thread(target=_soak_progress, args=(stop, folders, done, len(seeds)),
                                   daemon=True)
    # progress files of an earlier run must not show before this run writes its own
    for folder in folders.values():
        (folder / "progress.txt").unlink(missing_ok=True)
    watcher.start()

    def one(seed):
        if _run_seed(sim, config, config_path, build_dir, seed, args.ops, folders[seed], tests):
            failed.add(seed)
        done.add(seed)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, seeds))
    finally:
        stop.set()
        watcher.join()

    runs = [results.seed_run(seed, folders[seed], crashed=seed in failed) for seed in seeds]
    total = Stats()
    for run in runs:
        total.merge(Stats.from_dict(run["stats"]))
    from .tb.coverage import expected_bins
    result = {"format": results.FORMAT, "hwalloc": __version__, "config": config.name,
              "config_digest": results.config_digest(config), "config_path": str(config_path),
              "ops": args.ops, "seeds": [all_seeds[0], len(all_seeds)], "shard": list(shard),
              "tests": tests, "expected_bins": expected_bins(config),
              "verdict": "pass" if all(run["verdict"] == "pass" for run in runs) else "fail",
              "seconds": round(time.monotonic() - started, 1), "runs": runs}
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=1) + "\n")
    if args.junit:
        Path(args.junit).write_text(results.junit_xml(config.name, runs))

    print(f"hwalloc verify {config.name}: {total.summary()}")
    if len(seeds) > 1:
        for run in runs:
            print(f"  seed {run['seed']}: {'pass' if run['verdict'] == 'pass' else 'FAIL'}, "
                  f"{run['stats']['ops']} ops checked")
    _print_coverage(result["expected_bins"], total.coverage)
    if args.rtl_coverage:
        _print_rtl_coverage(sim, [folders[seed] / "coverage.dat" for seed in seeds])
    bad = [run for run in runs if run["verdict"] != "pass"]
    first_seed = bad[0]["seed"] if bad else seeds[0]
    again = _reproduce(result, first_seed)
    ran = [run["tests"] for run in runs if run["tests"]]
    print(f"  tests: {', '.join(ran[0]) if ran else 'none'}; seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(map(str, seeds))} (reproduce one: {again}); "
          f"{time.monotonic() - started:.1f} s; result: {result_path}")
    if not bad:
        print("PASS: every response matched the reference model at exactly "
              f"L = {config.latency} cycles")
        return 0
    first = next((run for run in bad if run["mismatch"]), None)
    if first:
        mismatch = first["mismatch"]
        print(f"FAIL in {mismatch['test']} (seed {first['seed']}): first mismatch:\n{mismatch['text']}")
        waves = _waveform(sim, config, args, mismatch["test"], first["seed"], work)
        if waves:
            print(f"  waveform of the failing test: {waves}")
    else:
        print(f"FAIL: the bench of seed {first_seed} did not complete; see "
              f"{folders[first_seed] / 'sim.log'}")
    return 1


def _reproduce(result, seed):
    """The command that re-runs one seed of a result."""
    words = ["hwalloc verify", result["config_path"], f"--seed {seed}", f"--ops {result['ops']}"]
    if result["tests"]:
        words.append(f"--tests {','.join(result['tests'])}")
    return " ".join(words)


def cmd_report(args):
    try:
        merged = results.merge(results.load(args.results))
    except results.ResultError as error:
        print(f"hwalloc report: {error}", file=sys.stderr)
        return 2
    runs = merged.runs
    shards = f"{len(merged.results)} of {merged.shards} shard{'s' if merged.shards > 1 else ''}"
    print(f"hwalloc report {merged.config}: {shards}, {len(runs)} seed{'s' if len(runs) > 1 else ''} "
          f"of about {merged.ops_per_seed} random requests each")
    print(f"  {merged.stats.summary()}")
    for result in merged.results:
        index, count = result["shard"]
        bad = [run for run in result["runs"] if run["verdict"] != "pass"]
        ops = sum(run["stats"]["ops"] for run in result["runs"])
        print(f"  shard {index}/{count}: {'FAIL' if bad else 'pass'}, seed"
              f"{'s' if len(result['runs']) > 1 else ''} "
              f"{', '.join(str(run['seed']) for run in result['runs'])}, {ops} ops checked "
              f"({result['file']})")
        for run in bad:
            what = (f"first mismatch in {run['mismatch']['test']}: "
                    f"{run['mismatch']['text'].splitlines()[0]}" if run["mismatch"] else
                    "failed: " + next((f"{c['name']}: {c['failure']['message'].splitlines()[0]}"
                                       for c in run["testcases"] if "failure" in c and
                                       c["failure"]["message"]), "the bench did not complete"))
            print(f"    seed {run['seed']} {what}\n      reproduce: {_reproduce(result, run['seed'])}"
                  f"\n      log: {run['log']}")
    _print_coverage(merged.bins, merged.stats.coverage, shards=True)
    if merged.results[0]["tests"]:
        print(f"  (only the benches {', '.join(merged.results[0]['tests'])} ran: the bins of "
              "the others stay empty)")
    if args.junit:
        Path(args.junit).write_text(results.junit_xml(merged.config, runs))
        print(f"  JUnit: {args.junit}")
    problems, failed, holes = [], merged.failed, merged.holes
    if failed:
        problems.append(f"{len(failed)} seed{'s' if len(failed) > 1 else ''} failed "
                        f"({', '.join(str(run['seed']) for run in failed)})")
    if merged.missing:
        problems.append(f"no result for shard{'s' if len(merged.missing) > 1 else ''} "
                        f"{', '.join(map(str, merged.missing))} of {merged.shards}")
    if holes:
        problems.append(f"{len(holes)} coverage bin{'s' if len(holes) > 1 else ''} never hit")
    if problems:
        print(f"FAIL: {'; '.join(problems)}")
        return 1
    print(f"PASS: {merged.stats.ops} operations checked over {len(runs)} seeds, every response as "
          "the reference model gave it, every coverage bin hit")
    return 0


def _print_rtl_coverage(sim, dats):
    """Verilator's line and toggle coverage of the generated Verilog, all seeds merged."""
    dats = [d for d in dats if d.exists()]
    if not dats:
        print("  RTL coverage: no coverage.dat was written")
        return
    for kind, (covered, total) in sim.rtl_coverage(dats).items():
        print(f"  RTL {kind} coverage (Verilator): {covered}/{total} points "
              f"({100 * covered / max(total, 1):.1f} %)")
    print(f"  raw data: {', '.join(map(str, dats))}")


_TESTCASES = {"random_traffic": "test_random_traffic_matches_model",
              "reset_in_flight": "test_reset_with_requests_in_flight",
              "tag_wrap": "test_tag_wraps_around", "channels": "test_channels_never_fail",
              "ring": "test_ring_pools",
              "register_map": "test_register_reset_values_and_access_rules",
              "register_alloc_free": "test_register_alloc_and_free_against_model",
              "axi_stalls": "test_stalls_on_every_channel_and_concurrent_masters",
              "native_and_axi": "test_native_and_register_traffic_together",
              "irq_set_wins": "test_interrupt_raised_as_it_is_cleared_survives",
              "reads_at_bus_speed": "test_register_reads_at_bus_speed",
              "writes_at_bus_speed": "test_register_writes_at_bus_speed",
              "round_robin": "test_round_robin_beside_a_saturated_native_side",
              "error_log": "test_error_log_overflow_pop_and_clear",
              "guard_random": "test_guard_random", "guard_line_rate": "test_guard_line_rate",
              "guard_lock": "test_guard_lock"}


def _selected_tests(config, text):
    """``--tests a,b``: the benches' short names, checked (None: all of them);
    raises ValueError naming the choice if one is unknown."""
    if not text:
        return None
    known = [name for name in _TESTCASES if config.guard is not None or not name.startswith("guard_")]
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"unknown test {', '.join(unknown) or '(none given)'}; the benches of "
                         f"{config.name} are {', '.join(known)}")
    return list(dict.fromkeys(names))


def _waveform(sim, config, args, test, seed, work):
    """Re-run the failing test, same seed, with tracing on; keep the VCD."""
    print("[verify] re-running the failing test with waveform tracing ...", file=sys.stderr)
    try:
        build_dir = sim.build(config, cache=args.cache, waves=True, quick=args.quick,
                              log=lambda text: print(f"[verify] {text}", file=sys.stderr))
        try:
            sim.run_bench(config, args.config or example_path(DEFAULT_EXAMPLE), build_dir,
                          testcase=_TESTCASES.get(test), seed=seed, ops=args.ops,
                          waves=True, log_file=work / "sim_waves.log")
        except SystemExit:
            pass
        dump = build_dir / "dump.vcd"
        if dump.exists():
            target = work / f"{config.name}_seed{seed}.vcd"
            shutil.move(dump, target)
            return target
    except Exception as error:  # the verdict stands; the waveform is a courtesy
        print(f"[verify] no waveform: {error}", file=sys.stderr)
    return None


def cmd_synth(args):
    config = _load(args.config)
    if config is None:
        return 2
    from .synth import (BUDGET_COUNT, DEPTH_BUDGET, LEVEL_NS, PATH_NS, depth_by_block, levels_that_fit,
                        logic_depth, ram_outputs_to_logic, resources, synthesize)

    out = Path(args.out)
    work = out / "reports" / f"{config.name}_{args.family}"
    started = time.monotonic()
    with Progress("synth") as progress:
        progress(f"yosys synth_xilinx -family {args.family} on {config.name} "
                 "(its first run compiles Yosys: about a minute) ...")
        try:
            stat, netlist = synthesize(config, family=args.family, work=work)
        except ToolMissing as error:
            return _missing(error)
        except RuntimeError as error:
            print(f"hwalloc: synthesis failed: {error}", file=sys.stderr)
            return 1
        progress("synthesized; reading the netlist (resources, logic depth, block RAM outputs) ...")
        counts = resources(stat, config.name)
        depth, path = logic_depth(netlist, config.name)
        lut_depth, lut_path = logic_depth(netlist, config.name, count_carry=BUDGET_COUNT)
        blocks = depth_by_block(netlist, config.name)
        ram_to_logic = ram_outputs_to_logic(netlist, config.name)
    report = {"config": config.name, "family": args.family, "clock_mhz": config.clock_mhz,
              "resources": counts, "logic_depth": depth, "depth_budget": DEPTH_BUDGET,
              "worst_path": path, "lut_depth": lut_depth, "worst_lut_path": lut_path,
              "lut_depth_by_block": blocks,
              "ram_outputs_to_logic": [f"{net} -> {cell}" for net, cell in ram_to_logic],
              "levels_that_fit": levels_that_fit(config.clock_mhz, args.family),
              "seconds": round(time.monotonic() - started, 1)}
    report_path = out / "reports" / f"{config.name}_{args.family}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{config.name} on {args.family} (Yosys synth_xilinx; an estimate before place and route)")
    for group, count in counts.items():
        print(f"  {group:8} {count:7}")
    print(f"  logic depth: {depth} levels (LUT, MUXF and CARRY cells between sequential endpoints)")
    print(f"  worst path: {path['from']} -> {' -> '.join(path['cells'])} -> {path['to']}")
    print(f"  LUT levels (LUT and MUXF cells, a carry chain as one): {lut_depth}, "
          f"{lut_path['from']} -> {' -> '.join(lut_path['cells'])} -> {lut_path['to']}")
    names = {"core": "allocation core", "regs": "register file", "axil": "AXI adapter",
             "guard": "access guard", "top": "top"}
    print("  LUT levels by block: " +
          ", ".join(f"{names[block]} {levels}" for block, levels in blocks.items()))
    if ram_to_logic:
        print(f"  block RAM outputs feeding logic with the RAM's output register off: {len(ram_to_logic)}, "
              + ", ".join(f"{net} -> {cell}" for net, cell in ram_to_logic[:4]))
    else:
        print("  no block RAM output feeds logic: every read lands in a register first")
    within = lut_depth <= DEPTH_BUDGET and not ram_to_logic
    print(f"  {'within' if within else 'ABOVE'} the design budget: {DEPTH_BUDGET} LUT levels, no block RAM "
          "output into logic (350 MHz on UltraScale+ -2)")
    fit = levels_that_fit(config.clock_mhz, args.family)
    credible = lut_depth <= fit and not ram_to_logic
    print(f"  clock_mhz {config.clock_mhz:g} on {args.family}: paths of up to {fit} LUT levels fit "
          f"(rule: {PATH_NS[args.family]} ns fixed + {LEVEL_NS[args.family]} ns a level, -2 grade)"
          f"{'' if not ram_to_logic else ', and a block RAM read straight into logic does not'} "
          f"-> {'credible' if credible else 'NOT credible'}; an estimate before place and "
          "route: confirm with Vivado's timing report (hwalloc pnr places and routes on ECP5)")
    print(f"  report: {report_path} ({report['seconds']} s)")
    return 0


def cmd_pnr(args):
    config = _load(args.config)
    if config is None:
        return 2
    if args.seeds < 1:
        print("hwalloc: --seeds must be at least 1", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("hwalloc: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.freq <= 0:
        print(f"hwalloc: --freq must be above 0 MHz, not {args.freq:g}", file=sys.stderr)
        return 2
    from .pnr import core_design, run_pnr

    out = Path(args.out)
    work = out / "reports" / f"{config.name}_ecp5{args.device}"
    started = time.monotonic()
    with Progress("pnr") as progress:
        try:
            report = run_pnr(config.name, work, core_design(config), device=args.device,
                             seeds=range(1, args.seeds + 1), jobs=args.jobs, log=progress,
                             freq=args.freq)
        except ToolMissing as error:
            return _missing(error)
        except RuntimeError as error:
            print(f"hwalloc: place and route failed: {error}", file=sys.stderr)
            return 1
    report["seconds"] = round(time.monotonic() - started, 1)
    report_path = out / "reports" / f"{config.name}_ecp5{args.device}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    fmax, res, path = report["fmax_mhz"], report["resources"], report["worst_path"]
    print(f"{config.name} on {report['device']} ({report['flow']}, every port registered; "
          f"place and route, not an estimate)")
    print(f"  Fmax of aclk: median {fmax['median']} MHz (min {fmax['min']}, max {fmax['max']}) over "
          f"{len(report['seeds'])} seed(s): " + ", ".join(f"{r['fmax_mhz']}" for r in report["seeds"]))
    if fmax["max"] >= args.freq:
        print(f"  (the router was asked for {args.freq:g} MHz and met it: these are floors, "
              f"not the most the part gets; the default --freq {TARGET_MHZ} measures that)")
    print("  core resources: " + ", ".join(f"{k} {v}" for k, v in res.items()))
    if path:
        cells = ", ".join(f"{n} {k}" for k, n in path["logic_cells"].items()) or "no logic"
        print(f"  worst path (median seed): {path['from']} -> {path['to']}: {path['total_ns']} ns "
              f"= {path['logic_ns']} ns cells ({cells}) + {path['routing_ns']} ns routing")
    verdict = "meets" if fmax["median"] >= config.clock_mhz else "does NOT meet"
    print(f"  clock_mhz {config.clock_mhz:g}: the median {verdict} it on this part")
    print(f"  report: {report_path} ({report['seconds']} s)")
    return 0


def cmd_prove(args):
    config = _load(args.config)
    if config is None:
        return 2
    from . import formal
    problems = formal.check_provable(config)
    tasks = formal.TASKS + (formal.GUARD_TASKS if config.guard is not None else [])
    unknown = sorted(set(args.task or ()) - {t.name for t in tasks})
    if unknown:
        problems.append(f"--task: unknown {', '.join(unknown)}; the tasks are "
                        f"{', '.join(t.name for t in tasks)}")
    if problems:
        print(f"hwalloc: {config.name}: cannot prove this config:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    work = Path(args.work or f"hwalloc_prove/{config.name}")
    started = time.monotonic()
    with Progress("prove") as progress:
        try:
            results = formal.prove(config, work, tasks=args.task,
                                   log=lambda text: progress(text.removeprefix("[prove] ")))
        except ToolMissing as error:
            return _missing(error)
    print(f"hwalloc prove {config.name} (SymbiYosys + Yices; logs in {work}; "
          f"{time.monotonic() - started:.0f} s):")
    print(formal.table(results))
    verdict = formal.verdict(results)
    print(verdict[1])
    return 0 if verdict[0] else 1


DESCRIPTION = """\
hwalloc generates deterministic hardware memory allocators as IP cores: pools
of fixed-size slots granted in exactly L clock cycles, every time, with bad
releases (double frees, stale pointers) caught, logged and raised; an AXI4-Lite
register interface; optionally an access guard that checks every DMA burst.
From one YAML config it writes Verilog, constraints and the software
collateral, and proves the core against its reference model."""

EPILOG = """\
commands, with an example each:
  generate  write the Verilog, constraints, C header, driver and IP-XACT
              hwalloc generate my_core.yaml --out build/
  verify    run the cocotb benches under Verilator against the reference model
              hwalloc verify my_core.yaml --ops 100000 --seeds 4 -j 2
  report    merge the results of sharded verify runs (one per CI runner)
              hwalloc verify my_core.yaml --seeds 16 --shard 3/16 --result r3.json
              hwalloc report r*.json --junit verify.xml
  synth     estimate resources and logic depth (Yosys synth_xilinx)
              hwalloc synth my_core.yaml --family xcup
  pnr       place and route on Lattice ECP5: the real Fmax
              hwalloc pnr my_core.yaml --seeds 3
  prove     formal checks of a small core (SymbiYosys, Yices)
              hwalloc prove my_small_core.yaml

Without a config, a command uses the shipped EVENT_REGION example
(hwalloc/examples/). On a terminal the long commands show what they are doing
and for how long; in a CI log they print only their results. Exit status: 0
success, 1 the core disagreed with the model, 2 bad input or a missing tool.
`hwalloc COMMAND --help` lists a command's options."""


def build_parser():
    parser = argparse.ArgumentParser(prog="hwalloc", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hwalloc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="write the Verilog and constraints of a core")
    gen.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    gen.add_argument("--out", default=".", help="output folder (default: current folder)")
    gen.set_defaults(run=cmd_generate)

    ver = sub.add_parser("verify", help="prove a core against the reference model under Verilator")
    ver.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    ver.add_argument("--ops", type=int, default=100_000,
                     help="random requests in the traffic test (default 100000)")
    ver.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ver.add_argument("--seeds", type=int, default=1,
                     help="run this many seeds, --seed, --seed+1, ... (default 1)")
    ver.add_argument("-j", "--jobs", type=int, default=1,
                     help="seeds to run at once, one simulator process each (default 1)")
    ver.add_argument("--rtl-coverage", action="store_true",
                     help="build with Verilator line and toggle coverage and report it")
    ver.add_argument("--quick", action="store_true",
                     help="compile the simulator's C++ unoptimised: a build in a fraction of the "
                          "time, a slower run (for short runs of a few thousand requests)")
    ver.add_argument("--tests", metavar="NAME,...",
                     help="run only these benches (default all): "
                          + ", ".join(_TESTCASES) + " (guard_* on guarded configs)")
    ver.add_argument("--shard", metavar="I/N",
                     help="run the I-th of N disjoint slices of the seeds (every N-th seed from "
                          "the I-th on); hwalloc report merges the N results")
    ver.add_argument("--result", metavar="FILE",
                     help="write the machine-readable result here (default <work>/result.json)")
    ver.add_argument("--junit", help="write a JUnit XML report here")
    ver.add_argument("--work", help="folder for logs, results and waveforms "
                                    "(default hwalloc_verify/<name>)")
    ver.add_argument("--cache", help="Verilator build cache (default ~/.cache/hwalloc "
                                     "or $HWALLOC_CACHE)")
    ver.set_defaults(run=cmd_verify)

    rep = sub.add_parser("report", help="merge the results of sharded verify runs into one verdict")
    rep.add_argument("results", nargs="+", metavar="RESULT",
                     help="result files of hwalloc verify, or folders holding them")
    rep.add_argument("--junit", help="write one JUnit XML file of every shard here")
    rep.set_defaults(run=cmd_report)

    syn = sub.add_parser("synth", help="estimate resources and logic depth with Yosys synth_xilinx")
    syn.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    syn.add_argument("--family", default="xcup", choices=("xcup", "xc7"),
                     help="Xilinx family (default xcup: UltraScale+)")
    syn.add_argument("--out", default=".", help="folder for reports/ (default: current folder)")
    syn.set_defaults(run=cmd_synth)

    pnr = sub.add_parser("pnr", help="place and route on Lattice ECP5 (nextpnr): the real Fmax")
    pnr.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    pnr.add_argument("--device", default="85k", choices=DEVICES,
                     help="ECP5 device, LFE5U-<device>F, speed 8 (default 85k)")
    pnr.add_argument("--seeds", type=int, default=3, help="placement seeds 1..N (default 3)")
    pnr.add_argument("-j", "--jobs", type=int, default=1,
                     help="seeds placed at once, a nextpnr process each (default 1)")
    pnr.add_argument("--freq", type=float, default=TARGET_MHZ, metavar="MHZ",
                     help=f"clock asked of the router (default {TARGET_MHZ}: above what the part reaches, "
                          "so that it works for the most it can get; lower is quicker, and the Fmax then "
                          "a floor)")
    pnr.add_argument("--out", default=".", help="folder for reports/ (default: current folder)")
    pnr.set_defaults(run=cmd_pnr)

    prv = sub.add_parser("prove", help="formal checks of a small core (SymbiYosys, Yices)")
    prv.add_argument("config", nargs="?", help="YAML config (at most "
                     "24 slots in all and L <= 16; default: the EVENT_REGION example, which is too big)")
    prv.add_argument("--task", action="append", help="run only this task (repeatable)")
    prv.add_argument("--work", help="folder for the runs (default hwalloc_prove/<name>)")
    prv.set_defaults(run=cmd_prove)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
