"""Measure how hwalloc scales, beside a deliberately simple bitmap allocator.

    pip install -e '.[bench]'
    python bench/sweep.py [--quick]      # measure, print, write docs/benchmarks.*
    python bench/sweep.py --plot         # redraw the plots from docs/benchmarks.json

Prints a Markdown table and writes docs/benchmarks.md, the raw rows as
docs/benchmarks.json, and PNG plots (docs/benchmarks_*.png): for each config, Yosys
resources (xcup) and logic depth (every cell; LUT levels as the budget counts
them), generation time,
Verilator build time and simulation speed of the native cocotb bench; and for
the same slot counts, the bitmap + find-first-free baseline's resources and
depth. Figures, not tests: the machines are shared and timings are noisy.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from hwalloc import sim
from hwalloc.config import MIN_LATENCY, parse_config
from hwalloc.emit import emit_verilog
from hwalloc.synth import BUDGET_COUNT, DEPTH_BUDGET, logic_depth, resources, synthesize

sys.path.insert(0, str(Path(__file__).parent))
from baseline import BitmapAllocator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASELINE_TIMEOUT = 300
#: A 65536-bit bitmap with its find-first-free tree took more than 9 GB and 10
#: minutes in Amaranth's elaboration alone before it was stopped.
BASELINE_MAX_SLOTS = 4096


def config(name, *, slots=(1024,), tag_bits=4, latency=7, kinds=None):
    pools = [{"name": f"p{i}", "base": 0x1000_0000 * (i + 1), "slot_size": 64, "slots": n,
              "kind": kinds[i] if kinds else "freelist"}
             for i, n in enumerate(slots)]
    return parse_config({"name": name, "tag_bits": tag_bits, "latency": latency, "pools": pools})


def sweep(quick):
    points = []
    for n in ((16, 1024) if quick else (16, 256, 1024, 4096, 16384, 65536)):
        points.append((f"slots {n}", config(f"s{n}", slots=(n,)), n))
    if not quick:
        for p in (3, 8):
            points.append((f"{p} pools × 256", config(f"p{p}", slots=(256,) * p), None))
        for t in (0, 8):
            points.append((f"tags {t}", config(f"t{t}", tag_bits=t), None))
        for latency in (MIN_LATENCY, 16):
            points.append((f"L {latency}", config(f"l{latency}", latency=latency), None))
        for n in (16, 1024, 65536):
            points.append((f"ring {n}", config(f"r{n}", slots=(n,), kinds=("ring",)), None))
        points.append(("8 pools × 256, 4 rings",
                       config("p8r", slots=(256,) * 8, kinds=("freelist", "ring") * 4), None))
    return points


#: The configs whose cost of the flush port is measured: the same config built
#: with it and without it (``HwallocTop(flush=False)``, a measuring knob only).
FLUSH_POINTS = (("1 pool × 1024", (1024,), None), ("1 ring × 1024", (1024,), ("ring",)),
                ("8 pools × 256", (256,) * 8, None))


def measure_flush_cost(work):
    from functools import partial
    from unittest import mock

    from hwalloc import emit
    from hwalloc.core import HwallocTop
    rows = []
    for label, slots, kinds in FLUSH_POINTS:
        cfg = config("fc" + str(len(rows)), slots=slots, kinds=kinds)
        counts = {}
        for flush in (True, False):
            with mock.patch.object(emit, "HwallocTop", partial(HwallocTop, flush=flush)):
                stat, _ = synthesize(cfg, work=work / f"{cfg.name}_{flush}")
            counts[flush] = resources(stat, cfg.name)
        row = {"point": label}
        for name, key in (("LUT", "LUT"), ("FF", "FF"), ("LUTRAM", "LUTRAM")):
            row[f"{name} with"], row[f"{name} without"] = counts[True][key], counts[False][key]
            row[f"{name} cost"] = counts[True][key] - counts[False][key]
        ram = {flush: counts[flush]["RAMB36"] + counts[flush]["RAMB18"] / 2 for flush in counts}
        row["RAMB36 eq. with"], row["RAMB36 eq. without"] = ram[True], ram[False]
        rows.append(row)
    return rows


FLUSH_COLUMNS = ("point", "LUT with", "LUT without", "LUT cost", "FF with", "FF without", "FF cost",
                 "LUTRAM with", "LUTRAM without", "RAMB36 eq. with", "RAMB36 eq. without")


def measure(label, cfg, work):
    row = {"point": label}
    started = time.monotonic()
    emit_verilog(cfg)
    row["generate s"] = time.monotonic() - started
    stat, net = synthesize(cfg, work=work / "synth")
    counts = resources(stat, cfg.name)
    row.update({"LUT": counts["LUT"], "FF": counts["FF"], "LUTRAM": counts["LUTRAM"],
                "RAMB36 eq.": counts["RAMB36"] + counts["RAMB18"] / 2,
                "depth": logic_depth(net, cfg.name)[0],
                "LUT levels": logic_depth(net, cfg.name, count_carry=BUDGET_COUNT)[0]})
    started = time.monotonic()
    build_dir = sim.build(cfg, cache=work / "sim", log=lambda text: None)
    row["Verilator build s"] = time.monotonic() - started
    path = work / f"{cfg.name}.yaml"
    import yaml
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    stats = work / "stats.jsonl"
    started = time.monotonic()
    sim.run_bench(cfg, path, build_dir, testcase="test_random_traffic_matches_model", ops=12000,
                  stats_file=stats, log_file=work / "sim.log", results_xml=work / "results.xml")
    elapsed = time.monotonic() - started
    import json
    cycles = json.loads(stats.read_text().splitlines()[-1])["cycles"]
    row["sim cycles/s"] = cycles / elapsed
    return row


def measure_baseline(slots, work):
    work.mkdir(parents=True, exist_ok=True)
    top = BitmapAllocator(slots)
    (work / "bitmap.v").write_text(verilog.convert(top, name="bitmap", emit_src=False))
    script = ("read_verilog bitmap.v; synth_xilinx -family xcup -top bitmap -flatten -noiopad "
              "-noclkbuf; tee -q -o stat.json stat -json; write_json net.json")
    from hwalloc.synth import _yosys
    try:
        subprocess.run([_yosys(), "-q", "-p", script], cwd=work, capture_output=True,
                       timeout=BASELINE_TIMEOUT, check=True)
    except subprocess.TimeoutExpired:
        return {"point": f"bitmap {slots}", "LUT": f"> {BASELINE_TIMEOUT} s of Yosys"}
    import json
    stat = json.loads((work / "stat.json").read_text())
    net = json.loads((work / "net.json").read_text())
    counts = resources(stat, "bitmap")
    return {"point": f"bitmap {slots}", "LUT": counts["LUT"], "FF": counts["FF"],
            "LUTRAM": counts["LUTRAM"], "RAMB36 eq.": counts["RAMB36"] + counts["RAMB18"] / 2,
            "depth": logic_depth(net, "bitmap")[0],
            "LUT levels": logic_depth(net, "bitmap", count_carry=BUDGET_COUNT)[0]}


COLUMNS = ("point", "LUT", "FF", "LUTRAM", "RAMB36 eq.", "depth", "LUT levels", "generate s",
           "Verilator build s", "sim cycles/s")


def table(rows, columns=COLUMNS):
    def fmt(value):
        if isinstance(value, float):
            return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"
        return "—" if value is None else str(value)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _slots(point):
    """The slot count of a 'slots N' or 'bitmap N' point, or None."""
    head, _, tail = point.removesuffix(" *").partition(" ")
    return int(tail) if head in ("slots", "bitmap") and tail.isdigit() else None


def plot(rows, baseline, out):
    """PNG plots of how resources, depth and simulation speed scale with slots."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    def series(source, column):
        points = [(_slots(r["point"]), r.get(column)) for r in source]
        return [(n, v) for n, v in points if n is not None and isinstance(v, (int, float))]

    written = []
    figures = [
        ("resources", "LUTs and flip-flops against slots per pool (one pool, xcup)",
         [("hwalloc LUT", rows, "LUT", "o-"), ("hwalloc FF", rows, "FF", "s-"),
          ("bitmap LUT", baseline, "LUT", "o--"), ("bitmap FF", baseline, "FF", "s--")], "cells"),
        ("depth", "Logic depth against slots per pool (xcup)",
         [("hwalloc, every cell", rows, "depth", "o-"),
          ("hwalloc, LUT levels", rows, "LUT levels", "s-"),
          ("bitmap, every cell", baseline, "depth", "o--"),
          ("bitmap, LUT levels", baseline, "LUT levels", "s--")],
         "levels"),
        ("simulation", "Verilator simulation speed of the cocotb bench",
         [("hwalloc", rows, "sim cycles/s", "o-")], "cycles per second"),
    ]
    for name, title, lines, ylabel in figures:
        figure, axes = pyplot.subplots(figsize=(6.4, 4.0))
        for label, source, column, style in lines:
            data = series(source, column)
            if data:
                axes.plot([n for n, _ in data], [v for _, v in data], style, label=label)
        axes.set_xscale("log", base=2)
        if name == "resources":
            axes.set_yscale("log")
        axes.set_xlabel("slots per pool")
        axes.set_ylabel(ylabel)
        axes.set_title(title, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = out / f"benchmarks_{name}.png"
        # no timestamp in the file, so a redraw of the same data gives the same bytes
        figure.savefig(path, dpi=100, metadata={"Software": None})
        pyplot.close(figure)
        written.append(path)
    return written


def main(argv):
    import json
    docs = ROOT / "docs"
    if "--plot" in argv:
        data = json.loads((docs / "benchmarks.json").read_text())
        for path in plot(data["hwalloc"], data["baseline"], docs):
            print(f"wrote {path}")
        return
    quick = "--quick" in argv
    rows, baseline = [], []
    # The baseline's code does not change between runs: a point whose Yosys run
    # times out on a loaded machine keeps its last measured figures, marked so.
    previous_rows = {}
    if (docs / "benchmarks.json").exists():
        previous_rows = {row["point"]: row for row in
                         json.loads((docs / "benchmarks.json").read_text())["baseline"]}
    # not under /tmp (YoWASP maps its own there), and in a folder git ignores
    (ROOT / "build").mkdir(exist_ok=True)
    flush_rows = []
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        tmp = Path(tmp)
        if not quick:
            print("measuring the flush port's cost ...", file=sys.stderr)
            flush_rows = measure_flush_cost(tmp / "flush")
        for label, cfg, slots in sweep(quick):
            print(f"measuring {label} ...", file=sys.stderr)
            rows.append(measure(label, cfg, tmp / cfg.name))
            if slots is not None and slots <= BASELINE_MAX_SLOTS:
                row = measure_baseline(slots, tmp / f"bitmap{slots}")
                old = previous_rows.get(row["point"]) or previous_rows.get(row["point"] + " *")
                if isinstance(row["LUT"], str) and old and isinstance(old.get("LUT"), int):
                    row = dict(old, point=row["point"] + " *")
                baseline.append(row)
            elif slots is not None:
                baseline.append({"point": f"bitmap {slots}",
                                 "LUT": "not built: past the baseline's 4096-slot limit "
                                        "(at 65536 its elaboration passed 9 GB)"})
    text = ("# Benchmarks\n\nGenerated by `python bench/sweep.py` on a 2-core machine "
            f"(Yosys synth_xilinx -family xcup; {os.cpu_count()} cores seen). Resources are "
            "Yosys' estimate before place and route; `depth` counts every LUT, MUXF and "
            "CARRY4 between sequential endpoints, `LUT levels` counts LUT and MUXF cells with "
            f"a carry chain as one level (the figure the budget of {DEPTH_BUDGET} judges, "
            "`hwalloc synth`). Times are wall-clock and noisy.\n\n## hwalloc\n\n" + table(rows) +
            "\n\n## Baseline: bitmap + find-first-free (bench/baseline.py)\n\n" + table(baseline) + "\n")
    if any(row["point"].endswith(" *") for row in baseline):
        text += ("\n\\* Yosys passed its time limit in this run; the figures are the last "
                 "ones measured (the baseline's code is unchanged).\n")
    if flush_rows:
        text += ("\n## Cost of the flush port\n\nThe same config built with the flush port and "
                 "without it (`HwallocTop(config, flush=False)`, a measuring knob, not a product "
                 "option): the flush stages, the kill marks of the frees it overtakes, and the "
                 "tag continuity of freelist slots granted again after a flush (their grant "
                 "record's second read port, the `seen` counter, the forwarding of grants in "
                 "flight). A ring needs the tag continuity anyway. The register file's FLUSH "
                 "registers are in both.\n\n" + table(flush_rows, FLUSH_COLUMNS) + "\n")
    text += ("\n![resources](benchmarks_resources.png)\n![depth](benchmarks_depth.png)\n"
             "![simulation](benchmarks_simulation.png)\n")
    print(text)
    if not quick:
        docs.mkdir(exist_ok=True)
        # keep the sections that bench/pnr_sweep.py and bench/guard_cost.py write
        previous = (docs / "benchmarks.md").read_text() if (docs / "benchmarks.md").exists() else ""
        for section in ("pnr", "guard"):
            begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
            if begin in previous:
                text += "\n" + previous[previous.index(begin):previous.index(end) + len(end)] + "\n"
        (docs / "benchmarks.md").write_text(text)
        (docs / "benchmarks.json").write_text(json.dumps({"hwalloc": rows, "baseline": baseline,
                                                          "flush_cost": flush_rows}, indent=1) + "\n")
        for path in plot(rows, baseline, docs):
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
