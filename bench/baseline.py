"""The classic design, for comparison only (not part of hwalloc): a bitmap of
allocated slots and a find-first-free priority encoder, one alloc and one free
per clock, as open-source ID pools do. It is not fixed-latency-proven, has no
tags and no FIFO order; it is here to show how resources and logic depth scale."""

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class BitmapAllocator(wiring.Component):
    def __init__(self, slots):
        self.slots = slots
        bits = max(1, (slots - 1).bit_length())
        super().__init__(wiring.Signature({
            "alloc_valid": In(1), "grant_valid": Out(1), "grant_ok": Out(1), "grant_slot": Out(bits),
            "free_valid": In(1), "free_slot": In(bits),
        }))

    def elaborate(self, platform):
        m = Module()
        used = Signal(self.slots)
        first = Signal(range(self.slots))
        found = Signal()

        # find-first-free: a priority encoder over the whole bitmap, as a tree
        def lowest_free(bits, offset):
            if len(bits) == 1:
                return ~bits[0], Const(offset, len(first))
            half = len(bits) // 2
            found_lo, index_lo = lowest_free(bits[:half], offset)
            found_hi, index_hi = lowest_free(bits[half:], offset + half)
            return found_lo | found_hi, Mux(found_lo, index_lo, index_hi)

        tree_found, tree_index = lowest_free(used, 0)
        m.d.comb += [found.eq(tree_found), first.eq(tree_index)]
        set_mask, clear_mask = Signal(self.slots), Signal(self.slots)
        with m.If(self.alloc_valid & found):
            m.d.comb += set_mask.eq(1 << first)
        with m.If(self.free_valid):
            m.d.comb += clear_mask.eq(1 << self.free_slot)
        m.d.sync += [used.eq((used | set_mask) & ~clear_mask),
                     self.grant_valid.eq(self.alloc_valid), self.grant_ok.eq(found),
                     self.grant_slot.eq(first)]
        return m
