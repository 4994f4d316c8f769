"""cocotb measurement of the register interface (not a test: it records
figures). Run by bench/axil_throughput.py; writes JSON to HWALLOC_BENCH_OUT."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from hwalloc.config import load_config
from hwalloc.regs import register_map
from hwalloc.tb.handshakes import Handshakes

CONFIG = load_config(os.environ["HWALLOC_CONFIG"])
MAP = register_map(CONFIG)


@cocotb.test()
async def measure_register_interface(dut):
    Clock(dut.aclk, 10, unit="ns").start()
    for name in ("alloc_valid", "free_valid", "flush_valid", "s_axil_awvalid", "s_axil_wvalid",
                 "s_axil_arvalid"):
        getattr(dut, name).value = 0
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                           reset_active_level=False)
    await ClockCycles(dut.aclk, 4)
    watch = Handshakes(dut)
    results = {}

    async def run(events):
        for event in events:
            await event.wait()
        await ClockCycles(dut.aclk, 2)
        return [event.data for event in events]

    def read(offset):
        return master.init_read(offset, 4)

    def write(offset, value):
        return master.init_write(offset, value.to_bytes(4, "little"))

    n = 1000
    low_water = MAP["POOL0_LOW_WATER"].offset
    watch.clear()
    await run([read(MAP["ID"].offset) for _ in range(n)])
    results["plain read"] = (watch.per_transaction("r"), max(watch.latencies()))
    watch.clear()
    await run([write(low_water, 0) for _ in range(n)])
    results["plain write"] = (watch.per_transaction("b"), max(watch.write_latencies()))
    watch.clear()
    await run([read(MAP["ID"].offset) for _ in range(n)] + [write(low_water, 0) for _ in range(n)])
    results["read and write at once"] = (max(watch.per_transaction("r"), watch.per_transaction("b")),
                                         max(max(watch.latencies()), max(watch.write_latencies())))
    # register ALLOCs back to back, then FREEs of their handles back to back
    pool = max(range(len(CONFIG.pools)), key=lambda p: CONFIG.pools[p].slots)
    k = min(64, CONFIG.pools[pool].slots)
    watch.clear()
    answers = await run([read(MAP[f"POOL{pool}_ALLOC"].offset) for _ in range(k)])
    results["register ALLOC"] = (watch.per_transaction("r"), max(watch.latencies()))
    handles = [int.from_bytes(answer.data, "little") & 0x7FFFFFFF for answer in answers]
    watch.clear()
    await run([write(MAP[f"POOL{pool}_FREE"].offset, handle) for handle in handles])
    results["register FREE"] = (watch.per_transaction("b"), max(watch.write_latencies()))
    watch.task.kill()
    with open(os.environ["HWALLOC_BENCH_OUT"], "w") as f:
        json.dump({"config": CONFIG.name, "latency": CONFIG.latency, **results}, f)
