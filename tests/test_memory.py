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


@pytest.mark.parametrize("depth", [12, 33, 256], ids=["flops", "groups_last_of_one_row", "lutram_deepest"])
def test_memory_written_by_rows_matches_the_rows(depth):
    """A memory whose writer gives the rows (``write_rows``): in flip-flops a
    row at a time, deeper in LUT RAM groups a group at a time. Random writes,
    each with its row's or its group's one-hot, and two reads of random rows
    every cycle, each returning two edges after its address the rows as
    written before the edge that took it (the row written at that edge reads
    either value, as a RAM's)."""
    m = Module()
    write, reads = memory(m, "t", 1, depth, reads=2, write_rows=True)
    assert write.rows is not None and all(read.edges == 2 for read in reads)
    assert len(write.rows) == -(-depth // write.rows_of)
    rng = random.Random(depth)
    rows = [0] * depth
    checked = 0

    async def bench(ctx):
        nonlocal checked
        taken = []              # per edge: the rows each read asked for, and the rows as they were
        for edge in range(3000):
            asked = [rng.randrange(depth) for _ in reads]
            for read, row in zip(reads, asked, strict=True):
                ctx.set(read.addr, row)
            write_row = rng.randrange(depth) if rng.random() < 0.6 else None
            ctx.set(write.en, write_row is not None)
            if write_row is not None:
                value = rng.randrange(2)
                ctx.set(write.addr, write_row)
                ctx.set(write.rows, 1 << (write_row // write.rows_of))
                ctx.set(write.data, value)
            taken.append((asked, list(rows), write_row))
            await ctx.tick()
            if write_row is not None:
                rows[write_row] = value
            if len(taken) >= 2:
                past_asked, past_rows, past_write = taken[-2]
                for read, row in zip(reads, past_asked, strict=True):
                    if row != past_write:
                        assert ctx.get(read.data) == past_rows[row], f"edge {edge}: row {row}"
                        checked += 1

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert checked
