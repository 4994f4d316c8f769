"""hwalloc.memory's three-edge read that forwards the row written at the edge
that takes its address (``forward``), against a Python model of the rows:
what the freelist's split queue of a pool deeper than a bank relies on."""

import random

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from hwalloc import memory as memory_module
from hwalloc.memory import memory


@pytest.mark.parametrize("depth, bank_depth", [(12, 16), (40, 16)], ids=["one_bank", "banked"])
def test_forwarding_read_matches_the_rows(monkeypatch, depth, bank_depth):
    """Random registered writes and a read of a random row every cycle, half of
    them of the row the RAM takes a write of at that very edge; the gate on or
    off at random. Three edges after its address, the read returns the row as
    written up to and including that edge where the gate was on, else 0."""
    monkeypatch.setattr(memory_module, "BANK_DEPTH", bank_depth)
    m = Module()
    write, (read,) = memory(m, "t", 8, depth, reads=1, registered_write=True, late=(0,), forward=(0,))
    assert read.edges == 3
    rng = random.Random(depth)
    rows = [0] * depth
    counts = {"same_edge": 0, "gated_off": 0, "checked": 0}

    async def bench(ctx):
        given = None            # the write given before the last edge: the RAM takes it at the next
        reads = []              # (row, the rows as of the edge that took it)
        gates = []
        for edge in range(4000):
            if given is not None:
                rows[given[0]] = given[1]       # taken at this edge
            # half of the reads are of the row the RAM takes a write of at this edge
            row = given[0] if given is not None and rng.random() < 0.5 else rng.randrange(depth)
            counts["same_edge"] += given is not None and row == given[0]
            reads.append((row, list(rows)))
            gate = rng.random() < 0.8
            gates.append(gate)
            new = (rng.randrange(depth), rng.randrange(256)) if rng.random() < 0.7 else None
            ctx.set(write.en, new is not None)
            if new is not None:
                ctx.set(write.addr, new[0])
                ctx.set(write.data, new[1])
            ctx.set(read.addr, row)
            # the gate for the read taken two edges ago, registered at this edge
            ctx.set(read.gate, gates[-3] if len(gates) >= 3 else 1)
            await ctx.tick()
            given = new
            if len(reads) >= 3:
                (past_row, past_rows), past_gate = reads[-3], gates[-3]
                want = past_rows[past_row] if past_gate else 0
                assert ctx.get(read.data) == want, f"edge {edge}: row {past_row}"
                counts["checked"] += 1
                counts["gated_off"] += not past_gate

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(counts.values()), counts
