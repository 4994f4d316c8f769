"""cocotb bench of the AXI4-Lite register interface, against the reference model.

cocotbext-axi's AxiLiteMaster drives the bus; the generated Python driver (the
same one that runs on the board) talks to it. Every register request is checked
against the model at the edge it entered the pipeline (the cycle in which
``alloc_ready``/``free_ready`` is low), together with the native traffic of the
same cycle, so the model sees exactly the order the hardware saw.

Configured like ``tb/test_native.py`` (``HWALLOC_CONFIG``, ``HWALLOC_SEED``,
``HWALLOC_OPS``, ``HWALLOC_STATS``).
"""

import os
import random
import types
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from hwalloc import __version__
from hwalloc.collateral import emit_python_driver
from hwalloc.config import RECYCLE_DELAY, load_config
from hwalloc.model import Err
from hwalloc.regfile import PLAIN_READ, PLAIN_WRITE, REGISTER_EXTRA, read_depth
from hwalloc.regs import IRQ_MASK, LOW_WATER_BITS, constant_value, register_map
from hwalloc.tb.coverage import AXI_CHANNELS
from hwalloc.tb.driver import NativeBench
from hwalloc.tb.handshakes import Handshakes
from hwalloc.tb.scoreboard import Mismatch, earlier_failure
from hwalloc.tb.signals import int_reader, quiet_guard_ports

CONFIG = load_config(os.environ["HWALLOC_CONFIG"])
SEED = int(os.environ.get("HWALLOC_SEED", "1"))
OPS = int(os.environ.get("HWALLOC_OPS", "20000"))
#: Register transactions are slower to simulate than native requests; their
#: share of a long run is capped (the native benches carry the volume).
AXI_OPS = min(OPS, 40_000)
MAP = register_map(CONFIG)
#: A hung bus fails the test instead of hanging the run.
TIMEOUT_US = 200 + AXI_OPS // 2 + sum(p.slots for p in CONFIG.pools) // 4
TAG_MASK = (1 << CONFIG.tag_bits) - 1

DRIVER = types.ModuleType(f"{CONFIG.name}_driver")
exec(compile(emit_python_driver(CONFIG), DRIVER.__name__, "exec"), DRIVER.__dict__)


def handle_of(grant):
    return grant.ok << 31 | grant.err << 27 | grant.tag << 19 | grant.slot


class RegisterSide:
    """Follows the register requests the slave accepted, in order, and checks
    each answer against the model's response for the edge it entered at."""

    def __init__(self, tb):
        self.tb = tb
        self.reads = deque()          # addresses of accepted AR beats
        self.aws, self.ws = deque(), deque()
        self.expected_allocs, self.expected_frees, self.expected_flushes = deque(), deque(), deque()
        self.entered = 0
        self.ready_low = 0
        self.aw_beats = self.w_beats = 0
        self.orders = {"together": 0, "aw_first": 0, "w_first": 0}

    def sample(self, cycle):
        get = self.tb.get
        coverage = self.tb.bench.scoreboard.coverage
        for channel in AXI_CHANNELS:          # a stall: valid held while ready is low
            if get(f"s_axil_{channel}valid") and not get(f"s_axil_{channel}ready"):
                coverage.hit(f"axi_stall.{channel}")
        if get("s_axil_arvalid") and get("s_axil_arready"):
            self.reads.append(get("s_axil_araddr"))
        aw = get("s_axil_awvalid") and get("s_axil_awready")
        w = get("s_axil_wvalid") and get("s_axil_wready")
        if aw and w and self.aw_beats == self.w_beats:
            self.orders["together"] += 1
        elif aw and self.w_beats > self.aw_beats:
            self.orders["w_first"] += 1
        elif w and self.aw_beats > self.w_beats:
            self.orders["aw_first"] += 1
        if aw:
            self.aws.append(get("s_axil_awaddr"))
            self.aw_beats += 1
        if w:
            self.ws.append((get("s_axil_wdata"), get("s_axil_wstrb")))
            self.w_beats += 1

    def alloc_entered(self, cycle):
        self.ready_low += 1
        while self.reads:
            register = MAP.at(self.reads.popleft())
            if register is not None and register.kind == "ALLOC":
                self.entered += 1
                return (register.pool, CONFIG.pools[register.pool].slot_size, 0)
        raise Mismatch(cycle, "alloc_ready low with no register ALLOC accepted", None, None, None)

    def _command_entered(self, cycle, kind):
        """The next accepted write that takes the pipeline (a full-word FREE or
        FLUSH: the slave carries writes out one at a time, in order)."""
        self.ready_low += 1
        while self.aws and self.ws:
            register = MAP.at(self.aws.popleft())
            data, strb = self.ws.popleft()
            if register is not None and register.kind in ("FREE", "FLUSH") and strb == 0xF:
                if register.kind != kind:
                    break
                self.entered += 1
                return register, data
        raise Mismatch(cycle, f"{kind.lower()}_ready low with no register {kind} accepted next",
                       None, None, None)

    def free_entered(self, cycle):
        register, data = self._command_entered(cycle, "FREE")
        pool = CONFIG.pools[register.pool]
        slot, tag = data & 0x7FFFF, (data >> 19) & TAG_MASK
        addr = (pool.base + (slot << pool.offset_bits)) % 2**CONFIG.addr_width
        return {"free": (addr, tag, 0), "oor_pool": pool.index if slot >= pool.slots else None}

    def flush_entered(self, cycle):
        register, _ = self._command_entered(cycle, "FLUSH")
        return (register.pool, 0)

    def expect_alloc(self, grant):
        self.expected_allocs.append(grant)

    def expect_free(self, freed):
        self.expected_frees.append(freed)

    def expect_flush(self, flushed):
        self.expected_flushes.append(flushed)


class TB:
    def __init__(self, dut, *, seed_offset=0):
        self.dut = dut
        self.handles, self.readers = {}, {}
        self.rng = random.Random(SEED * 1000 + 100 + seed_offset)

        async def tick():
            await FallingEdge(dut.aclk)

        self.bench = NativeBench(CONFIG, recycle_delay=RECYCLE_DELAY, get=self.get, set=self.put,
                                 tick=tick, rng=self.rng)
        self.registers = RegisterSide(self)
        self.bench.registers = self.registers
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                                    reset_active_level=False)
        self.driver = DRIVER.AsyncDriver(self.read32, self.write32)
        self.native = None            # () -> (alloc, free) for the native ports, or None
        self.failure = None
        self.axi_ops = 0

    def get(self, name):
        reader = self.readers.get(name)
        if reader is None:
            reader = self.readers[name] = int_reader(getattr(self.dut, name))
        return reader()

    def put(self, name, value):
        handle = self.handles.get(name)
        if handle is None:
            handle = self.handles[name] = getattr(self.dut, name)
        handle.value = value

    # ---- the bus, for the generated driver ------------------------------------------
    async def read32(self, offset):
        response = await self.master.read(offset, 4)
        self.axi_ops += 1
        if response.resp != AxiResp.OKAY:
            raise DRIVER.BusError(f"read 0x{offset:03X}: {response.resp!r}")
        value = int.from_bytes(response.data, "little")
        register = MAP.at(offset)
        if register is not None and register.kind == "ALLOC":
            self.check_alloc(offset, value)
        return value

    async def write32(self, offset, value):
        response = await self.master.write(offset, value.to_bytes(4, "little"))
        self.axi_ops += 1
        register = MAP.at(offset)
        if register is not None and register.kind == "FREE":
            self.check_free(offset, value, response.resp)
        if register is not None and register.kind == "FLUSH":
            self.check_flush(offset, response.resp)
        # commands change what the model reports too
        monitor = self.bench.scoreboard.monitor
        if response.resp == AxiResp.OKAY and register is not None:
            if register.name == "IRQ_STATUS":
                monitor.irq_status &= ~value
            elif register.kind == "LOW_WATER":
                monitor.low_water[register.pool] = value & ((1 << LOW_WATER_BITS) - 1)
            elif register.name == "CTRL" and value & 1:
                monitor.clear()
            elif register.name == "ERR_POP":
                monitor.pop()
        if response.resp != AxiResp.OKAY:
            raise DRIVER.BusError(f"write 0x{offset:03X}: {response.resp!r}")

    def check_alloc(self, offset, value):
        self.check()                 # a native-side mismatch first: it stopped the edge loop
        expected = self.registers.expected_allocs.popleft()
        if value != handle_of(expected):
            self.fail(Mismatch(self.bench.cycle, f"register ALLOC at 0x{offset:03X}", offset,
                               f"handle 0x{handle_of(expected):08X} ({expected})", f"0x{value:08X}"))
        self.bench.stats.ops += 1
        if expected.ok:
            self.bench.stats.grants += 1
        else:
            self.bench.stats.failures[expected.err] += 1

    def check_flush(self, offset, resp):
        self.check()                 # a native-side mismatch first: it stopped the edge loop
        if not self.registers.expected_flushes:     # a partial-strobe FLUSH never entered
            return
        expected = self.registers.expected_flushes.popleft()
        want = AxiResp.OKAY if expected.ok else AxiResp.SLVERR
        if resp != want:
            self.fail(Mismatch(self.bench.cycle, "register FLUSH", offset, f"{want!r} ({expected})",
                               repr(resp)))
        self.bench.stats.ops += 1
        if not expected.ok:
            self.bench.stats.failures[expected.err] += 1

    def check_free(self, offset, value, resp):
        self.check()                 # a native-side mismatch first: it stopped the edge loop
        if not self.registers.expected_frees:       # a partial-strobe FREE never entered
            return
        expected = self.registers.expected_frees.popleft()
        want = AxiResp.OKAY if expected.ok else AxiResp.SLVERR
        if resp != want:
            self.fail(Mismatch(self.bench.cycle, f"register FREE of 0x{value:08X}", offset,
                               f"{want!r} ({expected})", repr(resp)))
        self.bench.stats.ops += 1
        if expected.ok:
            self.bench.stats.releases += 1
        else:
            self.bench.stats.failures[expected.err] += 1

    def fail(self, error):
        if self.failure is None:
            self.failure = error
        raise error

    # ---- clock, reset, and the per-edge native loop ---------------------------------
    async def start(self):
        dut = self.dut
        Clock(dut.aclk, 10, unit="ns").start()
        for name in ("alloc_valid", "free_valid", "alloc_pool", "alloc_size", "alloc_user",
                     "free_addr", "free_user", "flush_valid", "flush_pool", "flush_user") + \
                (("free_tag",) if CONFIG.tag_bits else ()):
            self.put(name, 0)
        quiet_guard_ports(dut, CONFIG)
        dut.aresetn.value = 0
        await FallingEdge(dut.aclk)
        await self.bench.reset_edge()
        for _ in range(3):
            await self.bench.step(check_ready=False)
        dut.aresetn.value = 1
        self.bench.reset_released()
        await self.bench.wait_ready(8)
        cocotb.start_soon(self._edges())

    async def _edges(self):
        try:
            while True:
                requests = self.native() if self.native else ()
                await self.bench.step(*requests, check_ready=False)
                self.registers.sample(self.bench.cycle)
        except Exception as error:        # reported by check() in the test itself
            if self.failure is None:
                self.failure = error

    def check(self):
        if self.failure is not None:
            raise self.failure

    async def cycles(self, n):
        for _ in range(n):
            await RisingEdge(self.dut.aclk)
        self.check()

    async def quiesce(self):
        """Native traffic off, register traffic done, every response in: counters
        now reflect every request (SPEC: accepted at least L+4 cycles before)."""
        self.native = None
        await self.master.wait()
        await self.cycles(CONFIG.latency + 6)

    async def check_registers(self):
        """Counters, log occupancy and interrupt causes against the model."""
        await self.quiesce()
        monitor = self.bench.scoreboard.monitor
        for pool in range(len(CONFIG.pools)):
            got = await self.driver.counters(pool)
            want = {"IN_USE": monitor.in_use[pool], "HIGH_WATER": monitor.high_water[pool],
                    "ALLOCS": monitor.allocs[pool], "FAILS": monitor.fails[pool],
                    "FREES": monitor.frees[pool], "FLUSHES": monitor.flushes[pool],
                    "OVERWRITES": monitor.overwrites[pool]}
            if got != want:
                self.fail(Mismatch(self.bench.cycle, f"pool {pool} counters", None, want, got))
        got = {"ERR_COUNT": await self.read32(MAP["ERR_COUNT"].offset),
               "ERR_DROPPED": await self.read32(MAP["ERR_DROPPED"].offset),
               "IRQ_STATUS": await self.read32(MAP["IRQ_STATUS"].offset)}
        want = {"ERR_COUNT": monitor.err_count, "ERR_DROPPED": monitor.err_dropped,
                "IRQ_STATUS": monitor.irq_status}
        if got != want:
            self.fail(Mismatch(self.bench.cycle, "log counters and IRQ_STATUS", None, want, got))
        self.check()

    async def check_log(self):
        """Drain the log through the driver; entry by entry against the model."""
        await self.quiesce()
        monitor = self.bench.scoreboard.monitor
        want = list(monitor.log)
        entries = await self.driver.errors(limit=CONFIG.error_log_depth + 1)
        got = [(e.code, e.op, e.source, e.pool, e.tag, e.info, e.user, e.cycle) for e in entries]
        want = [(e.code, e.op, e.source, e.pool, e.tag, e.info, e.user, e.cycle % 2**32)
                for e in want]
        if got != want:
            first = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w),
                         min(len(got), len(want)))
            self.fail(Mismatch(self.bench.cycle, f"error log entry {first} (of {len(want)})", None,
                               want[first:first + 2], got[first:first + 2]))
        return entries

    async def check_irq_pin(self):
        await self.cycles(2)
        status = await self.read32(MAP["IRQ_STATUS"].offset)
        enable = await self.read32(MAP["IRQ_ENABLE"].offset)
        await self.cycles(2)
        assert self.get("irq") == int(bool(status & enable)), \
            f"irq pin {self.get('irq')} with IRQ_STATUS {status:#x}, IRQ_ENABLE {enable:#x}"

    def record(self, test, failure=None):
        stats = self.bench.stats
        self.dut._log.info("%s: %s; %d AXI transactions; ready low %d cycles for %d register "
                           "requests", test, stats.summary(), self.axi_ops,
                           self.registers.ready_low, self.registers.entered)
        path = os.environ.get("HWALLOC_STATS")
        if path:
            import json
            with open(path, "a") as f:
                line = {"config": CONFIG.name, "test": test, "seed": SEED, **stats.to_dict()}
                if failure is not None:
                    line["mismatch"] = f"{type(failure).__name__}: {failure}"
                f.write(json.dumps(line) + "\n")


# ---- random register traffic ------------------------------------------------------------

async def axi_worker(tb, n, rng, held):
    """One master's worth of traffic: register ALLOC/FREE/FLUSH (good and bad) and
    reads. A failure is kept for the test to raise (a task's own exception would
    end the test before it records what failed)."""
    try:
        return await _axi_traffic(tb, n, rng, held)
    except Exception as error:
        if tb.failure is None:
            tb.failure = error
        return 0


async def _axi_traffic(tb, n, rng, held):
    pools = CONFIG.pools
    for _ in range(n):
        r = rng.random()
        pool = rng.randrange(len(pools))
        if r < 0.4:
            handle = await tb.driver.alloc(pool)
            if handle.ok:
                held.append((pool, handle))
        elif r < 0.7 and held:
            pool, handle = held.pop(rng.randrange(len(held)))
            await tb.driver.free(pool, handle)
            if rng.random() < 0.2:
                await tb.driver.free(pool, handle)                            # double free
        elif r < 0.72:
            await tb.driver.flush(pool)                                       # rare: empties the pool
            held[:] = [(p, h) for p, h in held if p != pool]
        elif r < 0.8:
            slot = rng.choice([rng.randrange(pools[pool].slots), pools[pool].slots + rng.randrange(9),
                               0x7FFFF])
            await tb.driver.free(pool, DRIVER.Handle.make(slot, rng.randrange(256)))  # bad handle
        else:
            register = rng.choice(MAP.registers)
            if register.readable and register.kind != "ALLOC":
                await tb.read32(register.offset)
    return n


async def run_workers(tb, workers, each):
    held = []
    tasks = [cocotb.start_soon(axi_worker(tb, each, random.Random(tb.rng.random()), held))
             for _ in range(workers)]
    for task in tasks:
        await task
    tb.check()
    return held


async def burst(tb, n, held, *, rate, hold=False):
    """``n`` register transactions started at once, reads and writes mixed, so
    that many are open on each channel: register ALLOCs, FREEs of ``held``
    handles (a grant joins it), plain reads of a constant, plain writes and
    refused ones. Every answer is checked, in request order: an ALLOC's handle
    and a FREE's response against the model. ``hold``: R and B are not taken
    at first, and more reads and writes come than the slave holds, so that it
    stalls AR, AW and W; then every channel goes back to stalling at ``rate``."""
    rng = random.Random(tb.rng.random())
    ident, low_water = MAP["ID"], MAP["POOL0_LOW_WATER"]
    # (register, value written or None)
    plan = [(ident, None), (low_water, 0)] * (read_depth(CONFIG) + 4) if hold else []
    for _ in range(n):
        kind = rng.choice(("alloc", "alloc", "free", "read", "write", "refused"))
        if kind == "free" and held:
            pool, handle = held.pop(rng.randrange(len(held)))
            plan.append((MAP[f"POOL{pool}_FREE"], handle.raw))
        elif kind == "alloc":
            plan.append((MAP[f"POOL{rng.randrange(len(CONFIG.pools))}_ALLOC"], None))
        elif kind in ("free", "read"):
            plan.append((ident, None))
        else:
            plan.append((low_water if kind == "write" else ident, 0))
    if hold:
        for channel in (tb.master.read_if.r_channel, tb.master.write_if.b_channel):
            channel.clear_pause_generator()
            channel.pause = True
    events = [tb.master.init_read(register.offset, 4) if value is None else
              tb.master.init_write(register.offset, value.to_bytes(4, "little"))
              for register, value in plan]
    if hold:
        await tb.cycles(len(plan) + CONFIG.latency + 8)
        set_stalls(tb, rate)
    results = await answered(events)
    tb.axi_ops += len(plan)
    for (register, value), result in zip(plan, results, strict=True):
        if register.kind == "FREE":
            tb.check_free(register.offset, value, result.resp)
        elif value is not None:
            want = AxiResp.OKAY if register.writable else AxiResp.SLVERR
            assert result.resp == want, f"write to {register.name}: {result.resp!r}, not {want!r}"
        else:
            word = int.from_bytes(result.data, "little")
            assert result.resp == AxiResp.OKAY, f"read of {register.name}: {result.resp!r}"
            if register.kind == "ALLOC":
                tb.check_alloc(register.offset, word)
                if word >> 31:
                    held.append((register.pool, DRIVER.Handle.decode(word)))
            else:
                assert word == constant_value(CONFIG, register, __version__), f"{register.name}: {word:#x}"


def nowhere(tb):
    """An address in no pool and no region: a native free of it is OUT_OF_RANGE."""
    return next(a for a in (2**CONFIG.addr_width - 1, 0, 2**CONFIG.addr_width // 2 + 1)
                if tb.bench.scoreboard.model.locate(a)[0] is None and
                not any(r.base <= a < r.end for r in CONFIG.regions))


class Aim:
    """The native side of :func:`test_interrupt_raised_as_it_is_cleared_survives`,
    one call a cycle: notes the irq pin and the write handshakes (the later of AW
    and W), and at the calls it is told presents a bad native free (an ERROR
    event) or starts a write-1-to-clear of IRQ_STATUS.ERROR."""

    def __init__(self, tb):
        self.tb, self.bad = tb, (nowhere(tb), 0, 0)
        self.n = 0
        self.pin = []
        self.aws = self.ws = 0
        self.writes = []          # call of each write's (later) handshake
        self.frees = []           # call of each bad free
        self.plan = {}            # call -> "free" or "clear"
        self.tasks = []

    def __call__(self):
        get, n = self.tb.get, self.n
        self.n += 1
        self.pin.append(get("irq"))
        # seen now, taken at the coming edge
        aws = self.aws + (get("s_axil_awvalid") & get("s_axil_awready"))
        ws = self.ws + (get("s_axil_wvalid") & get("s_axil_wready"))
        if min(aws, ws) > min(self.aws, self.ws):
            self.writes.append(n)
        self.aws, self.ws = aws, ws
        action = self.plan.pop(n, None)
        if action == "clear":
            self.tasks.append(cocotb.start_soon(
                self.tb.master.write(MAP["IRQ_STATUS"].offset, b"\x01\x00\x00\x00")))
        if action == "free":
            self.frees.append(n)
            return (None, self.bad)
        return (None, None)

    def first(self, level, since):
        """The first call from ``since`` on at which the pin read ``level``."""
        return next(i for i in range(since, len(self.pin)) if self.pin[i] == level)


class Saturate:
    """The native side of :func:`test_round_robin_beside_a_saturated_native_side`:
    an alloc and a (bad) free presented every cycle; notes each cycle's
    ``alloc_ready`` and ``free_ready``."""

    def __init__(self, tb, *, too_big=False):
        # (``too_big``: every alloc asks for more than a slot, TOO_BIG, and takes none)
        pool = CONFIG.pools[0]
        self.tb, self.free = tb, (nowhere(tb), 0, 0)
        self.alloc = (0, pool.slot_size + int(too_big), 0)
        self.readies = []

    def __call__(self):
        self.readies.append((self.tb.get("alloc_ready"), self.tb.get("free_ready")))
        return (self.alloc, self.free)

    def register_turns(self, port):
        """The cycles (calls) in which the register side had the ``port``."""
        index = ("alloc", "free").index(port)
        return [n for n, ready in enumerate(self.readies) if not ready[index]]


def set_stalls(tb, rate):
    def pauses():
        rng = random.Random(tb.rng.random())
        while True:
            yield rng.random() < rate
    channels = (tb.master.write_if.aw_channel, tb.master.write_if.w_channel,
                tb.master.write_if.b_channel, tb.master.read_if.ar_channel,
                tb.master.read_if.r_channel)
    for channel in channels:
        if rate:
            channel.set_pause_generator(pauses())
        else:
            channel.clear_pause_generator()
            channel.pause = False         # clearing the generator keeps its last value


async def _guarded(tb, name, body):
    if earlier_failure():
        return
    try:
        await body()
        tb.check()
    except Exception as error:
        tb.record(name, error)
        raise
    tb.record(name)


# ---- tests --------------------------------------------------------------------------------

@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_register_reset_values_and_access_rules(dut):
    """Every register's value after reset; SLVERR where SPEC §6 says, changing nothing."""
    tb = TB(dut)

    async def body():
        await tb.start()
        for register in MAP:
            if register.kind == "ALLOC":
                continue
            response = await tb.master.read(register.offset, 4)
            value = int.from_bytes(response.data, "little")
            assert response.resp == AxiResp.OKAY, register.name
            constant = constant_value(CONFIG, register, __version__)
            if constant is not None:
                assert value == constant, f"{register.name}: {value:#x} != {constant:#x}"
            elif register.name == "STATUS":
                assert value == 1, f"STATUS {value:#x}: READY, not BUSY"
            elif register.name == "CYCLE":
                assert value > 0
            else:
                assert value == 0, f"{register.name} after reset: {value:#x}"
        assert (await tb.read32(MAP["VERSION"].offset)) != 0
        # unmapped and read-only addresses
        mapped = {r.offset for r in MAP}
        for offset in [o for o in range(0, 0x1000, 4) if o not in mapped][::7] + [0xFFC]:
            read = await tb.master.read(offset, 4)
            assert read.resp == AxiResp.SLVERR and read.data == bytes(4), hex(offset)
            write = await tb.master.write(offset, b"\xff\xff\xff\xff")
            assert write.resp == AxiResp.SLVERR, hex(offset)
        for register in MAP:
            if register.access in ("RO", "RO_ALLOC"):
                write = await tb.master.write(register.offset, b"\x5a\x5a\x5a\x5a")
                assert write.resp == AxiResp.SLVERR, register.name
            if register.access == "WO":
                read = await tb.master.read(register.offset, 4)
                assert read.resp == AxiResp.OKAY and read.data == bytes(4), register.name
        # writing ALLOC allocated nothing; partial-strobe commands do nothing
        handle = await tb.driver.alloc(0)
        assert handle.ok and handle.slot == 0 and handle.tag == (1 & TAG_MASK)
        persistent = CONFIG.pools[0].lifetime == "persistent"
        for register in ("POOL0_FREE", "CTRL", "ERR_POP"):
            write = await tb.master.write(MAP[register].offset + 1, b"\x01")    # wstrb 0b0010
            assert write.resp == AxiResp.SLVERR, register
            write = await tb.master.write(MAP[register].offset, handle.raw.to_bytes(4, "little")[:2])
            assert write.resp == AxiResp.SLVERR, register
        await tb.check_registers()                     # IN_USE still 1, ALLOCS 1
        # byte strobes on IRQ_ENABLE
        await tb.master.write(MAP["IRQ_ENABLE"].offset + 1, b"\x07")
        assert await tb.read32(MAP["IRQ_ENABLE"].offset) == 0
        await tb.master.write(MAP["IRQ_ENABLE"].offset, b"\x05")
        assert await tb.read32(MAP["IRQ_ENABLE"].offset) == 5
        await tb.check_irq_pin()
        # ... and on LOW_WATER ([16:0]: bit 16 is the low bit of byte 2), whose
        # unused bits read 0
        low_water = MAP["POOL0_LOW_WATER"].offset
        await tb.master.write(low_water, b"\xff\xff\xff\xff")
        assert await tb.read32(low_water) == 0x1FFFF
        await tb.master.write(low_water, b"\x34\x12")                     # wstrb 0b0011
        assert await tb.read32(low_water) == 0x11234
        await tb.write32(low_water, 0)
        assert await tb.driver.free(0, handle) != persistent     # a persistent pool: CONTRACT
        await tb.check_registers()
    await _guarded(tb, "register_map", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_register_alloc_and_free_against_model(dut):
    """Exhaustion, double free, stale tag, out-of-range slot; counters, log, IRQ pin."""
    tb = TB(dut, seed_offset=1)

    async def body():
        await tb.start()
        await tb.driver.enable_irq(IRQ_MASK)
        for pool, info in enumerate(CONFIG.pools):
            # LOW_WATER: raised by the grant that leaves fewer than this not held
            # (the model says when; check_registers compares IRQ_STATUS)
            low = min(info.slots, 3 + pool)
            await tb.driver.set_low_water(pool, low)
            await tb.check_registers()
            # a large pool is filled from the native side first (one a cycle)
            prefill = max(0, info.slots - 16)
            requests = iter([(pool, 1, tb.bench.user(9))] * prefill)
            tb.native = lambda requests=requests: (next(requests, None), None)
            while tb.bench.scoreboard.model.in_use(pool) < prefill:
                await tb.cycles(64)
            tb.native = None
            handles = []
            for _ in range(info.slots - prefill + 2):        # two EXHAUSTED at the end
                handles.append(await tb.driver.alloc(pool))
                if len(handles) == info.slots - prefill - low:
                    await tb.check_registers()          # as many left as LOW_WATER: not raised yet
            if info.kind == "ring":
                # round the ring: the last two grants overwrite slots 0 and 1
                assert [(h.ok, h.slot) for h in handles] == \
                    [(1, s % info.slots) for s in range(prefill, info.slots + 2)]
                await tb.check_registers()                  # OVERWRITES, IRQ_STATUS.OVERWRITE
                await tb.check_irq_pin()
                holder = handles[-2]
                stale = DRIVER.Handle.make(holder.slot, (holder.tag - 1) % (1 << CONFIG.tag_bits))
                assert not await tb.driver.free(pool, stale)                   # TAG_MISMATCH
                assert await tb.driver.free(pool, holder)
                assert not await tb.driver.free(pool, holder)                  # NOT_ALLOCATED
                assert (await tb.driver.alloc(pool)).ok                         # never EXHAUSTED
                assert await tb.driver.flush(pool)
                assert not await tb.driver.free(pool, handles[-1])             # NOT_ALLOCATED
                await tb.check_registers()
                await tb.check_log()
                await tb.check_irq_pin()
                await tb.driver.clear_irq()
                await tb.check_registers()
                continue
            assert [h.slot for h in handles[:-2]] == list(range(prefill, info.slots))
            assert [h.err for h in handles[-2:]] == [Err.EXHAUSTED] * 2
            await tb.check_registers()
            assert (await tb.driver.irq_status()) >> 4 & 1, "LOW_WATER not raised by a full pool"
            await tb.check_irq_pin()
            first = handles[0]
            if info.lifetime == "persistent":
                # never released: every free answers CONTRACT, and the pool stays full
                assert not await tb.driver.free(pool, first)
                assert not await tb.driver.free(pool, DRIVER.Handle.make(info.slots, 0))  # past the pool
                assert not await tb.driver.flush(pool)                           # CONTRACT
                assert (await tb.driver.alloc(pool)).err == Err.EXHAUSTED
                await tb.check_registers()
                await tb.check_log()
                await tb.check_irq_pin()
                await tb.driver.clear_irq()
                continue
            assert await tb.driver.free(pool, first)
            assert not await tb.driver.free(pool, first)                        # double free
            again = await tb.driver.alloc(pool)
            assert again.ok and again.slot == first.slot
            if CONFIG.tag_bits:
                assert not await tb.driver.free(pool, first)                    # stale tag
            assert not await tb.driver.free(pool, DRIVER.Handle.make(info.slots, 0))   # past the pool
            assert not await tb.driver.free(pool, DRIVER.Handle.make(0x7FFFF, 0))
            await tb.check_registers()
            await tb.check_log()
            await tb.check_irq_pin()
            for handle in [again] + handles[1:-2]:
                assert await tb.driver.free(pool, handle)
            # a flush releases what is held again, and leaves every handle stale
            regrants = [await tb.driver.alloc(pool) for _ in range(2)]
            assert await tb.driver.flush(pool)
            assert not await tb.driver.free(pool, regrants[0])                  # NOT_ALLOCATED
            await tb.check_registers()
            await tb.check_registers()
            await tb.driver.clear_irq()
            await tb.check_registers()
            await tb.check_irq_pin()
    await _guarded(tb, "register_alloc_free", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_stalls_on_every_channel_and_concurrent_masters(dut):
    """Random stalls on AW, W, B, AR, R; four masters' worth of traffic at once,
    and bursts with many transactions open on every channel."""
    tb = TB(dut, seed_offset=2)

    async def body():
        await tb.start()
        each = max(50, AXI_OPS // 40)
        for rate in (0.0, 0.3, 0.7):
            set_stalls(tb, rate)
            held = await run_workers(tb, 4, each)
            for k in range(4):
                await burst(tb, 24, held, rate=rate, hold=k % 2 == 1)
            await tb.check_registers()
            await tb.check_log()
            for pool, handle in held:
                await tb.driver.free(pool, handle)
        set_stalls(tb, 0)
        await tb.check_registers()
        orders = tb.registers.orders
        dut._log.info("write address/data order: %s", orders)
        assert all(orders.values()), f"AW and W were not seen in every order: {orders}"
    await _guarded(tb, "axi_stalls", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_native_and_register_traffic_together(dut):
    """Both sides at once: one order for the model, native latency exact, no starvation."""
    tb = TB(dut, seed_offset=3)

    async def body():
        await tb.start()
        set_stalls(tb, 0.2)
        for phase in ("fill", "churn", "errors", "drain", "churn"):
            tb.bench.stimulus.phase = phase
            tb.native = tb.bench.stimulus.next
            held = await run_workers(tb, 2, max(50, AXI_OPS // 40))
            if phase == "fill":
                # the native side goes on until a pool is exhausted, however fast
                # the register side was
                for _ in range(4 * max(pool.slots for pool in CONFIG.pools) // 64 + 1):
                    if tb.bench.stats.failures[Err.EXHAUSTED]:
                        break
                    await tb.cycles(64)
            tb.native = None
            await tb.check_registers()
            await tb.check_log()
            for pool, handle in held:
                await tb.driver.free(pool, handle)
        set_stalls(tb, 0)
        await tb.quiesce()
        await tb.bench.drain()
        side = tb.registers
        assert side.ready_low == side.entered, \
            f"ready low {side.ready_low} cycles for {side.entered} register requests"
        stats = tb.bench.stats
        assert stats.latency_min == stats.latency_max == CONFIG.latency
    await _guarded(tb, "native_and_axi", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_interrupt_raised_as_it_is_cleared_survives(dut):
    """An event in the very cycle that a write-1-to-clear of its IRQ_STATUS bit
    takes effect survives it (set wins, SPEC §6), else a driver loses an
    interrupt. The delays from a bad free to the pin's rise and from a W1C
    write's handshake to its fall are measured first; then events are aimed
    at the W1C cycle and at the cycles around it, and each outcome is checked."""
    tb = TB(dut, seed_offset=5)

    async def body():
        await tb.start()
        await tb.driver.enable_irq(1)           # the pin shows IRQ_STATUS.ERROR
        aim = tb.native = Aim(tb)
        await tb.cycles(2)

        async def plan(**at):
            start = aim.n + 2
            for action, offset in at.items():
                aim.plan[start + offset] = action
            await tb.cycles(max(at.values()) + 4)
            return start

        # the delays: event -> pin high, W1C handshake -> pin low
        start = await plan(free=0)
        await tb.cycles(CONFIG.latency + 12)
        rise = aim.first(1, start) - aim.frees[-1]
        start = await plan(clear=0)
        await tb.cycles(12)
        await aim.tasks[-1]
        fall = aim.first(0, start) - aim.writes[-1]
        issue = aim.writes[-1] - start          # from the start of the write to its handshake
        # the event whose set lands on the clear's edge: free + rise == write + fall
        aimed = issue + fall - rise
        seen = set()
        for offset in range(aimed - 2, aimed + 3):
            await plan(free=0)                  # the bit is set ...
            await tb.cycles(CONFIG.latency + 12)
            assert aim.pin[-1] == 1
            start = await plan(clear=max(0, -offset), free=max(0, offset))
            await tb.cycles(CONFIG.latency + 12)
            await aim.tasks[-1]
            lands = (aim.frees[-1] + rise) - (aim.writes[-1] + fall)   # 0: the same edge
            seen.add(lands)
            # an event before the clear is cleared; at or after it, it stays
            assert aim.pin[-1] == int(lands >= 0), \
                f"IRQ_STATUS.ERROR {aim.pin[-1]} after an event {lands:+} cycles from its clear"
            assert (await tb.driver.irq_status()) & 1 == int(lands >= 0)
        assert 0 in seen, f"no event landed on its clear's edge: {sorted(seen)}"
        tb.native = None
        await tb.quiesce()
        await tb.driver.clear_irq()             # back in step with the model
        await tb.check_registers()
        await tb.check_log()
    await _guarded(tb, "irq_set_wins", body)


async def answered(events):
    """The answers of cocotbext-axi transactions started with ``init_*``, in order."""
    for event in events:
        await event.wait()
    return [event.data for event in events]


async def responses(events):
    return [answer.resp for answer in await answered(events)]


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_register_reads_at_bus_speed(dut):
    """With a master that never stalls (SPEC §6): plain reads one a clock, each
    answered 3 cycles after its AR handshake; a register ALLOC answered L + 2
    cycles after its AR, and back-to-back ALLOCs one a clock, with the native
    side idle; reads after an ALLOC answered in order. Cycle counts in
    simulation are exact: asserted, not measured."""
    tb = TB(dut, seed_offset=6)

    async def body():
        await tb.start()
        await tb.cycles(4)
        watch = Handshakes(tb.dut)
        n = 32
        # plain reads, back to back
        events = [tb.master.init_read(MAP["ID"].offset, 4) for _ in range(n)]
        for event in events:
            await event.wait()
        ars, rs = watch.ars, watch.rs
        assert ars[-1] - ars[0] == n - 1, f"{n} plain reads' ARs over {ars[-1] - ars[0] + 1} cycles"
        assert rs[-1] - rs[0] == n - 1, f"{n} plain reads' Rs over {rs[-1] - rs[0] + 1} cycles"
        assert set(watch.latencies()) == {PLAIN_READ}, f"plain read latencies {set(watch.latencies())}"
        assert all(e.data.resp == AxiResp.OKAY for e in events)
        # register ALLOCs, back to back, then plain reads behind them
        pool = min(range(len(CONFIG.pools)), key=lambda p: -CONFIG.pools[p].slots)
        k = min(8, CONFIG.pools[pool].slots)
        watch.clear()
        allocs = [tb.master.init_read(MAP[f"POOL{pool}_ALLOC"].offset, 4) for _ in range(k)]
        plain = [tb.master.init_read(MAP["CONFIG"].offset, 4) for _ in range(4)]
        for event in allocs + plain:
            await event.wait()
        latency = CONFIG.latency + REGISTER_EXTRA
        assert watch.latencies()[:k] == [latency] * k, f"ALLOC latencies {watch.latencies()[:k]}"
        assert watch.ars[k - 1] - watch.ars[0] == k - 1
        handles = [int.from_bytes(e.data.data, "little") for e in allocs]
        assert all(h >> 31 for h in handles), [hex(h) for h in handles]
        for e in plain:
            assert int.from_bytes(e.data.data, "little") == constant_value(CONFIG, MAP["CONFIG"], __version__)
        # the model saw them as they entered: the expected handles in order
        for h in handles:
            tb.check_alloc(MAP[f"POOL{pool}_ALLOC"].offset, h)
        watch.task.kill()
        await tb.check_registers()
    await _guarded(tb, "reads_at_bus_speed", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_register_writes_at_bus_speed(dut):
    """With a master that never stalls (SPEC §6): plain writes one a clock, each
    answered 3 cycles after the later of its AW and W; register FREEs one a
    clock, each answered L + 2 cycles after it; then reads and writes at once,
    one of each a clock. Cycle counts in simulation are exact: asserted."""
    tb = TB(dut, seed_offset=7)

    async def body():
        await tb.start()
        await tb.cycles(4)
        watch = Handshakes(tb.dut)
        n = 32

        def one_a_clock(*channels):
            for name in channels:
                assert watch.span(name) == n, f"{n} {name.upper()} handshakes over {watch.span(name)} cycles"

        # plain writes, back to back: a LOW_WATER threshold written with its value (0, off)
        low_water = MAP["POOL0_LOW_WATER"].offset
        resps = await responses([tb.master.init_write(low_water, bytes(4)) for _ in range(n)])
        assert resps == [AxiResp.OKAY] * n, resps
        one_a_clock("aw", "w", "b")
        latencies = set(watch.write_latencies())
        assert latencies == {PLAIN_WRITE}, f"plain write latencies {latencies}"
        # register FREEs, back to back, of handles granted by register ALLOCs (of
        # the largest transient pool: a persistent pool's FREE answers CONTRACT)
        transient = [p for p in range(len(CONFIG.pools)) if CONFIG.pools[p].lifetime == "transient"]
        pool = max(transient or range(len(CONFIG.pools)), key=lambda p: CONFIG.pools[p].slots)
        released = AxiResp.OKAY if transient else AxiResp.SLVERR
        k = min(8, CONFIG.pools[pool].slots)
        alloc = MAP[f"POOL{pool}_ALLOC"].offset
        handles = [await tb.read32(alloc) for _ in range(k)]
        assert all(h >> 31 for h in handles), [hex(h) for h in handles]
        await tb.cycles(2)
        watch.clear()
        free = MAP[f"POOL{pool}_FREE"].offset
        events = [tb.master.init_write(free, (h & 0x7FFFFFFF).to_bytes(4, "little")) for h in handles]
        resps = await responses(events)
        for h, resp in zip(handles, resps, strict=True):
            tb.check_free(free, h & 0x7FFFFFFF, resp)
        assert resps == [released] * k, resps
        latency = CONFIG.latency + REGISTER_EXTRA
        assert watch.write_latencies() == [latency] * k, f"FREE latencies {watch.write_latencies()}"
        assert watch.span("b") == k, f"{k} FREEs answered over {watch.span('b')} cycles"
        # FREEs and plain writes interleaved, back to back: answered in order,
        # each with its own response (a write to ID is refused)
        handles = [await tb.read32(alloc) for _ in range(k)]
        writes = []
        for h in handles:
            writes += [(free, h & 0x7FFFFFFF), (MAP["ID"].offset, 0), (low_water, 0)]
        resps = await responses([tb.master.init_write(offset, value.to_bytes(4, "little"))
                                for offset, value in writes])
        for (offset, value), resp in zip(writes[::3], resps[::3], strict=True):
            tb.check_free(offset, value, resp)
        assert resps == [released, AxiResp.SLVERR, AxiResp.OKAY] * k, resps
        # reads and writes at once, both channels one a clock
        watch.clear()
        reads = [tb.master.init_read(MAP["ID"].offset, 4) for _ in range(n)]
        writes = [tb.master.init_write(low_water, bytes(4)) for _ in range(n)]
        resps = await responses(reads + writes)
        assert resps == [AxiResp.OKAY] * (2 * n), resps
        one_a_clock("ar", "r", "aw", "w", "b")
        assert set(watch.latencies()) == {PLAIN_READ}, f"plain read latencies {set(watch.latencies())}"
        latencies = set(watch.write_latencies())
        assert latencies == {PLAIN_WRITE}, f"plain write latencies {latencies}"
        watch.task.kill()
        await tb.check_registers()
    await _guarded(tb, "writes_at_bus_speed", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_round_robin_beside_a_saturated_native_side(dut):
    """Register ALLOCs back to back while the native side presents an alloc
    every cycle, then register FREEs back to back while it presents a free
    every cycle: the two sides take turns (SPEC §6, round robin), so each gets
    half the pipeline and neither starves; every answer is checked."""
    tb = TB(dut, seed_offset=8)

    async def body():
        await tb.start()
        # not the pool the native side fills (pool 0) if there is another one;
        # else the native side's allocs ask for too much and take no slot (how
        # many it would take before the register side's come depends on L and
        # the bus: a pool of 16 at L = 12 ran dry)
        others = range(1, len(CONFIG.pools)) or [0]
        pool = max(others, key=lambda p: CONFIG.pools[p].slots)
        slots = CONFIG.pools[pool].slots
        native = tb.native = Saturate(tb, too_big=pool == 0 and CONFIG.pools[0].kind != "ring")
        await tb.cycles(4)
        k = min(8, slots)
        alloc, free = (MAP[f"POOL{pool}_{name}"].offset for name in ("ALLOC", "FREE"))

        def alternate(port):
            turns = native.register_turns(port)
            assert len(turns) == k, f"{len(turns)} register {port}s entered of {k}"
            gaps = {b - a for a, b in zip(turns, turns[1:], strict=False)}
            # between two register turns, exactly one native one: half each
            assert gaps == {2}, f"register {port} turns {turns}: gaps {gaps}, not every other cycle"

        answers = await answered([tb.master.init_read(alloc, 4) for _ in range(k)])
        handles = [int.from_bytes(answer.data, "little") for answer in answers]
        for handle in handles:
            tb.check_alloc(alloc, handle)
        assert all(h >> 31 for h in handles), [hex(h) for h in handles]
        alternate("alloc")
        native.readies.clear()
        events = [tb.master.init_write(free, (h & 0x7FFFFFFF).to_bytes(4, "little")) for h in handles]
        for h, answer in zip(handles, await answered(events), strict=True):
            tb.check_free(free, h & 0x7FFFFFFF, answer.resp)
        alternate("free")
        tb.native = None
        await tb.check_registers()
    await _guarded(tb, "round_robin", body)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_error_log_overflow_pop_and_clear(dut):
    """More errors than the log holds: counted, dropped, LOG_OVERFLOW; pop; CTRL clear."""
    tb = TB(dut, seed_offset=4)

    async def body():
        await tb.start()
        await tb.driver.enable_irq(0x4)
        depth = CONFIG.error_log_depth
        bad = [(nowhere(tb), 0, tb.bench.user(u)) for u in range(depth + 5)]

        def errors():
            return (None, bad.pop()) if bad else (None, None)
        tb.native = errors
        await tb.cycles(depth + 10)
        await tb.check_registers()
        assert await tb.read32(MAP["ERR_DROPPED"].offset) == 5
        assert await tb.read32(MAP["IRQ_STATUS"].offset) & 0x5 == 0x5
        await tb.check_irq_pin()
        await tb.write32(MAP["ERR_POP"].offset, 0)
        head = await tb.read32(MAP["ERR_HEAD0"].offset)
        assert head >> 31 == 1 and (head >> 20) & 0xF == Err.OUT_OF_RANGE and (head >> 8) & 0xFF == 0xFF
        await tb.check_log()                                # depth - 1 entries, in order
        assert (await tb.read32(MAP["ERR_HEAD0"].offset)) >> 31 == 0
        handle = await tb.driver.alloc(0)
        await tb.driver.clear_counters()
        await tb.check_registers()                         # HIGH_WATER := IN_USE = 1
        assert await tb.read32(MAP["POOL0_HIGH_WATER"].offset) == 1
        await tb.driver.free(0, handle)
        await tb.driver.clear_irq()
        await tb.check_registers()
        await tb.check_irq_pin()
    await _guarded(tb, "error_log", body)
