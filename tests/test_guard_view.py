"""The guard's view of the slot state (AllocatorCore with a guard: view_pool,
view_slot -> view_held, view_next: the tag after the one it is held under) in
the Amaranth simulator, under the shared random traffic (flushes, rings,
overwrites, resets with requests in flight), against the model: wherever a
slot's state did not change over the last L cycles and the view's own delay,
the view must say exactly that state."""

import copy
import random

import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hwalloc.config import parse_config
from hwalloc.core import VIEWS, AllocatorCore
from hwalloc.guard import VIEW_STAGES
from hwalloc.tb.driver import NativeBench

from simutil import PORT_COPIES

CONFIGS = {
    "freelists": {"name": "v", "tag_bits": 2, "latency": 7, "addr_width": 16,
                  "pools": [{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 4},
                            {"name": "b", "base": 0x2000, "slot_size": 64, "slots": 5},
                            {"name": "c", "base": 0x3000, "slot_size": 32, "slots": 3,
                             "lifetime": "persistent"}],
                  "guard": {}},
    "ring_minimum_latency": {"name": "v", "tag_bits": 3, "latency": 6, "addr_width": 16,
                             "pools": [{"name": "r", "base": 0x1000, "slot_size": 16, "slots": 4,
                                        "kind": "ring"},
                                       {"name": "f", "base": 0x2000, "slot_size": 16, "slots": 6}],
                             "guard": {}},
    "no_tags_banked": {"name": "v", "tag_bits": 0, "latency": 8, "addr_width": 20,
                       "pools": [{"name": "big", "base": 0x40000, "slot_size": 4, "slots": 300}],
                       "guard": {}},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_the_view_follows_the_allocator(name):
    config = parse_config(CONFIGS[name])
    m = Module()
    m.domains.sync = domain = ClockDomain()
    m.submodules.core = core = AllocatorCore(config)
    rng = random.Random(name)
    history = []            # per cycle: the model's held slots after that cycle's handshakes
    asked = []              # per cycle and view: (pool, slot) asked, answered VIEW_STAGES cycles later
    answers = []

    async def testbench(ctx):
        def set_port(port, value):
            ctx.set(getattr(core, port), value)
            if port in PORT_COPIES:
                ctx.set(getattr(core, PORT_COPIES[port]), value)

        async def tick():
            questions = []
            for view in VIEWS:      # each view its own slot
                pool = rng.randrange(len(config.pools))
                slot = rng.randrange(config.pools[pool].slots)
                ctx.set(getattr(core, f"{view}_pool"), 1 << pool)
                ctx.set(getattr(core, f"{view}_slot"), slot)
                questions.append((pool, slot))
            await ctx.tick()
            asked.append(questions)
            answers.append([(ctx.get(getattr(core, f"{view}_held")), ctx.get(getattr(core, f"{view}_next")))
                            for view in VIEWS])
            history.append(copy.deepcopy(bench.scoreboard.model.held))

        bench = NativeBench(config, recycle_delay=core.recycle_delay,
                            get=lambda port: ctx.get(getattr(core, port)), set=set_port,
                            tick=tick, rng=rng, has_ready=False)
        ctx.set(domain.rst, 1)
        await bench.reset_edge()
        ctx.set(domain.rst, 0)
        bench.reset_released()
        await bench.random_traffic(2500)
        await bench.drain()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()

    window = config.latency + VIEW_STAGES + 1
    checked = 0
    for k in range(window, len(asked) - VIEW_STAGES - 1):
        for v, view in enumerate(VIEWS):
            pool, slot = asked[k][v]
            # the slot's states over the window: None (not held) or its tag
            states = {hist[pool].get(slot) for hist in history[k - window:k + VIEW_STAGES]}
            held, got_next = answers[k + VIEW_STAGES][v]
            got_tag = (got_next - 1) % (1 << config.tag_bits) if config.tag_bits else 0
            seen = None if not held else got_tag if config.tag_bits else 0
            # changed within the window: any state of it may be seen, but one of them
            # (not a record the view read before the grant that wrote it)
            assert seen in states, (f"cycle {k}: {view}: pool {pool} slot {slot}: the view says "
                                    f"{'held, tag %d' % got_tag if held else 'not held'}; "
                                    f"the model's states then: {states}")
            checked += len(states) == 1
    assert checked > 2000
