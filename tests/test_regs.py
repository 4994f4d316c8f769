"""The register description and everything derived from it: the map itself,
the C header (compiled and run), the SystemRDL (parsed by systemrdl-compiler),
the Markdown reference, the Python driver (over a fake bus and over mmap), and
the register file's decode in Amaranth's simulator."""

import importlib.util
import mmap
import shutil
import subprocess

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from hwalloc import __version__
from hwalloc.collateral import emit_c_header, emit_markdown, emit_python_driver, emit_rdl
from hwalloc.config import RECYCLE_DELAY, example_path, load_config
from hwalloc.model import Err, Op
from hwalloc.regfile import RegisterFile, read_depth
from hwalloc.regs import constant_value, register_map, version_word

SPEC_GLOBALS = {
    "ID": 0x000, "VERSION": 0x004, "CONFIG": 0x008, "CONFIG2": 0x00C, "CTRL": 0x010,
    "STATUS": 0x014, "IRQ_STATUS": 0x018, "IRQ_ENABLE": 0x01C, "ERR_COUNT": 0x020,
    "ERR_DROPPED": 0x024, "ERR_HEAD0": 0x028, "ERR_HEAD1": 0x02C, "ERR_HEAD2": 0x030,
    "ERR_HEAD3": 0x034, "ERR_POP": 0x038, "CYCLE": 0x03C}
SPEC_POOL = {"ALLOC": 0x00, "FREE": 0x04, "BASE_LO": 0x08, "BASE_HI": 0x0C, "SLOT_SIZE": 0x10,
             "SLOTS": 0x14, "IN_USE": 0x18, "HIGH_WATER": 0x1C, "ALLOCS": 0x20, "FAILS": 0x24,
             "FREES": 0x28, "INFO": 0x2C, "FLUSH": 0x30, "FLUSHES": 0x34, "OVERWRITES": 0x38,
             "LOW_WATER": 0x3C}


@pytest.fixture(scope="module")
def sizes():
    return load_config(example_path("size_classes"))


def test_map_follows_the_spec(sizes):
    rmap = register_map(sizes)
    expected = dict(SPEC_GLOBALS)
    for p in range(3):
        expected.update({f"POOL{p}_{k}": 0x100 + 0x40 * p + o for k, o in SPEC_POOL.items()})
    assert {r.name: r.offset for r in rmap} == expected
    assert len({r.offset for r in rmap}) == len(rmap.registers)


def test_constant_registers(sizes):
    rmap = register_map(sizes)

    def value(name):
        return constant_value(sizes, rmap[name], __version__)
    assert value("ID") == 0x4857414C
    assert value("VERSION") == version_word(__version__) != 0
    assert value("CONFIG") == 8 | RECYCLE_DELAY << 8 | 8 << 16 | 3 << 20 | 16 << 24
    assert value("CONFIG2") == 40 | 16 << 8 | 2 << 16 | 8 << 24
    assert value("POOL1_BASE_LO") == 0x00010000 and value("POOL1_BASE_HI") == 0x10
    assert value("POOL2_SLOT_SIZE") == 4096 and value("POOL2_SLOTS") == 48
    assert value("POOL2_INFO") == 0b1100 and value("POOL0_INFO") == 0
    assert value("POOL0_IN_USE") is None


def test_c_header_compiles_and_agrees(sizes, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the toolchain (Verilator needs one)"
    (tmp_path / "hwalloc_sizes.h").write_text(emit_c_header(sizes))
    (tmp_path / "main.c").write_text('''
#include <stdio.h>
#include "hwalloc_sizes.h"
int main(void) {
    uint32_t h = HWALLOC_SIZES_HANDLE_MAKE(37, 5) | (1u << 31);
    printf("%u %u %u %u\\n", HWALLOC_SIZES_HANDLE_SLOT(h), HWALLOC_SIZES_HANDLE_TAG(h),
           HWALLOC_SIZES_HANDLE_OK(h), HWALLOC_SIZES_HANDLE_ERR(h));
    printf("%x %x %x\\n", HWALLOC_SIZES_POOL_ALLOC(2), HWALLOC_SIZES_POOL_FREE(1),
           HWALLOC_SIZES_ERR_HEAD0);
    printf("%x %u %u\\n", HWALLOC_SIZES_ERR_HEAD0_VALID_MASK, HWALLOC_SIZES_ERR_HEAD0_CODE_SHIFT,
           HWALLOC_SIZES_ERR_TAG_MISMATCH);
    printf("%llx %u\\n", HWALLOC_SIZES_POOL_MEDIUM_BASE, HWALLOC_SIZES_POOL_LARGE_SLOTS);
    return 0;
}
''')
    subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-std=c99", "-o", "main", "main.c"],
                   cwd=tmp_path, check=True)
    out = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:4] == ["37 5 1 0", "180 144 28", "80000000 20 7",
                                          "1000010000 48"]


def test_systemrdl_compiler_accepts_the_rdl(sizes, tmp_path):
    from systemrdl import RDLCompiler
    path = tmp_path / "hwalloc_sizes.rdl"
    path.write_text(emit_rdl(sizes))
    compiler = RDLCompiler()
    compiler.compile_file(str(path))
    root = compiler.elaborate()
    found = {reg.inst_name: reg.absolute_address for reg in root.top.registers()}
    assert found == {r.name: r.offset for r in register_map(sizes)}
    fields = {f.inst_name: (f.lsb, f.width) for f in root.top.get_child_by_name("ERR_HEAD0").fields()}
    assert fields["CODE"] == (20, 4) and fields["VALID"] == (31, 1)


def test_markdown_reference_lists_every_register(sizes):
    text = emit_markdown(sizes)
    for register in register_map(sizes):
        assert f"| 0x{register.offset:03X} | {register.name} |" in text
    assert "| 7 | TAG_MISMATCH |" in text and "### ERR_HEAD0" in text


def load_driver(config, tmp_path):
    path = tmp_path / f"{config.name}_driver.py"
    path.write_text(emit_python_driver(config))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_driver_over_a_fake_bus(sizes, tmp_path):
    driver = load_driver(sizes, tmp_path)
    rmap = register_map(sizes)
    words, writes = {rmap["POOL1_ALLOC"].offset: 1 << 31 | 3 << 19 | 9,
                     rmap["ERR_HEAD0"].offset: 0}, []

    def write32(offset, value):
        writes.append((offset, value))
        if offset == rmap["POOL1_FREE"].offset and value & 0x7FFFF != 9:
            raise driver.BusError("SLVERR")

    bus = driver.Driver(lambda offset: words.get(offset, 0), write32)
    handle = bus.alloc(1)
    assert (handle.ok, handle.err, handle.tag, handle.slot) == (True, 0, 3, 9)
    assert bus.address(1, handle) == 0x10_0001_0000 + 9 * 512
    assert bus.free(1, handle) is True
    assert bus.free(1, driver.Handle.make(10, 3)) is False
    assert writes[0] == (rmap["POOL1_FREE"].offset, handle.raw)
    assert bus.errors() == []
    assert set(bus.counters(0)) == {"IN_USE", "HIGH_WATER", "ALLOCS", "FAILS", "FREES", "FLUSHES",
                                    "OVERWRITES"}
    assert bus.flush(2) is True and writes[-1] == (rmap["POOL2_FLUSH"].offset, 1)


def test_python_driver_mmap_backend(sizes, tmp_path):
    """The board backend maps a register window; a plain file stands in for /dev/uio0."""
    driver = load_driver(sizes, tmp_path)
    window = tmp_path / "uio"
    window.write_bytes(bytes(mmap.PAGESIZE))
    backend = driver.MmapBackend(str(window), size=0x1000)
    try:
        backend.write32(0x104, 0xDEADBEEF)
        assert backend.read32(0x104) == 0xDEADBEEF
    finally:
        backend.close()
    assert window.read_bytes()[0x104:0x108] == (0xDEADBEEF).to_bytes(4, "little")


def run_regfile(config, body):
    m = Module()
    m.submodules.regs = regs = RegisterFile(config, depth=read_depth(config))
    sim = Simulator(m)
    sim.add_clock(1e-8)
    async def testbench(ctx):
        await body(ctx, regs)
    sim.add_testbench(testbench)
    sim.run()


def test_regfile_decode_unaligned_unmapped_and_read_only():
    """The register file on its own strobe bus: a request is a one-cycle pulse;
    its answer is an ``ack`` pulse a few cycles later, with data and error held."""
    config = load_config(example_path("event_region"))
    seen = []

    async def answer(ctx, ack, fields):
        for _ in range(config.latency + 8):
            await ctx.tick()
            if ctx.get(ack):
                return (1, *(ctx.get(field) for field in fields))
        return (0,) + (None,) * len(fields)

    async def body(ctx, regs):
        bus = regs.bus
        for addr in (0x000, 0x001, 0x003, 0x016, 0x040, 0x13F, 0xFFC, 0x104, 0x100):
            ctx.set(bus.r_req, 1)
            ctx.set(bus.r_req_parts, 0b11)          # (ARVALID and the room, whose AND r_req is)
            ctx.set(bus.r_addr, addr)
            await ctx.tick()
            ctx.set(bus.r_req, 0)
            ctx.set(bus.r_req_parts, 0)
            seen.append(("r", addr, *await answer(ctx, bus.r_ack, (bus.r_err, bus.r_data))))
        for addr, strb in ((0x000, 0xF), (0x01A, 0xF), (0x010, 0x3), (0x010, 0xF), (0x100, 0xF)):
            ctx.set(bus.w_req, 1)
            ctx.set(bus.w_addr, addr)
            ctx.set(bus.w_strb, strb)
            await ctx.tick()
            ctx.set(bus.w_req, 0)
            seen.append(("w", addr, *await answer(ctx, bus.w_ack, (bus.w_err,))))

    run_regfile(config, body)
    assert seen[:7] == [("r", 0x000, 1, 0, 0x4857414C), ("r", 0x001, 1, 1, 0), ("r", 0x003, 1, 1, 0),
                        ("r", 0x016, 1, 1, 0), ("r", 0x040, 1, 1, 0), ("r", 0x13F, 1, 1, 0),
                        ("r", 0xFFC, 1, 1, 0)]
    assert seen[7][2:] == (1, 0, 0)                      # FREE reads as 0, OKAY
    assert seen[8][2] == 0                               # ALLOC waits for the pipeline
    assert seen[9:] == [("w", 0x000, 1, 1), ("w", 0x01A, 1, 1), ("w", 0x010, 1, 1),
                        ("w", 0x010, 1, 0), ("w", 0x100, 1, 1)]


@pytest.mark.parametrize("name", ["event_region", "guarded_dma"])
def test_err_head0_never_shows_valid_without_its_entry(name):
    """ERR_HEAD0 read every cycle while an error enters the empty log, then
    while it is popped: whenever VALID is set, the fields are the entry's. (VALID
    came an edge before the entry's fields: software polling the log read VALID
    with every field 0 once in a few hundred errors.)"""
    config = load_config(example_path(name))
    registers = register_map(config)
    head0, pop = registers["ERR_HEAD0"].offset, registers["ERR_POP"].offset
    answers = []

    async def body(ctx, regs):
        bus = regs.bus
        ctx.set(bus.r_addr, head0)
        ctx.set(bus.w_addr, pop)
        ctx.set(bus.w_strb, 0xF)
        for cycle in range(60):
            ctx.set(bus.r_req, 1)                   # a read of ERR_HEAD0 every cycle
            ctx.set(bus.r_req_parts, 0b11)
            # an error enters at cycle 10 and is popped at cycle 30
            ctx.set(regs.rsp_freed_valid, cycle == 10)
            ctx.set(regs.rsp_freed_err, Err.NOT_ALLOCATED)
            ctx.set(regs.rsp_freed_in_pool, 1)
            ctx.set(regs.rsp_freed_addr, 0x1234)
            ctx.set(bus.w_req, cycle == 30)
            await ctx.tick()
            if ctx.get(bus.r_ack):
                answers.append(ctx.get(bus.r_data))

    run_regfile(config, body)
    valid = [word for word in answers if word >> 31]
    assert len(answers) > 50 and 10 < len(valid) < 30
    assert {((word >> 20) & 15, (word >> 28) & 7) for word in valid} == {(Err.NOT_ALLOCATED, Op.FREE)}
    assert answers[-1] == 0                         # popped


def test_readme_examples_use_only_generated_names():
    """The README's C and Python examples name things the collateral defines."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    config = load_config(example_path("event_region"))
    header = emit_c_header(config)
    c_block = re.search(r"```c\n(.*?)```", readme, re.S).group(1)
    for name in set(re.findall(r"HWALLOC_EVENT_\w+", c_block)):
        assert re.search(rf"#define {name}\b", header), name
    py_block = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    driver = emit_python_driver(config)
    for name in re.findall(r"from hwalloc_event_driver import (.*)", py_block)[0].split(", "):
        assert re.search(rf"^class {name}\b", driver, re.M), name
    for method in set(re.findall(r"core\.(\w+)\(", py_block)):
        assert f"def {method}(" in driver, method
