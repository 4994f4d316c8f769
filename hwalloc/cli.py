"""The ``hwalloc`` command.

``hwalloc generate [CONFIG] [--out DIR]``
    Write ``DIR/rtl_out/<name>.v`` (+ the Verilator waiver file) and
    ``DIR/constraints/<name>.xdc``. No CONFIG: the built-in EVENT_REGION example.
``hwalloc verify CONFIG [--ops N] [--seed S] [--seeds K] [-j N] [--rtl-coverage] [--junit FILE]``
    Generate the core, build it under Verilator and run the benches against
    the reference model (K seeds, N at a time); non-zero exit on any mismatch.
    Prints the functional coverage bins, and with --rtl-coverage Verilator's
    line and toggle coverage of the Verilog.
``hwalloc synth CONFIG [--family xcup|xc7]``
    Yosys synth_xilinx on the core: resources and logic depth (an estimate).
``hwalloc pnr CONFIG [--device 85k] [--seeds N]``
    Place and route on Lattice ECP5 (synth_ecp5 + nextpnr-ecp5 from PyPI) with
    every port registered: Fmax of ``aclk`` per seed, resources, worst path.
``hwalloc prove CONFIG [--task NAME ...]``
    Formal checks (bounded model checks, k-induction, covers) of a small core
    with SymbiYosys and Yices from PyPI; see :mod:`hwalloc.formal`.

Exit status: 0 success, 1 the core disagreed with the model, 2 bad input.
"""

import argparse
import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__
from .config import DEFAULT_EXAMPLE, ConfigError, example_path, load_config
from .emit import generate
from .pnr import DEVICES
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


def cmd_generate(args):
    config = _load(args.config)
    if config is None:
        return 2
    for path in generate(config, args.out):
        print(f"wrote {path}")
    return 0


def _read_stats(path):
    total, mismatches, tests = Stats(), [], []
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            total.merge(Stats.from_dict(entry))
            tests.append(entry["test"])
            if "mismatch" in entry:
                mismatches.append(entry)
    return total, mismatches, tests


def _print_coverage(config, total):
    from .tb.coverage import report
    lines, holes = report(config, total.coverage)
    print("  functional coverage (bin, hits):")
    print("\n".join(lines))
    print(f"  coverage holes: {', '.join(holes)}" if holes else
          f"  every one of the {len(lines)} coverage bins was hit")
    return holes


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


def _run_seed(sim, config, config_path, build_dir, seed, ops, folder):
    """One seed's benches in ``folder``; returns whether cocotb reported a failure."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("stats.jsonl", "progress.txt", "results.xml", "coverage.dat"):
        (folder / stale).unlink(missing_ok=True)
    try:
        sim.run_bench(config, config_path, build_dir, seed=seed, ops=ops,
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


def cmd_verify(args):
    config = _load(args.config)
    if config is None:
        return 2
    for name, value in (("--ops", args.ops), ("--seeds", args.seeds), ("-j", args.jobs)):
        if value < 1:
            print(f"hwalloc: {name} must be at least 1, not {value}", file=sys.stderr)
            return 2
    from . import sim

    work = Path(args.work or f"hwalloc_verify/{config.name}")
    work.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed + k for k in range(args.seeds)]
    # one seed: its files straight in the work folder, as before; several: a folder each
    folders = {seed: (work if len(seeds) == 1 else work / f"seed{seed}") for seed in seeds}
    config_path = args.config or example_path(DEFAULT_EXAMPLE)

    started = time.monotonic()
    try:
        build_dir = sim.build(config, cache=args.cache, coverage=args.rtl_coverage, quick=args.quick,
                              log=lambda text: print(f"[verify] {text}", file=sys.stderr))
    except RuntimeError as error:
        log = sim.build_log(config, cache=args.cache, coverage=args.rtl_coverage, quick=args.quick)
        print(f"hwalloc: the Verilator build of {config.name} failed ({error}); its log: {log}",
              file=sys.stderr)
        return 1
    jobs = min(args.jobs, len(seeds))
    print(f"[verify] {config.name}: running the benches (seed{'s' if len(seeds) > 1 else ''} "
          f"{seeds[0]}{f'..{seeds[-1]}' if len(seeds) > 1 else ''}, about {args.ops} random "
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
        if _run_seed(sim, config, config_path, build_dir, seed, args.ops, folders[seed]):
            failed.add(seed)
        done.add(seed)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, seeds))
    finally:
        stop.set()
        watcher.join()

    total, mismatches, tests, per_seed = Stats(), [], [], {}
    for seed in seeds:
        stats, seed_mismatches, seed_tests = _read_stats(folders[seed] / "stats.jsonl")
        total.merge(stats)
        per_seed[seed] = (stats, seed_mismatches, seed_tests)
        mismatches += [dict(m, seed=seed) for m in seed_mismatches]
        if not tests:
            tests = seed_tests
    if args.junit:
        shutil.copyfile(folders[seeds[0]] / "results.xml", args.junit)
        for seed in seeds[1:]:
            shutil.copyfile(folders[seed] / "results.xml",
                            Path(args.junit).with_suffix(f".seed{seed}.xml"))

    print(f"hwalloc verify {config.name}: {total.summary()}")
    if len(seeds) > 1:
        for seed, (stats, seed_mismatches, seed_tests) in per_seed.items():
            verdict = ("FAIL" if seed in failed or seed_mismatches or not seed_tests else "pass")
            print(f"  seed {seed}: {verdict}, {stats.ops} ops checked")
    _print_coverage(config, total)
    if args.rtl_coverage:
        _print_rtl_coverage(sim, [folders[seed] / "coverage.dat" for seed in seeds])
    bad = sorted(failed | {m["seed"] for m in mismatches} |
                 {seed for seed, (_, _, seed_tests) in per_seed.items() if not seed_tests})
    first_seed = bad[0] if bad else seeds[0]
    again = " ".join(["hwalloc verify"] + ([args.config] if args.config else []) +
                     [f"--seed {first_seed}", f"--ops {args.ops}"])
    print(f"  tests: {', '.join(tests) or 'none'}; seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(map(str, seeds))} (reproduce one: {again}); "
          f"{time.monotonic() - started:.1f} s")
    if not bad:
        print("PASS: every response matched the reference model at exactly "
              f"L = {config.latency} cycles")
        return 0
    if mismatches:
        first = mismatches[0]
        print(f"FAIL in {first['test']} (seed {first['seed']}): first mismatch:\n{first['mismatch']}")
        waves = _waveform(sim, config, args, first["test"], first["seed"], work)
        if waves:
            print(f"  waveform of the failing test: {waves}")
    else:
        print(f"FAIL: the bench of seed {first_seed} did not complete; see "
              f"{folders[first_seed] / 'sim.log'}")
    return 1


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
              "error_log": "test_error_log_overflow_pop_and_clear"}


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
    print(f"[synth] yosys synth_xilinx -family {args.family} on {config.name} "
          "(the first run compiles Yosys: about a minute) ...", file=sys.stderr)
    try:
        stat, netlist = synthesize(config, family=args.family, work=work)
    except RuntimeError as error:
        print(f"hwalloc: synthesis failed: {error}", file=sys.stderr)
        return 1
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
    print(f"  report: {report_path}")
    return 0


def cmd_pnr(args):
    config = _load(args.config)
    if config is None:
        return 2
    if args.seeds < 1:
        print("hwalloc: --seeds must be at least 1", file=sys.stderr)
        return 2
    from .pnr import core_design, run_pnr

    out = Path(args.out)
    work = out / "reports" / f"{config.name}_ecp5{args.device}"
    started = time.monotonic()

    def log(text):
        print(f"[pnr {time.monotonic() - started:5.0f} s] {text}", file=sys.stderr)
    try:
        report = run_pnr(config.name, work, core_design(config), device=args.device,
                         seeds=range(1, args.seeds + 1), log=log)
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
    print("  core resources: " + ", ".join(f"{k} {v}" for k, v in res.items()))
    if path:
        cells = ", ".join(f"{n} {k}" for k, n in path["logic_cells"].items()) or "no logic"
        print(f"  worst path (median seed): {path['from']} -> {path['to']}: {path['total_ns']} ns "
              f"= {path['logic_ns']} ns cells ({cells}) + {path['routing_ns']} ns routing")
    verdict = "meets" if fmax["median"] >= config.clock_mhz else "does NOT meet"
    print(f"  clock_mhz {config.clock_mhz:g}: the median {verdict} it on this part")
    print(f"  report: {report_path}")
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
    results = formal.prove(config, work, tasks=args.task,
                           log=lambda text: print(text, file=sys.stderr))
    print(f"hwalloc prove {config.name} (SymbiYosys + Yices; logs in {work}):")
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
  synth     estimate resources and logic depth (Yosys synth_xilinx)
              hwalloc synth my_core.yaml --family xcup
  pnr       place and route on Lattice ECP5: the real Fmax
              hwalloc pnr my_core.yaml --seeds 3
  prove     formal checks of a small core (SymbiYosys, Yices)
              hwalloc prove my_small_core.yaml

Without a config, a command uses the shipped EVENT_REGION example
(hwalloc/examples/). Exit status: 0 success, 1 the core disagreed with the
model, 2 bad input. `hwalloc COMMAND --help` lists a command's options."""


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
    ver.add_argument("--junit", help="write a JUnit XML report here")
    ver.add_argument("--work", help="folder for logs, results and waveforms "
                                    "(default hwalloc_verify/<name>)")
    ver.add_argument("--cache", help="Verilator build cache (default ~/.cache/hwalloc "
                                     "or $HWALLOC_CACHE)")
    ver.set_defaults(run=cmd_verify)

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
