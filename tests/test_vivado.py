"""Implementation collateral: the IP-XACT component (read with ipyxact and
checked against the Verilog's own port list), the Vivado TCL, and the FuseSoC
core (listed and linted by FuseSoC)."""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import ipyxact.ipyxact as ipyxact
import pytest

from hwalloc.config import example_path, load_config
from hwalloc.emit import generate
from hwalloc.regs import register_map
from hwalloc.sim import setup_verilator

SPIRIT = {"spirit": "http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009"}


def verilog_ports(text, top):
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                           text, re.M):
        ports[name] = ("in" if direction == "input" else "out", int(msb or 0) + 1)
    header = re.search(rf"module {top}\(([^;]*)\);", text).group(1)
    names = {p.strip() for p in header.replace("\n", " ").split(",")}
    return {name: ports[name] for name in names}


@pytest.mark.parametrize("name", ["event_region", "size_classes", "guarded_dma"])
def test_ipxact_component_matches_the_verilog(name, tmp_path):
    config = load_config(example_path(name))
    generate(config, tmp_path)
    path = tmp_path / "rtl_out" / f"{config.name}_component.xml"
    # the Verilog generated beside it (emitting it again would take as long as generating)
    verilog = verilog_ports((tmp_path / "rtl_out" / f"{config.name}.v").read_text(), config.name)
    component = ipyxact.Component()
    component.load(str(path))
    assert (component.vendor, component.library, component.name) == ("hwalloc", "hwalloc", config.name)
    interfaces = {b.name: (b.busType.name, b.abstractionType.name)
                  for b in component.busInterfaces.busInterface}
    guarded = {"s_axi": ("aximm", "aximm_rtl"), "m_axi": ("aximm", "aximm_rtl")} if config.guard else {}
    assert interfaces == {"s_axil": ("aximm", "aximm_rtl"), "aclk": ("clock", "clock_rtl"),
                          "aresetn": ("reset", "reset_rtl"), "irq": ("interrupt", "interrupt_rtl"),
                          **guarded}
    for name in guarded:
        # the guard's AXI4 ports: every one of them in the bus interface, and a master towards memory
        bus = next(b for b in component.busInterfaces.busInterface if b.name == name)
        ports = {m.physicalPort.name for m in bus.portMaps.portMap}
        assert ports == {p for p in verilog if p.startswith(name + "_")}
    axi = next(b for b in component.busInterfaces.busInterface if b.name == "s_axil")
    mapped = {m.physicalPort.name for m in axi.portMaps.portMap}
    assert mapped == {f"s_axil_{p}" for p in (
        "awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp",
        "bvalid", "bready", "araddr", "arprot", "arvalid", "arready", "rdata", "rresp", "rvalid",
        "rready")}
    # the port list, with widths (read directly: ipyxact models 2014's vectors only)
    root = ET.parse(path).getroot()
    xml_ports = {}
    for port in root.iterfind("spirit:model/spirit:ports/spirit:port", SPIRIT):
        left = port.find("spirit:wire/spirit:vector/spirit:left", SPIRIT)
        xml_ports[port.find("spirit:name", SPIRIT).text] = (
            port.find("spirit:wire/spirit:direction", SPIRIT).text,
            int(left.text) + 1 if left is not None else 1)
    assert xml_ports == verilog
    # bus parameters Vivado reads
    text = path.read_text()
    buses = ">s_axil:s_axi:m_axi</spirit:value>" if config.guard else ">s_axil</spirit:value>"
    for needle in ("<spirit:name>ASSOCIATED_BUSIF</spirit:name>", buses,
                   "<spirit:name>ASSOCIATED_RESET</spirit:name>", ">aresetn</spirit:value>",
                   ">ACTIVE_LOW</spirit:value>", ">LEVEL_HIGH</spirit:value>"):
        assert needle in text
    # the memory map is the register description's
    block = component.memoryMaps.memoryMap[0].addressBlock[0]
    assert {r.name: int(r.addressOffset) for r in block.register} == \
        {r.name: r.offset for r in register_map(config)}


def test_vivado_tcl_uses_documented_commands(tmp_path):
    config = load_config(example_path("event_region"))
    generate(config, tmp_path)
    build = (tmp_path / "rtl_out" / "hwalloc_event_build.tcl").read_text()
    for command in ("read_verilog", "read_xdc -mode out_of_context",
                    "synth_design -top hwalloc_event -part $part -mode out_of_context",
                    "opt_design", "place_design", "route_design", "report_utilization",
                    "report_timing_summary", 'lindex $argv 0', "xczu7ev-ffvc1156-2-e"):
        assert command in build
    package = (tmp_path / "rtl_out" / "hwalloc_event_package.tcl").read_text()
    assert "ipx::open_core $here/hwalloc_event_component.xml" in package
    assert "ipx::check_integrity" in package and "ipx::save_core" in package


def fusesoc(*args, cwd):
    setup_verilator()
    exe = Path(sys.executable).parent / "fusesoc"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ))


def test_fusesoc_lists_and_lints_the_core(tmp_path):
    generate(load_config(example_path("event_region")), tmp_path)
    listed = fusesoc("--cores-root", "rtl_out", "core", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "hwalloc:cores:hwalloc_event:" in listed.stdout
    linted = fusesoc("--cores-root", "rtl_out", "run", "--target", "lint",
                     "hwalloc:cores:hwalloc_event", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    options = next((tmp_path / "build").rglob("config.mk")).read_text()
    files = next((tmp_path / "build").rglob("*.vc")).read_text()
    assert "-Wall" in options and "hwalloc_lint.vlt" in files
    # the lint is real: without the waiver file, -Wall fails it
    core = tmp_path / "rtl_out" / "hwalloc_event.core"
    core.write_text(core.read_text().replace("filesets: [rtl, waiver]", "filesets: [rtl]"))
    unwaived = fusesoc("--cores-root", "rtl_out", "run", "--target", "lint",
                       "hwalloc:cores:hwalloc_event", cwd=tmp_path)
    assert unwaived.returncode != 0
