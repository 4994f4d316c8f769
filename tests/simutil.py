"""Run the shared native bench on :class:`AllocatorCore` in Amaranth's simulator."""

import random

from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hwalloc.core import AllocatorCore
from hwalloc.tb.driver import NativeBench


#: Inputs of the core that carry a native pin as it is (see AllocatorCore).
PORT_COPIES = {"alloc_size": "alloc_port_size", "free_addr": "free_port_addr",
               "flush_valid": "flush_port_valid", "flush_pool": "flush_port_pool"}


def run_core(config, body, *, seed=1):
    """Simulate the core and run ``await body(bench, reset)`` as its testbench.

    ``reset(cycles)`` holds the core in reset for that many edges. Returns the bench.
    """
    m = Module()
    m.domains.sync = domain = ClockDomain()
    m.submodules.core = core = AllocatorCore(config)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    result = {}

    async def testbench(ctx):
        def set_port(name, value):
            ctx.set(getattr(core, name), value)
            # the core compares sizes and addresses straight from the native pins
            if name in PORT_COPIES:
                ctx.set(getattr(core, PORT_COPIES[name]), value)

        bench = NativeBench(config, recycle_delay=core.recycle_delay,
                            get=lambda name: ctx.get(getattr(core, name)),
                            set=lambda name, value: set_port(name, value),
                            tick=ctx.tick, rng=random.Random(seed), has_ready=False)

        async def reset(cycles=2):
            ctx.set(domain.rst, 1)
            await bench.reset_edge()
            for _ in range(cycles - 1):
                await bench.step()
            ctx.set(domain.rst, 0)
            bench.reset_released()

        result["bench"] = bench
        await body(bench, reset)

    sim.add_testbench(testbench)
    sim.run()
    return result["bench"]
