"""A watcher of the AXI4-Lite handshakes, shared by the register benches
(test_axil.py) and the throughput measurement (bench_axil.py)."""

import cocotb
from cocotb.triggers import RisingEdge

from .signals import int_reader

__all__ = ["Handshakes"]


class Handshakes:
    """The cycles of every handshake on the five channels, counted on rising edges."""

    CHANNELS = ("ar", "r", "aw", "w", "b")

    def __init__(self, dut):
        self.dut, self.cycle = dut, 0
        self.seen = {name: [] for name in self.CHANNELS}
        self.task = cocotb.start_soon(self._watch())

    @property
    def ars(self):
        return self.seen["ar"]

    @property
    def rs(self):
        return self.seen["r"]

    def clear(self):
        for cycles in self.seen.values():
            cycles.clear()

    async def _watch(self):
        ports = {name: (int_reader(getattr(self.dut, f"s_axil_{name}valid")),
                        int_reader(getattr(self.dut, f"s_axil_{name}ready")))
                 for name in self.CHANNELS}
        while True:
            await RisingEdge(self.dut.aclk)
            self.cycle += 1
            for name, (valid, ready) in ports.items():
                if valid() and ready():
                    self.seen[name].append(self.cycle)

    def latencies(self):
        """Per read, from its AR handshake to its R handshake."""
        return [r - a for a, r in zip(self.ars, self.rs, strict=True)]

    def write_latencies(self):
        """Per write, from the later of its AW and W handshakes to its B handshake."""
        aws, ws, bs = self.seen["aw"], self.seen["w"], self.seen["b"]
        return [b - max(aw, w) for aw, w, b in zip(aws, ws, bs, strict=True)]

    def span(self, name):
        """Cycles from the channel's first handshake to its last, both counted."""
        cycles = self.seen[name]
        return cycles[-1] - cycles[0] + 1

    def per_transaction(self, name):
        """Cycles per handshake on the channel, first to last."""
        return self.span(name) / len(self.seen[name])
