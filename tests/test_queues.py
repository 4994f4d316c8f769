"""The register interface's in-order queues (hwalloc._rtl) against a Python deque:
the flip-flop ShiftQueue and the LUT-RAM RamQueue that replaced it where place
and route found a shift queue's pop fanned out to every bit."""

import random
from collections import deque

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from hwalloc._rtl import RamQueue, ShiftQueue


@pytest.mark.parametrize("kind", [ShiftQueue, RamQueue])
@pytest.mark.parametrize("depth", [2, 3, 10, 17])
def test_queue_matches_a_deque(kind, depth):
    """Random pushes and pops (a push into a full queue only beside a pop, a pop
    only of a head): after every edge the head, its valid flag, ``at_limit`` and
    ``nearly_full`` are the deque's, including a push into an empty queue
    (the head at the next edge) and a push and pop in one cycle; and the next
    head each queue foretells, popped now or not, is the one it shows."""
    m = Module()
    queue = kind(m, 8, depth, "q")
    rng = random.Random(depth)
    model = deque()
    counts = {"push_pop": 0, "full": 0, "push_into_empty": 0}

    async def bench(ctx):
        for cycle in range(3000):
            # bursts of pushes, then of pops, so that the queue fills and drains
            phase = (cycle // (3 * depth)) % 2
            pop = bool(model) and rng.random() < (0.3 if phase == 0 else 0.8)
            push = (len(model) < depth or pop) and rng.random() < (0.8 if phase == 0 else 0.3)
            value = rng.randrange(256)
            ctx.set(queue.pop, pop)
            ctx.set(queue.push, push)
            ctx.set(queue.w_data, value)
            # what the queue says its next head will be, popped now or not
            # (the guard and the AXI adapter keep flags of it in registers)
            after_valid = ctx.get(queue.head_valid_after(pop))
            after_head = ctx.get(queue.head_after(pop)[1]) if kind is ShiftQueue else None
            counts["push_pop"] += push and pop
            counts["push_into_empty"] += push and not model
            if pop:
                model.popleft()
            if push:
                model.append(value)
            await ctx.tick()
            assert ctx.get(queue.head_valid) == bool(model), f"cycle {cycle}: head_valid"
            assert after_valid == bool(model), f"cycle {cycle}: head_valid_after"
            if model:
                assert ctx.get(queue.head) == model[0], f"cycle {cycle}: head"
                assert after_head in (None, model[0]), f"cycle {cycle}: head_after"
            assert ctx.get(queue.at_limit) == (len(model) == depth), f"cycle {cycle}: at_limit"
            assert ctx.get(queue.nearly_full) == (len(model) >= depth - 1), f"cycle {cycle}: nearly_full"
            counts["full"] += len(model) == depth

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # the cases that matter were all reached
    assert all(counts.values()), counts
