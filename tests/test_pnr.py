"""`hwalloc pnr`: the wrapper, our one netlist mapping step, and the whole flow
(synth_ecp5 + nextpnr-ecp5 from PyPI) on a small core. No timing is asserted:
the figures live in docs/benchmarks.md (bench/pnr_sweep.py)."""

import json
import re

from hwalloc import cli
from hwalloc.config import load_config
from hwalloc.pnr import (WRAPPER, _synth, _worst_path, absorb_ram_output_registers, core_design,
                         outreg_applies, wrapper_verilog)


def test_the_wrapper_registers_every_port_of_the_core():
    design = core_design(load_config())
    text = wrapper_verilog(design["module"], design["ports"], design["clock"])
    assert text.count(f"module {WRAPPER}(input wire clk, input wire din, output wire dout);") == 1
    n_in = sum(w for _, w, is_in in design["ports"] if is_in)
    n_out = sum(w for _, w, is_in in design["ports"] if not is_in)
    assert f"reg [{n_in - 1}:0] s;" in text and f"reg [{n_out - 1}:0] r0;" in text
    # every port is connected, inputs to their toggles and outputs to the capture register
    for name, _, is_in in design["ports"]:
        assert re.search(rf"\.{name}\(({'s' if is_in else 'o'})\[\d+:\d+\]\)", text), name
    assert ".aclk(clk)" in text
    # each input flip-flop toggles with the pin: a function of itself, never a copy of another
    assert f"always @(posedge clk) s <= s ^ {{{n_in}{{din}}}};" in text


def _ff(d, q, clk=1, lsr="0"):
    return {"type": "TRELLIS_FF", "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK", "REGSET": "RESET"},
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"},
            "connections": {"CLK": [clk], "DI": [d], "LSR": [lsr], "Q": [q]}}


def _ram_netlist(second_load=False, chained=False):
    ram = {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG"},
           "port_directions": {"CLKB": "input", "RSTB": "input", "OCEB": "input",
                               "DOB0": "output", "DOB1": "output"},
           "connections": {"CLKB": [1], "RSTB": ["0"], "OCEB": ["1"], "DOB0": [10], "DOB1": [11]}}
    cells = {"ram": ram, "ff0": _ff(10, 20), "ff1": _ff(11, 21)}
    if chained:
        # a read of three edges: each output register drives one more register
        cells.update({"late0": _ff(20, 40), "late1": _ff(21, 41)})
    if second_load:
        cells["lut"] = {"type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [11], "Z": [30]}}
    return {"modules": {"core": {"ports": {}, "cells": cells}}}


def test_a_ram_read_into_a_plain_register_gets_the_rams_output_register():
    netlist = _ram_netlist()
    assert absorb_ram_output_registers(netlist) == 1
    cells = netlist["modules"]["core"]["cells"]
    assert set(cells) == {"ram"}
    assert cells["ram"]["parameters"]["REGMODE_B"] == "OUTREG"
    # the RAM now drives what the registers drove
    assert cells["ram"]["connections"]["DOB0"] == [20] and cells["ram"]["connections"]["DOB1"] == [21]


def test_a_ram_output_with_logic_on_it_keeps_its_registers():
    netlist = _ram_netlist(second_load=True)
    assert absorb_ram_output_registers(netlist) == 0
    cells = netlist["modules"]["core"]["cells"]
    assert {"ff0", "ff1"} <= set(cells) and cells["ram"]["parameters"]["REGMODE_B"] == "NOREG"


def test_a_design_that_fills_the_rams_gets_the_output_registers_of_its_three_edge_reads():
    # a read into one register, then logic: left in the fabric
    netlist = _ram_netlist()
    assert absorb_ram_output_registers(netlist, chained_only=True) == 0
    assert netlist["modules"]["core"]["cells"]["ram"]["parameters"]["REGMODE_B"] == "NOREG"
    # a register, then another: the first goes into the RAM, the second stays
    netlist = _ram_netlist(chained=True)
    assert absorb_ram_output_registers(netlist, chained_only=True) == 1
    cells = netlist["modules"]["core"]["cells"]
    assert set(cells) == {"ram", "late0", "late1"} and cells["ram"]["parameters"]["REGMODE_B"] == "OUTREG"
    assert cells["ram"]["connections"]["DOB0"] == [20] and cells["late0"]["connections"]["DI"] == [20]
    # one output register feeds logic beside the second register: not a three-edge read
    netlist = _ram_netlist(chained=True)
    lut = {"type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
           "connections": {"A": [21], "Z": [30]}}
    netlist["modules"]["core"]["cells"]["lut"] = lut
    assert absorb_ram_output_registers(netlist, chained_only=True) == 0


def test_ram_output_registers_stay_in_the_fabric_of_a_design_that_fills_the_rams():
    # a quarter of the device's DP16KDs at most: 52 of the 85F's 208, 14 of the 25F's 56
    assert outreg_applies(0, "85k") and outreg_applies(52, "85k") and not outreg_applies(53, "85k")
    assert outreg_applies(14, "25k") and not outreg_applies(15, "25k")
    # one pool of 16384 slots (30 DP16KDs) keeps them in the RAMs on an 85F, 65536 (128) does not
    assert outreg_applies(30, "85k") and not outreg_applies(128, "85k")


def test_pnr_places_and_routes_a_small_core(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ntag_bits: 2\npools:\n"
                      "  - {name: a, base: 0x1000, slot_size: 64, slots: 6}\n")
    # two seeds placed at once (a nextpnr process each), reported in seed order; the
    # router asked for a clock the core beats, so that it stops early (half the time)
    assert cli.main(["pnr", str(config), "--seeds", "2", "-j", "2", "--freq", "100",
                     "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert captured.err == ""           # no terminal, no progress: quiet in a CI log
    assert "tiny on LFE5U-85F-8" in out and "Fmax of aclk: median" in out and "worst path" in out
    assert "the router was asked for 100 MHz and met it: these are floors" in out
    report = json.loads((tmp_path / "reports" / "tiny_ecp585k.json").read_text())
    assert report["router_target_mhz"] == 100
    assert set(report["fmax_mhz"]) == {"min", "median", "max"}
    assert report["fmax_mhz"]["min"] <= report["fmax_mhz"]["median"] <= report["fmax_mhz"]["max"]
    assert report["fmax_mhz"]["min"] > 0
    assert [run["seed"] for run in report["seeds"]] == [1, 2]
    assert all(run["fmax_mhz"] > 0 and run["worst_path"] for run in report["seeds"])
    work = tmp_path / "reports" / "tiny_ecp585k"
    assert {p.name for p in work.glob("nextpnr_*.log")} == {"nextpnr_1.log", "nextpnr_2.log"}
    assert set(report["resources"]) == {"LUT4", "FF", "CARRY", "DP16KD", "LUTRAM"}
    assert report["resources"]["LUT4"] > 50 and report["resources"]["FF"] > 100
    path = report["worst_path"]
    assert path["from"] and path["to"] and path["total_ns"] > 0
    assert abs(path["logic_ns"] + path["routing_ns"] - path["total_ns"]) < 0.02


def test_pnr_refuses_no_seeds(capsys):
    assert cli.main(["pnr", "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_pnr_refuses_no_jobs(capsys):
    assert cli.main(["pnr", "-j", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_pnr_refuses_a_router_clock_of_zero(capsys):
    assert cli.main(["pnr", "--freq", "0"]) == 2
    assert "--freq must be above 0 MHz, not 0" in capsys.readouterr().err


_RAM_READ = """module ramread(input wire clk, input wire [9:0] waddr, input wire [9:0] raddr,
    input wire [17:0] wdata, input wire wen, output reg [17:0] rdata);
  (* no_rw_check *) reg [17:0] mem [0:1023];
  reg [17:0] data;
  always @(posedge clk) begin
    if (wen) mem[waddr] <= wdata;
    data <= mem[raddr];
    rdata <= data;
  end
endmodule
"""


def test_a_ceiling_may_force_where_the_ram_output_register_goes(tmp_path):
    # (a design of one DP16KD: by the share, its register goes into the RAM)
    design = {"verilog": _RAM_READ, "module": "ramread", "clock": "clk",
              "ports": [("waddr", 10, True), ("raddr", 10, True), ("wdata", 18, True), ("wen", 1, True),
                        ("rdata", 18, False)]}
    absorbed = {}
    for outreg in (None, False, True):
        work = tmp_path / str(outreg)
        work.mkdir()
        resources, absorbed[outreg] = _synth(work, design, "85k", outreg)
        assert resources["DP16KD"] == 1
    assert absorbed == {None: 1, False: 0, True: 1}


def test_the_worst_path_is_a_clock_path_never_a_pin_path():
    def step(kind, delay, cell):
        return {"type": kind, "delay": delay, "from": {"cell": cell}, "to": {"cell": cell}}
    clock = "posedge clk"
    report = {"critical_paths": [
        {"from": clock, "to": clock, "path": [step("clk-to-q", 0.5, "a_TRELLIS_FF_Q"),
                                              step("routing", 2.0, "b_TRELLIS_FF_Q")]},
        # a pin's path, longer, but not timed against the clock
        {"from": "<async>", "to": clock, "path": [step("logic", 0.2, "din$tr_io"),
                                                  step("routing", 6.0, "s_TRELLIS_FF_Q_1")]},
    ]}
    path = _worst_path(report)
    assert (path["from"], path["to"], path["total_ns"], path["routing_ns"]) == ("a", "b", 2.5, 2.0)
