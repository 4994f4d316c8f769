"""Place-and-route figures on Lattice ECP5, side by side in one run.

    python bench/pnr_sweep.py [--seeds N] [--quick] [-j N] [--only NAME ...]

Runs `hwalloc pnr`'s flow (synth_ecp5 + nextpnr-ecp5, LFE5U-85F speed 8, every
port registered by the same wrapper) on: every shipped example; one pool of
16 ... 65536 slots; 8 pools; the bitmap + find-first-free baseline at 64 and
1024 slots; and the part's own ceilings in the same wrapper (a 32-bit counter,
a block RAM read straight into a register, and a memory as deep as a pool of
65536 slots, 132 block RAMs, read in two edges as the core reads it and in
three). Prints a Markdown table and writes
it into docs/benchmarks.md (between the pnr markers) and the rows into
docs/benchmarks_pnr.json. Figures, not tests: a seed changes the placement, so
the table gives min / median / max over the seeds.

``--only NAME ...`` re-measures those points (by config name: ``hwalloc_sizes``,
``pools_8``, ...) and keeps every other row from docs/benchmarks_pnr.json: for
a change that alters only some points' Verilog. Each row records the commit
whose tree it measured, and the table says which rows came from which.
"""

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth import Module, Mux, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwalloc.config import example_names, example_path, load_config, parse_config
from hwalloc.emit import drop_memory_init
from hwalloc.memory import memory
from hwalloc.pnr import core_design, run_pnr

sys.path.insert(0, str(Path(__file__).parent))
from baseline import BitmapAllocator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- pnr:begin -->", "<!-- pnr:end -->"
#: The issue's target on LFE5U-85F-8: every config at or above it (median).
TARGET_MHZ = 180


class Counter32(wiring.Component):
    """The part's ceiling for a wide carry chain: a 32-bit counter with enable."""
    en: In(1)
    count: Out(32)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


class MemoryRead(wiring.Component):
    """The part's ceiling for a memory built by :func:`hwalloc.memory.memory` as
    the core's are (no read-old-data logic after the RAM, registers not reset),
    ``depth`` x ``width``, read into a register. In two edges as the core reads
    (``edges=2``: each bank's RAM into a register, then the choice of the bank,
    if banked, into ``rdata``), or in three (``edges=3``: that register, then
    one more, then the choice; the sweep puts the first into the RAM, REGMODE
    OUTREG). ``registered_write`` as the core's grant records have it.

    The sweep's two: a block RAM, 1024 x 18; and a memory as deep as a pool of
    65536 slots, 65536 x 33 (4 banks of 33 DP16KDs of 16384 x 1: 132, as many
    as that pool's memories)."""

    def __init__(self, depth, width, *, edges=2, registered_write=False):
        self.depth, self.width, self.edges, self.registered_write = depth, width, edges, registered_write
        bits = (depth - 1).bit_length()
        super().__init__({"waddr": In(bits), "wdata": In(width), "wen": In(1), "raddr": In(bits),
                          "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        write, (read,) = memory(m, "deep" if self.registered_write else "ram", self.width, self.depth,
                                reads=1, registered_write=self.registered_write)
        m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.wen),
                     read.addr.eq(self.raddr)]
        if self.edges == 2:
            # (a banked memory's choice of the bank into a register of its own)
            domain = m.d.sync if len(read.parts) > 1 else m.d.comb
            domain += self.rdata.eq(read.data)
            return m
        chosen = 0
        for b, (select, data) in enumerate(read.parts):
            late, late_select = Signal(self.width, name=f"late_b{b}"), Signal(name=f"late_select_b{b}")
            m.d.sync += [late.eq(data), late_select.eq(select)]
            chosen |= Mux(late_select, late, 0)
        m.d.sync += self.rdata.eq(chosen)
        return m


def amaranth_design(component, name):
    ports = [(port, len(getattr(component, port)), member.flow == wiring.In)
             for port, member in component.signature.members.items()]
    text = drop_memory_init(verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True))
    # Amaranth's own clock and reset ports: the reset is driven like any input
    return {"verilog": text, "module": name, "clock": "clk", "ports": ports + [("rst", 1, True)]}


def one_pool(slots, tag_bits=4):
    return parse_config({"name": f"pool_{slots}", "tag_bits": tag_bits,
                         "pools": [{"name": "p", "base": 0x40000000, "slot_size": 256, "slots": slots}]})


def points(quick):
    configs = [(f"example {name}", load_config(example_path(name))) for name in example_names()]
    sizes = (16, 1024) if quick else (16, 64, 256, 1024, 4096, 16384, 65536)
    configs += [(f"1 pool × {n}", one_pool(n)) for n in sizes]
    if not quick:
        configs.append(("8 pools × 256", parse_config({"name": "pools_8", "tag_bits": 4, "pools": [
            {"name": f"p{i}", "base": 0x10000 * (i + 1), "slot_size": 64, "slots": 256} for i in range(8)]})))
    rows = [(label, cfg.name, "hwalloc", lambda cfg=cfg: core_design(cfg)) for label, cfg in configs]
    for n in ((64,) if quick else (64, 1024)):
        rows.append((f"bitmap × {n}", f"bitmap_{n}", "baseline",
                     lambda n=n: amaranth_design(BitmapAllocator(n), f"bitmap_{n}")))
    rows.append(("32-bit counter", "counter32", "ceiling",
                 lambda: amaranth_design(Counter32(), "counter32")))
    # (the register in the fabric: moved into the RAM, nextpnr reports 620 MHz,
    # as its timing model bounds no RAM by a minimum period of its own)
    rows.append(("block RAM read → register (in the fabric)", "ramread", "ceiling",
                 lambda: {**amaranth_design(MemoryRead(1024, 18), "ramread"), "outreg": False}))
    if not quick:
        # (with the output register left in the fabric, as the core's 132 are;
        # then in the RAM, with one more in the fabric)
        def deep(edges):
            return MemoryRead(65536, 33, edges=edges, registered_write=True)
        rows.append(("65536 × 33 in 132 block RAMs, read in 2 edges (as the core reads)", "deep2",
                     "ceiling", lambda: amaranth_design(deep(2), "deep2")))
        rows.append(("65536 × 33 in 132 block RAMs, read in 3 edges (RAM output register + fabric)",
                     "deep3", "ceiling", lambda: {**amaranth_design(deep(3), "deep3"), "outreg": True}))
    return rows


def commit():
    """The commit of the tree measured (``+`` if it has changes of its own)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


def measure(point, seeds, work, measured):
    label, name, kind, make = point
    print(f"[pnr_sweep] {label} ...", file=sys.stderr, flush=True)
    design = make()
    report = run_pnr(name, work / name, design, seeds=range(1, seeds + 1), outreg=design.get("outreg"))
    return {"point": label, "kind": kind, **report, "commit": measured}


def table(rows):
    lines = ["| point | Fmax median (min–max) MHz | LUT4 | FF | DP16KD | LUT-RAM "
             "| worst path (median seed) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        f, r, path = row["fmax_mhz"], row["resources"], row["worst_path"]
        where = (f"{path['from']} → {path['to']}: {path['total_ns']} ns = {path['logic_ns']} cells "
                 f"+ {path['routing_ns']} routing" if path else "—")
        lines.append(f"| {row['point']} | **{f['median']}** ({f['min']}–{f['max']}) | {r['LUT4']} | "
                     f"{r['FF']} | {r['DP16KD']} | {r['LUTRAM']} | {where} |")
    return "\n".join(lines)


def section(rows, seeds):
    ours = [r["fmax_mhz"]["median"] for r in rows if r["kind"] == "hwalloc"]
    sweep = [r["fmax_mhz"]["median"] for r in rows
             if r["kind"] == "hwalloc" and r["point"].startswith("1 pool")]
    verdict = (f"hwalloc medians {min(ours)}–{max(ours)} MHz; the one-pool sweep's slowest is "
               f"{100 * (1 - min(sweep) / max(sweep)):.0f} % below its fastest. Target: every config ≥ "
               f"{TARGET_MHZ} MHz, the slowest within 15 % of the fastest: "
               f"{'met' if min(ours) >= TARGET_MHZ and min(sweep) >= 0.85 * max(sweep) else 'NOT met'}.")
    commits = {}
    for row in rows:
        commits.setdefault(row.get("commit", "unknown"), []).append(row["config"])
    if len(commits) > 1:
        verdict += " Rows by the commit whose tree they measured: " + "; ".join(
            f"{c}: {', '.join(names)}" for c, names in commits.items()) + "."
    else:
        verdict += f" Measured on the tree of {next(iter(commits))}."
    return "\n".join([
        BEGIN,
        "## Place and route on ECP5 (`hwalloc pnr`, `python bench/pnr_sweep.py`)",
        "",
        f"Lattice LFE5U-85F, speed 8: Yosys synth_ecp5 and nextpnr-ecp5 from PyPI, {seeds} seed(s) a point, "
        "every port of the design registered by the same wrapper, so only its own register-to-register paths "
        "count. These are ECP5 figures from place and route, not Xilinx ones (the Xilinx columns above are "
        "Yosys estimates until Vivado confirms them). Resources are the design's own, wrapper excluded.",
        "",
        table(rows),
        "",
        verdict,
        END,
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few points only")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="points placed at once")
    parser.add_argument("--work", default=str(ROOT / "build" / "pnr_sweep"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="re-measure these points, keep the others from docs/benchmarks_pnr.json")
    args = parser.parse_args(argv)
    work = Path(args.work)
    todo = points(args.quick)
    kept = {}
    if args.only:
        known = {name for _, name, _, _ in todo}
        unknown = sorted(set(args.only) - known)
        if unknown:
            parser.error(f"no such point: {', '.join(unknown)} (the points: {', '.join(sorted(known))})")
        kept = {row["config"]: row for row in json.loads((ROOT / "docs" / "benchmarks_pnr.json").read_text())}
        if any(len(row["seeds"]) != args.seeds for row in kept.values()):
            parser.error(f"the kept rows were not measured with {args.seeds} seeds")
        missing = sorted(known - set(args.only) - set(kept))
        if missing:
            parser.error(f"docs/benchmarks_pnr.json has no row to keep for: {', '.join(missing)}")
    measured = commit()
    redo = [p for p in todo if not args.only or p[1] in args.only]
    with ThreadPoolExecutor(args.jobs) as pool:
        new_rows = list(pool.map(lambda p: measure(p, args.seeds, work, measured), redo))
    fresh = {name: row for (_, name, _, _), row in zip(redo, new_rows, strict=True)}
    rows = [fresh[name] if name in fresh else kept[name] for _, name, _, _ in todo]
    text = section(rows, args.seeds)
    print(text)
    if not args.no_write:
        docs = ROOT / "docs"
        (docs / "benchmarks_pnr.json").write_text(json.dumps(rows, indent=1) + "\n")
        bench = (docs / "benchmarks.md").read_text()
        if BEGIN in bench:
            bench = bench[:bench.index(BEGIN)] + text + bench[bench.index(END) + len(END):]
        else:
            bench = bench.rstrip("\n") + "\n\n" + text + "\n"
        (docs / "benchmarks.md").write_text(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
