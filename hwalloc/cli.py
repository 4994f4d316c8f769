"""The ``hwalloc`` command.

``hwalloc generate [CONFIG] [--out DIR]``
    Write ``DIR/rtl_out/<name>.v`` (+ the Verilator waiver file) and
    ``DIR/constraints/<name>.xdc``. No CONFIG: the built-in EVENT_REGION example.
``hwalloc verify CONFIG [--ops N] [--seed S] [--junit FILE]``
    Generate the core, build it under Verilator and run the benches against
    the reference model; non-zero exit on any mismatch.
``hwalloc synth CONFIG [--family xcup|xc7]``
    Yosys synth_xilinx on the core: resources and logic depth (an estimate).

Exit status: 0 success, 1 the core disagreed with the model, 2 bad input.
"""

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .config import DEFAULT_EXAMPLE, ConfigError, example_path, load_config
from .emit import generate

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
    from .tb.scoreboard import Stats
    total, mismatches, tests = Stats(), [], []
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            total.merge(Stats.from_dict(entry))
            tests.append(entry["test"])
            if "mismatch" in entry:
                mismatches.append(entry)
    return total, mismatches, tests


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


def cmd_verify(args):
    config = _load(args.config)
    if config is None:
        return 2
    if args.ops < 1:
        print("hwalloc: --ops must be at least 1", file=sys.stderr)
        return 2
    from . import sim

    work = Path(args.work or f"hwalloc_verify/{config.name}")
    work.mkdir(parents=True, exist_ok=True)
    stats_file, progress_file = work / "stats.jsonl", work / "progress.txt"
    log_file, results = work / "sim.log", work / "results.xml"
    for stale in (stats_file, progress_file, results):
        stale.unlink(missing_ok=True)

    started = time.monotonic()
    try:
        build_dir = sim.build(config, cache=args.cache,
                              log=lambda text: print(f"[verify] {text}", file=sys.stderr))
    except RuntimeError as error:
        print(f"hwalloc: the Verilator build of {config.name} failed ({error}); "
              f"its log: {sim.build_log(config, cache=args.cache)}", file=sys.stderr)
        return 1
    print(f"[verify] {config.name}: running the benches (seed {args.seed}, about "
          f"{args.ops} random requests); log in {log_file}", file=sys.stderr)
    stop = threading.Event()
    watcher = threading.Thread(target=_progress, args=(stop, progress_file), daemon=True)
    watcher.start()
    failed = False
    try:
        sim.run_bench(config, args.config or example_path(DEFAULT_EXAMPLE), build_dir,
                      seed=args.seed, ops=args.ops, stats_file=stats_file,
                      progress_file=progress_file, results_xml=results, log_file=log_file)
    except SystemExit:
        failed = True
    finally:
        stop.set()
        watcher.join()
    if args.junit:
        shutil.copyfile(results, args.junit)

    total, mismatches, tests = _read_stats(stats_file)
    print(f"hwalloc verify {config.name}: {total.summary()}")
    again = " ".join(["hwalloc verify"] + ([args.config] if args.config else []) +
                     [f"--seed {args.seed}", f"--ops {args.ops}"])
    print(f"  tests: {', '.join(tests) or 'none'}; seed {args.seed} (reproduce: {again}); "
          f"{time.monotonic() - started:.1f} s")
    if not failed and not mismatches and tests:
        print("PASS: every response matched the reference model at exactly "
              f"L = {config.latency} cycles")
        return 0
    if mismatches:
        first = mismatches[0]
        print(f"FAIL in {first['test']}: first mismatch:\n{first['mismatch']}")
        waves = _waveform(sim, config, args, first["test"], work)
        if waves:
            print(f"  waveform of the failing test: {waves}")
    else:
        print(f"FAIL: the bench did not complete; see {log_file}")
    return 1


_TESTCASES = {"random_traffic": "test_random_traffic_matches_model",
              "reset_in_flight": "test_reset_with_requests_in_flight",
              "tag_wrap": "test_tag_wraps_around", "channels": "test_channels_never_fail",
              "register_map": "test_register_reset_values_and_access_rules",
              "register_alloc_free": "test_register_alloc_and_free_against_model",
              "axi_stalls": "test_stalls_on_every_channel_and_concurrent_masters",
              "native_and_axi": "test_native_and_register_traffic_together",
              "error_log": "test_error_log_overflow_pop_and_clear"}


def _waveform(sim, config, args, test, work):
    """Re-run the failing test, same seed, with tracing on; keep the VCD."""
    print("[verify] re-running the failing test with waveform tracing ...", file=sys.stderr)
    try:
        build_dir = sim.build(config, cache=args.cache, waves=True,
                              log=lambda text: print(f"[verify] {text}", file=sys.stderr))
        try:
            sim.run_bench(config, args.config or example_path(DEFAULT_EXAMPLE), build_dir,
                          testcase=_TESTCASES.get(test), seed=args.seed, ops=args.ops,
                          waves=True, log_file=work / "sim_waves.log")
        except SystemExit:
            pass
        dump = build_dir / "dump.vcd"
        if dump.exists():
            target = work / f"{config.name}_seed{args.seed}.vcd"
            shutil.move(dump, target)
            return target
    except Exception as error:  # the verdict stands; the waveform is a courtesy
        print(f"[verify] no waveform: {error}", file=sys.stderr)
    return None


def cmd_synth(args):
    config = _load(args.config)
    if config is None:
        return 2
    from .synth import DEPTH_BUDGET, logic_depth, resources, synthesize

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
    lut_depth, lut_path = logic_depth(netlist, config.name, count_carry=False)
    report = {"config": config.name, "family": args.family, "clock_mhz": config.clock_mhz,
              "resources": counts, "logic_depth": depth, "depth_budget": DEPTH_BUDGET,
              "worst_path": path, "lut_depth": lut_depth, "worst_lut_path": lut_path,
              "seconds": round(time.monotonic() - started, 1)}
    report_path = out / "reports" / f"{config.name}_{args.family}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{config.name} on {args.family} (Yosys synth_xilinx; an estimate before place and route)")
    for group, count in counts.items():
        print(f"  {group:8} {count:7}")
    print(f"  logic depth: {depth} levels (LUT, MUXF and CARRY cells between sequential endpoints)")
    print(f"  worst path: {path['from']} -> {' -> '.join(path['cells'])} -> {path['to']}")
    print(f"  LUT and MUXF levels alone (carry chains not counted): {lut_depth}, "
          f"{lut_path['from']} -> {lut_path['to']}")
    verdict = "within" if depth <= DEPTH_BUDGET else "ABOVE"
    print(f"  {verdict} the budget of {DEPTH_BUDGET} levels that makes {config.clock_mhz:g} MHz "
          "credible on UltraScale+ (-2); confirm with Vivado's timing report")
    print(f"  report: {report_path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="hwalloc", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"hwalloc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write the Verilog and constraints of a core")
    gen.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    gen.add_argument("--out", default=".", help="output folder (default: current folder)")
    gen.set_defaults(run=cmd_generate)

    ver = sub.add_parser("verify", help="prove a core against the reference model under Verilator")
    ver.add_argument("config", nargs="?", help="YAML config (default: the EVENT_REGION example)")
    ver.add_argument("--ops", type=int, default=100_000,
                     help="random requests in the traffic test (default 100000)")
    ver.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
