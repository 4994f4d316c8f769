"""What the access guard (SPEC §8) costs, and what it adds to a burst.

    python bench/guard_cost.py [--quick]     # prints a Markdown table, writes docs/benchmarks.md

For one pool of 64, 1024 and 65536 slots (and the shipped GUARDED_DMA
example), the core is synthesized (Yosys synth_xilinx, xcup) with and without
a guard (8-byte bus, 4-bit IDs): the difference is the guard's own cost (its
decode, queues and register stages, the core's two extra read ports of each
pool's records, the five-entry log). Beside it: G (the cycles added to AR and
AW) and the throughput the guard bench measures (one AR and one AW a clock).
Figures, not tests: Yosys' estimate before place and route.
"""

import sys
import tempfile
from pathlib import Path

import yaml

from hwalloc.config import example_path, parse_config
from hwalloc.guard import GUARD_LATENCY
from hwalloc.synth import BUDGET_COUNT, depth_by_block, resources, synthesize

GUARD = {"data_bytes": 8, "id_width": 4, "outside": "refuse"}
BEGIN, END = "<!-- guard:begin -->", "<!-- guard:end -->"


def pair(slots):
    base = {"name": f"g{slots}", "tag_bits": 4, "latency": 7, "addr_width": 32,
            "pools": [{"name": "p", "base": 0x4000_0000, "slot_size": 256, "slots": slots}]}
    return parse_config(base), parse_config({**base, "name": f"g{slots}_guard", "guard": GUARD})


def measure(config, work):
    stat, netlist = synthesize(config, work=work)
    res = resources(stat, config.name)
    res["levels"] = max(depth_by_block(netlist, config.name, count_carry=BUDGET_COUNT).values())
    return res


def main(argv):
    quick = "--quick" in argv
    rows = []
    points = [(f"1 pool × {n}", *pair(n)) for n in ((64,) if quick else (64, 1024, 65536))]
    if not quick:
        raw = yaml.safe_load(example_path("guarded_dma").read_text())
        plain = {k: v for k, v in raw.items() if k != "guard"}
        points.append(("GUARDED_DMA", parse_config({**plain, "name": "guarded_dma_plain"}),
                       parse_config(raw)))
    with tempfile.TemporaryDirectory() as tmp:
        for label, plain, guarded in points:
            print(f"[guard_cost] {label} ...", file=sys.stderr)
            without = measure(plain, Path(tmp) / plain.name)
            with_guard = measure(guarded, Path(tmp) / guarded.name)
            rows.append((label, without, with_guard))
    keys = [k for k in rows[0][2] if k != "levels"]
    lines = [BEGIN, "## Cost of the access guard (`python bench/guard_cost.py`)", "",
             "One pool of 256-byte slots, 4-bit tags, L = 7, 32-bit addresses, synthesized with and "
             "without a guard (8-byte bus, 4-bit IDs, `outside: refuse`); and the shipped GUARDED_DMA "
             "example. Each cell: the guarded core's count (the guard's share in brackets: the "
             "difference). Yosys synth_xilinx on xcup, an estimate before place and route.", "",
             f"G = {GUARD_LATENCY} cycles added to AR and AW. Throughput: one AR and one AW accepted "
             "every clock, one W and one R beat every clock (`tb/test_guard.py`, "
             "`test_guard_line_rate`, exact in simulation).", "",
             "| config | " + " | ".join(keys) + " | LUT levels |",
             "|---|" + "---|" * len(keys) + "---|"]
    for label, without, with_guard in rows:
        cells = [f"{with_guard[k]} ({with_guard[k] - without[k]:+d})" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {with_guard['levels']} |")
    lines.append(END)
    text = "\n".join(lines)
    print(text)
    if not quick:
        docs = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
        previous = docs.read_text()
        if BEGIN in previous:
            previous = previous[:previous.index(BEGIN)] + text + previous[previous.index(END) + len(END):]
        else:
            previous = previous.rstrip("\n") + "\n\n" + text + "\n"
        docs.write_text(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
