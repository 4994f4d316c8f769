"""Synthesis estimates: the depth counter on a netlist whose answer is known,
and `hwalloc synth` on real cores (Yosys synth_xilinx from PyPI)."""

import io
import json
import sys
from pathlib import Path

import pytest

from hwalloc import cli
from hwalloc.config import example_names, example_path, load_config, parse_config
from hwalloc.synth import (BUDGET_COUNT, DEPTH_BUDGET, depth_by_block, logic_depth, ram_outputs_to_logic,
                           resources, synthesize)

REPO = Path(__file__).resolve().parent.parent


def cell(kind, inputs, outputs):
    return {"type": kind,
            "port_directions": {**{p: "input" for p in inputs}, **{p: "output" for p in outputs}},
            "connections": {**inputs, **outputs}}


def test_depth_counts_levels_between_registers():
    # q0 -> LUT -> LUT -> MUXF -> d1 ; q0 -> LUT -> d2 ; the LUT-RAM read is a level too
    netlist = {"modules": {"top": {
        "netnames": {"q0": {"bits": [2]}, "d1": {"bits": [5]}, "q1": {"bits": [6]},
                     "ram_out": {"bits": [8]}},
        "cells": {
            "ff0": cell("FDRE", {"D": [9], "C": [1]}, {"Q": [2]}),
            "lut_a": cell("LUT2", {"I0": [2], "I1": [2]}, {"O": [3]}),
            "lut_b": cell("LUT3", {"I0": [3], "I1": [2], "I2": [2]}, {"O": [4]}),
            "mux": cell("MUXF7", {"I0": [4], "I1": [3], "S": [2]}, {"O": [5]}),
            "ff1": cell("FDRE", {"D": [5], "C": [1]}, {"Q": [6]}),
            "lut_c": cell("LUT1", {"I0": [6]}, {"O": [7]}),
            "ram": cell("RAM64M", {"ADDRA": [7], "WCLK": [1]}, {"DOA": [8]}),
            "ff2": cell("FDRE", {"D": [8], "C": [1]}, {"Q": [9]}),
        }}}}
    depth, path = logic_depth(netlist, "top")
    assert depth == 3
    assert logic_depth(netlist, "top", count_carry=False)[0] == 3
    assert path["from"] == "q0" and path["to"] == "q1"
    assert [c.split("(")[0] for c in path["cells"]] == ["LUT2", "LUT3", "MUXF7"]


def test_carry_chains_count_unless_asked_not_to():
    # q0 -> LUT -> CARRY4 -> CARRY4 -> d1
    netlist = {"modules": {"top": {
        "netnames": {"q0": {"bits": [2]}, "q1": {"bits": [6]}},
        "cells": {
            "ff0": cell("FDRE", {"D": [6], "C": [1]}, {"Q": [2]}),
            "lut": cell("LUT2", {"I0": [2], "I1": [2]}, {"O": [3]}),
            "c0": cell("CARRY4", {"S": [3], "CI": [2]}, {"CO": [4]}),
            "c1": cell("CARRY4", {"S": [3], "CI": [4]}, {"CO": [5]}),
            "ff1": cell("FDRE", {"D": [5], "C": [1]}, {"Q": [6]}),
        }}}}
    assert logic_depth(netlist, "top")[0] == 3
    assert logic_depth(netlist, "top", count_carry=False)[0] == 1
    assert logic_depth(netlist, "top", count_carry="chain")[0] == 2      # the chain is one level


def _ram_netlist(output_register):
    # a RAMB36E2 read on port B: DOUTBDOUT -> LUT -> FDRE, and DOUTBDOUT[1] -> FDRE
    ram = cell("RAMB36E2", {"CLKBWRCLK": [1], "ADDRBWRADDR": [2]}, {"DOUTBDOUT": [3, 4]})
    ram["parameters"] = {"DOB_REG": format(output_register, "032b")}
    return {"modules": {"top": {
        "netnames": {"ram_q": {"bits": [3, 4]}},
        "cells": {
            "ram": ram,
            "lut": cell("LUT2", {"I0": [3], "I1": [2]}, {"O": [5]}),
            "ff0": cell("FDRE", {"D": [5], "C": [1]}, {"Q": [6]}),
            "ff1": cell("FDRE", {"D": [4], "C": [1]}, {"Q": [7]}),
        }}}}


def test_a_block_ram_output_into_logic_breaks_the_budget():
    """What place and route taught: a block RAM read that feeds logic pays the
    RAM's whole clock-to-out and a long route; only its output register helps."""
    assert ram_outputs_to_logic(_ram_netlist(0), "top") == [("ram_q", "LUT2")]
    assert ram_outputs_to_logic(_ram_netlist(1), "top") == []


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_synth_reports_resources_and_depth(tmp_path, monkeypatch, capsys):
    """On a terminal it shows what it is doing and for how long."""
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\ntag_bits: 2\npools:\n"
                      "  - {name: a, base: 0x1000, slot_size: 64, slots: 6}\n"
                      "  - {name: b, base: 0x2000, slot_size: 16, slots: 4}\n")
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert cli.main(["synth", str(config), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\r\x1b[K[synth    0 s] yosys synth_xilinx -family xcup on tiny" in screen.getvalue()
    assert "s] synthesized; reading the netlist" in screen.getvalue()
    assert "an estimate before place and route" in out and "logic depth:" in out
    report = json.loads((tmp_path / "reports" / "tiny_xcup.json").read_text())
    assert report["resources"]["LUT"] > 50 and report["resources"]["FF"] > 100
    assert report["logic_depth"] >= 2 and report["worst_path"]["cells"]
    assert 1 <= report["lut_depth"] <= report["logic_depth"]
    blocks = report["lut_depth_by_block"]
    assert {"core", "regs", "axil"} <= set(blocks) and max(blocks.values()) == report["lut_depth"]
    assert "LUT levels by block: AXI adapter " in out and "allocation core " in out
    assert "clock_mhz 350 on xcup: paths of up to 4 LUT levels fit" in out
    assert report["worst_path"]["from"] and report["worst_path"]["to"]


def test_synth_refuses_a_bad_family(tmp_path):
    with pytest.raises(ValueError, match="Family must be one of xcup, xc7, not 'xc9'"):
        synthesize(load_config(), family="xc9", work=tmp_path)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Each shipped example synthesized once for the tests below: name -> (config, stat, netlist).
    (From its committed Verilog, which test_emit.py checks is what the generator emits.)"""
    done = {}

    def get(name):
        if name not in done:
            config = load_config(example_path(name))
            verilog = (REPO / "rtl_out" / f"{config.name}.v").read_text()
            done[name] = (config, *synthesize(config, work=tmp_path_factory.mktemp(name), verilog=verilog))
        return done[name]
    return get


def test_per_slot_state_of_1024_slots_is_ram_not_flip_flops(shipped, tmp_path):
    """The acquisition example: its per-slot state (1024 slots) maps to block RAM
    (the queue, the grant records, and the parity bits with one copy for each of
    their two read ports). A bitmap of allocated bits would need 1024 flip-flops
    more than a 64-slot pool's."""
    config, stat, _ = shipped("acquisition")
    counts = resources(stat, config.name)
    assert counts["RAMB18"] + 2 * counts["RAMB36"] >= 4
    small = parse_config(dict(config.to_dict(), pools=[dict(config.to_dict()["pools"][0], slots=64)]))
    small_counts = resources(synthesize(small, work=tmp_path / "small")[0], small.name)
    # 16 times the slots, nowhere near 16 times the flip-flops: 4 more bits in each
    # of the slot-wide registers (pipeline stages, counters: about 30 of them),
    # where a bitmap would need 960 more
    assert counts["FF"] < small_counts["FF"] + 160


@pytest.mark.parametrize("name", example_names())
def test_shipped_examples_stay_within_the_depth_budget(shipped, name):
    """The structural budget of issue 4: no path between sequential endpoints has
    more than DEPTH_BUDGET LUT levels (a carry chain counted as one)."""
    config, _, netlist = shipped(name)
    depth, path = logic_depth(netlist, config.name, count_carry=BUDGET_COUNT)
    assert depth <= DEPTH_BUDGET, (
        f"{depth} LUT levels, budget {DEPTH_BUDGET}: {path['from']} -> "
        f"{' -> '.join(path['cells'])} -> {path['to']}")
    assert depth_by_block(netlist, config.name)["core"] <= DEPTH_BUDGET
    assert ram_outputs_to_logic(netlist, config.name) == []


#: Made-up configs beyond the examples: three pools, one a small ring, with 8-bit
#: tags (the tag increment is widest; two or three pools make plain ORs that
#: Yosys maps into chains of small LUTs: bench/sweep.py found the register
#: file's command queue at 5 levels with 3 pools), and 8 pools, half of them
#: rings (the widest choice of a grant's slot, tag and snapshot); and 7 pools of
#: every slot size from 4 to 256 bytes and as many slot widths, packed (random
#: configs found the mapper chaining the pools' nested ORs of a free's low
#: address bits and of a queued slot's bits into 5 levels); and a guarded config
#: of 6 pools with small rings (random config 74: a ring's parity, built in
#: flip-flops for the guard's extra read ports, written after the release
#: decision, the race with a younger grant and a row decode, was 6 levels; the
#: register ALLOC's decode and the core's busy were 5 on others). The larger points
#: (65536 slots, 8 x 4096) are in docs/benchmarks.md (bench/sweep.py): too slow
#: to synthesize in CI.
MADE_UP = {
    "3_pools_ring_16_tags_8": {"name": "p3r", "tag_bits": 8, "pools": [
        {"name": "r", "base": 0x1000_0000, "slot_size": 64, "slots": 16, "kind": "ring"},
        {"name": "f", "base": 0x2000_0000, "slot_size": 64, "slots": 256},
        {"name": "g", "base": 0x3000_0000, "slot_size": 4096, "slots": 64}]},
    "8_pools_half_rings": {"name": "p8r", "tag_bits": 4, "pools": [
        {"name": f"p{i}", "base": 0x1000_0000 * (i + 1), "slot_size": 64, "slots": 256,
         "kind": "ring" if i % 2 else "freelist"} for i in range(8)]},
    "7_pools_of_every_slot_size": {"name": "p7s", "tag_bits": 1, "pools": [
        {"name": f"p{i}", "base": 0x1_0000 * (i + 1), "slot_size": 4 << i, "slots": slots}
        for i, slots in enumerate((5, 300, 16, 2, 257, 31, 9))]},
    "6_pools_small_rings_guarded": {
        "name": "p6g", "latency": 6, "tag_bits": 4, "user_bits": 10, "addr_width": 64, "error_log_depth": 2,
        "pools": [
            {"name": "p0", "base": 60, "slot_size": 4, "slots": 100},
            {"name": "p1", "base": 512, "slot_size": 16, "slots": 3},
            {"name": "p2", "base": 704, "slot_size": 64, "slots": 300},
            {"name": "p3", "base": 20160, "slot_size": 64, "slots": 31, "kind": "ring", "access": "ro"},
            {"name": "p4", "base": 22148, "slot_size": 4, "slots": 4},
            {"name": "p5", "base": 22336, "slot_size": 64, "slots": 9, "kind": "ring"}],
        "guard": {"data_bytes": 8, "id_width": 7, "outside": "pass"}},
}


@pytest.mark.parametrize("name", MADE_UP)
def test_ring_pools_and_eight_pools_stay_within_the_depth_budget(name, tmp_path):
    config = parse_config(MADE_UP[name])
    _, netlist = synthesize(config, work=tmp_path)
    by_block = depth_by_block(netlist, config.name)
    assert max(by_block.values()) <= DEPTH_BUDGET, by_block
    assert ram_outputs_to_logic(netlist, config.name) == []
