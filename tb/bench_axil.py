"""cocotb measurement of the register interface (not a test: it records
figures). Run by bench/axil_throughput.py; writes JSON to HWALLOC_BENCH_OUT."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from hwalloc.config import load_config
from hwalloc.regs import register_map

CONFIG = load_config(os.environ["HWALLOC_CONFIG"])
MAP = register_map(CONFIG)


async def count_cycles(dut, run):
    """Cycles from the first to the last handshake of ``run``'s transactions."""
    cycles = 0
    done = Event()

    async def counter():
        nonlocal cycles
        while not done.is_set():
            await RisingEdge(dut.aclk)
            cycles += 1
    task = cocotb.start_soon(counter())
    await run()
    done.set()
    await task
    return cycles


@cocotb.test()
async def measure_register_interface(dut):
    Clock(dut.aclk, 10, unit="ns").start()
    for name in ("alloc_valid", "free_valid", "s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid"):
        getattr(dut, name).value = 0
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                           reset_active_level=False)
    await ClockCycles(dut.aclk, 4)
    n = 1000
    results = {}

    async def reads():
        events = [master.init_read(MAP["ID"].offset, 4) for _ in range(n)]
        for event in events:
            await event.wait()
    results["plain read"] = await count_cycles(dut, reads) / n

    async def writes():
        events = [master.init_write(MAP["IRQ_ENABLE"].offset, b"\x01\x00\x00\x00") for _ in range(n)]
        for event in events:
            await event.wait()
    results["plain write"] = await count_cycles(dut, writes) / n

    async def both():
        events = [master.init_read(MAP["ID"].offset, 4) for _ in range(n)]
        events += [master.init_write(MAP["IRQ_ENABLE"].offset, b"\x01\x00\x00\x00") for _ in range(n)]
        for event in events:
            await event.wait()
    results["read and write at once (per pair)"] = await count_cycles(dut, both) / n

    # a register ALLOC: from the AR handshake to the R handshake
    offset = MAP["POOL0_ALLOC"].offset
    latency = []
    for _ in range(8):
        cocotb.start_soon(master.read(offset, 4))
        while not (int(dut.s_axil_arvalid.value) and int(dut.s_axil_arready.value)):
            await RisingEdge(dut.aclk)
        await RisingEdge(dut.aclk)
        cycles = 1
        while not (int(dut.s_axil_rvalid.value) and int(dut.s_axil_rready.value)):
            await RisingEdge(dut.aclk)
            cycles += 1
        latency.append(cycles)
        await ClockCycles(dut.aclk, 4)
    results["register ALLOC, AR to R handshake"] = max(latency)
    results["register ALLOC, AR to R handshake (min)"] = min(latency)
    with open(os.environ["HWALLOC_BENCH_OUT"], "w") as f:
        json.dump({"config": CONFIG.name, "latency": CONFIG.latency, **results}, f)
