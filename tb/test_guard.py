"""cocotb bench of the access guard (SPEC §8), against the reference model.

The DMA engine is cocotbext-axi's AXI4 channel sources on ``s_axi`` (so that
every burst's ``len``, ``size``, ``burst`` and start are the bench's choice);
memory is cocotbext-axi's ``AxiRam`` on ``m_axi``; the native ports allocate,
free and flush the buffers the DMA uses (the native bench's random traffic);
an ``AxiLiteMaster`` pops the error log. Random stalls on all ten channels.

Every handshake on both sides is recorded at the edge it happens, and checked
at the end:

- each burst's verdict (forwarded or refused) is one the model gives for a
  state between the one after the requests accepted L cycles before its
  handshake and the one G cycles after it (SPEC §8: later requests may or may
  not be seen), and every refusal is logged, in order, with its code, op,
  pool, tag, address, AXI ID and cycle;
- ``m_axi`` sees exactly the forwarded bursts, in order, unchanged but for the
  tag bits, none before G cycles after its handshake, and exactly the W beats
  of the forwarded writes;
- per ID, responses come in request order: a forwarded read's beats are
  memory's beats, a refused read's are ``len`` + 1 zero beats with SLVERR and
  RLAST on the last; B is memory's or SLVERR;
- memory holds exactly what the forwarded writes wrote (a shadow copy built
  from the bench's own bursts), so a refused write never changed a byte.

Configured like ``tb/test_native.py`` (``HWALLOC_CONFIG``, ``HWALLOC_SEED``,
``HWALLOC_OPS``, ``HWALLOC_STATS``).
"""

import os
import random
from collections import defaultdict, deque

import cocotb
from cocotb.triggers import FallingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam
from cocotbext.axi.axi_channels import (AxiARSource, AxiARTransaction, AxiAWSource, AxiAWTransaction,
                                        AxiBSink, AxiRSink, AxiWSource, AxiWTransaction)

from hwalloc.config import load_config
from hwalloc.guard import GUARD_LATENCY
from hwalloc.model import Burst, Err, Op, judge_access, locate
from hwalloc.regs import register_map
from hwalloc.tb.coverage import guard_coverage
from hwalloc.tb.scoreboard import Mismatch
from hwalloc.tb.signals import int_reader
from hwalloc.tb.test_native import TB as Tb, _guarded

CONFIG = load_config(os.environ["HWALLOC_CONFIG"])
SEED = int(os.environ.get("HWALLOC_SEED", "1"))
OPS = int(os.environ.get("HWALLOC_OPS", "20000"))
MAP = register_map(CONFIG)
GUARD = CONFIG.guard
A, T = CONFIG.addr_width, CONFIG.tag_bits
DATA_BYTES = GUARD.data_bytes if GUARD else 4
#: The memory model's address bits at most (its size must fit a Python length)
RAM_BITS = 62
SLVERR = 2
#: The fields of each AXI4 channel that the bench records at every handshake.
ADDRESS_FIELDS = ("id", "addr", "len", "size", "burst", "lock", "cache", "prot", "qos")
CHANNEL_FIELDS = {"ar": ADDRESS_FIELDS, "aw": ADDRESS_FIELDS, "w": ("data", "strb", "last"),
                  "r": ("id", "data", "resp", "last"), "b": ("id", "resp")}
#: Bursts the DMA engine issues per test (the guard's share of a run).
BURSTS = min(max(OPS // 20, 300), 6000)


def beat_lanes(addr, length, size, burst):
    """Per beat of a legal burst: (address of its first byte, first lane, last
    lane), by AXI4's beat-address formulas."""
    nbytes = 1 << size
    aligned = addr & ~(nbytes - 1)
    beats = []
    for i in range(length + 1):
        if burst == Burst.FIXED:
            first = addr
        elif burst == Burst.WRAP:
            span = nbytes * (length + 1)
            boundary = addr - addr % span
            first = boundary + (addr - boundary + i * nbytes) % span
        else:
            first = addr if i == 0 else aligned + i * nbytes
        top = (first & ~(nbytes - 1)) + nbytes - 1
        beats.append((first, first % DATA_BYTES, top % DATA_BYTES))
    return beats


class Dma:
    """Picks bursts that reach every verdict, from the model's state."""

    def __init__(self, rng, model):
        self.rng, self.model = rng, model

    def _shape(self, room=None):
        rng = self.rng
        size = rng.randint(0, GUARD.max_size)
        roll = rng.random()
        if roll < 0.1:
            burst, length = Burst.FIXED, rng.randint(0, 7)
        elif roll < 0.25:
            burst, length = Burst.WRAP, rng.choice((1, 3, 7, 15))
        elif roll < 0.27:
            burst, length = 3, rng.randint(0, 3)         # reserved: refused
        else:
            burst = Burst.INCR
            length = rng.randint(0, 255) if rng.random() < 0.02 else rng.randint(0, 7)
        if room is not None:
            # keep an INCR burst inside ``room`` bytes most of the time
            while burst == Burst.INCR and length and (length + 1) << size > room and rng.random() < 0.9:
                length //= 2
        return length, size, burst

    def next(self):
        """(axi_addr, len, size, burst, write) of a new burst."""
        rng, model = self.rng, self.model
        write = rng.random() < 0.5
        held = [(p, s, t) for p, slots in enumerate(model.held) for s, t in slots.items()]
        roll = rng.random()
        tag = rng.getrandbits(T) if T else 0
        if held and roll < 0.65:
            pool_index, slot, tag = rng.choice(held)
            pool = CONFIG.pools[pool_index]
            length, size, burst = self._shape(room=pool.slot_size)
            if T and rng.random() < 0.1:
                tag ^= rng.randint(1, (1 << T) - 1)         # stale or forged
            # mostly a burst that fits (a DMA engine using its buffer)
            span = (length + 1) << size if burst == Burst.INCR else 1 << size
            start = pool.addr_of(slot) + rng.randrange(max(1, pool.slot_size - span + 1))
            if rng.random() < 0.7:
                start &= ~((1 << size) - 1)
        elif roll < 0.75:
            pool = rng.choice(CONFIG.pools)                 # any slot: free, held, near an end
            slot = rng.randrange(pool.slots)
            length, size, burst = self._shape(room=pool.slot_size)
            start = pool.addr_of(slot) + rng.randrange(pool.slot_size)
            if rng.random() < 0.3:
                start = pool.addr_of(slot) + pool.slot_size - rng.randint(1, 8)
            if T and slot in model.held[pool.index] and rng.random() < 0.7:
                tag = model.held[pool.index][slot]
        elif roll < 0.9 and CONFIG.regions:
            area = rng.choice(CONFIG.regions)
            length, size, burst = self._shape(room=area.size)
            start = area.base + rng.randrange(area.size)
        else:
            length, size, burst = self._shape()
            start = rng.getrandbits(A)                      # anywhere: mostly outside
        start %= 1 << A
        if burst == Burst.WRAP and rng.random() < 0.95:
            start &= ~((1 << size) - 1)                     # (else refused: unaligned)
        return (tag << A) | start, length, size, burst, write


class GuardBench:
    """Drives the DMA, records every handshake of both AXI4 ports per edge."""

    def __init__(self, dut, tb):
        self.dut, self.tb = dut, tb
        self.rng = random.Random(SEED * 7919 + 13)
        self.bench = tb.bench
        self.model = self.bench.scoreboard.model
        self.history = {}           # cycle -> per pool {slot: tag} after its handshakes
        s_bus, m_bus = AxiBus.from_prefix(dut, "s_axi"), AxiBus.from_prefix(dut, "m_axi")
        clk, rst = dut.aclk, dut.aresetn
        self.aw = AxiAWSource(s_bus.write.aw, clk, rst, reset_active_level=False)
        self.w = AxiWSource(s_bus.write.w, clk, rst, reset_active_level=False)
        self.b = AxiBSink(s_bus.write.b, clk, rst, reset_active_level=False)
        self.ar = AxiARSource(s_bus.read.ar, clk, rst, reset_active_level=False)
        self.r = AxiRSink(s_bus.read.r, clk, rst, reset_active_level=False)
        # (as large as a length may be: a 64-bit space wraps at 2**62, and the
        # shadow copy below keys its bytes the same way)
        self.ram = AxiRam(m_bus, clk, rst, reset_active_level=False, size=1 << min(A, RAM_BITS))
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst,
                                  reset_active_level=False)
        self.shadow = {}            # byte address -> value, from the forwarded writes
        # per side and channel: (cycle, fields) of every handshake
        self.readers = {}
        for side in ("s_axi", "m_axi"):
            for ch, fields in CHANNEL_FIELDS.items():
                for name in ("valid", "ready", *fields):
                    self.readers[f"{side}_{ch}{name}"] = int_reader(getattr(dut, f"{side}_{ch}{name}"))
        self.beats = {f"{side}_{ch}": [] for side in ("s_axi", "m_axi") for ch in CHANNEL_FIELDS}
        self.log = []               # guard entries popped from the error log
        self.dropped = 0

    def stall(self, on):
        """Random stalls on all ten channels (or none)."""
        rng = random.Random(self.rng.random())

        def pauses(p):
            while True:
                yield on and rng.random() < p
        for channel, p in ((self.aw, 0.2), (self.w, 0.2), (self.ar, 0.2), (self.b, 0.3), (self.r, 0.3),
                           (self.ram.write_if.aw_channel, 0.3), (self.ram.write_if.w_channel, 0.3),
                           (self.ram.write_if.b_channel, 0.3), (self.ram.read_if.ar_channel, 0.3),
                           (self.ram.read_if.r_channel, 0.3)):
            channel.set_pause_generator(pauses(p))

    def sample(self, cycle):
        """The handshakes of edge ``cycle`` (called between that edge's setup and it)."""
        get = self.readers
        for key, beats in self.beats.items():
            if get[f"{key}valid"]() and get[f"{key}ready"]():
                ch = key.rpartition("_")[2]
                beats.append((cycle, tuple(get[f"{key}{f}"]() for f in CHANNEL_FIELDS[ch])))

    def pending(self):
        """Bursts taken on s_axi and not yet answered."""
        reads = len(self.beats["s_axi_ar"]) - sum(f[3] for _, f in self.beats["s_axi_r"])
        return reads + len(self.beats["s_axi_aw"]) - len(self.beats["s_axi_b"])

    def snapshot(self, cycle):
        self.history[cycle] = [dict(held) for held in self.model.held]

    async def issue(self, count, gap):
        """``count`` bursts, with random idle cycles (up to ``gap``) between them."""
        dma = Dma(self.rng, self.model)
        for _ in range(count):
            axi_addr, length, size, burst, write = dma.next()
            axi_id = self.rng.getrandbits(GUARD.id_width)
            common = dict(len=length, size=size, burst=burst, lock=0, cache=self.rng.getrandbits(4),
                          prot=self.rng.getrandbits(3), qos=self.rng.getrandbits(4))
            if write:
                await self.aw.send(AxiAWTransaction(awid=axi_id, awaddr=axi_addr,
                                                    **{f"aw{k}": v for k, v in common.items()}))
                addr = axi_addr % (1 << A)
                lanes = (beat_lanes(addr, length, size, burst) if burst in (0, 1, 2)
                         else [(addr, 0, DATA_BYTES - 1)] * (length + 1))
                for i, (_, lo, hi) in enumerate(lanes):
                    strb = sum(1 << k for k in range(lo, hi + 1) if self.rng.random() < 0.9)
                    data = self.rng.getrandbits(8 * DATA_BYTES)
                    await self.w.send(AxiWTransaction(wdata=data, wstrb=strb, wlast=int(i == length)))
            else:
                await self.ar.send(AxiARTransaction(arid=axi_id, araddr=axi_addr,
                                                    **{f"ar{k}": v for k, v in common.items()}))
            for _ in range(self.rng.randint(0, gap)):
                await FallingEdge(self.dut.aclk)
            # a burst is chosen from the state when it is sent, not long before
            while self.aw.count() + self.ar.count() > 1:
                await FallingEdge(self.dut.aclk)

    async def pop_log(self, stop):
        """Pop the error log as software would, keeping the guard's entries."""
        head = [MAP[f"ERR_HEAD{k}"].offset for k in range(4)]
        while True:
            word0 = int.from_bytes((await self.axil.read(head[0], 4)).data, "little")
            if not word0 >> 31:
                if stop():
                    return
                continue
            words = [word0] + [int.from_bytes((await self.axil.read(head[k], 4)).data, "little")
                               for k in (1, 2, 3)]
            await self.axil.write(MAP["ERR_POP"].offset, (1).to_bytes(4, "little"))
            if (word0 >> 26) & 3 == 2:
                self.log.append(words)

    async def register(self, name):
        return int.from_bytes((await self.axil.read(MAP[name].offset, 4)).data, "little")

    # ---- the checks ------------------------------------------------------------------
    def check(self, *, lock_on=False):
        """Everything in the module docstring, over the recorded handshakes."""
        L, G = CONFIG.latency, GUARD_LATENCY
        cycle_base = self.bench.scoreboard.cycle_base
        # every s_axi burst in handshake order (AR before AW in one edge)
        bursts = sorted([(c, 0, f) for c, f in self.beats["s_axi_ar"]] +
                        [(c, 1, f) for c, f in self.beats["s_axi_aw"]])
        verdicts, locked = [], False
        expected_log = []
        counts = defaultdict(int)
        for cycle, write, all_fields in bursts:
            axi_id, axi_addr, length, size, burst = all_fields[:5]
            addr, tag = axi_addr % (1 << A), axi_addr >> A
            options = set()
            for seen in range(cycle - L, cycle + G + 1):
                held = self.history.get(seen)
                if held is None:
                    continue
                options.add(judge_access(CONFIG, held, addr=addr, tag=tag, length=length, size=size,
                                         burst=burst, write=bool(write), locked=locked))
            verdicts.append((cycle, write, axi_id, addr, tag, length, size, burst, options, all_fields))
        # refused = not on m_axi: match the forwarded ones in order, per direction
        forwarded = {0: deque(self.beats["m_axi_ar"]), 1: deque(self.beats["m_axi_aw"])}
        results = []
        for cycle, write, axi_id, addr, tag, length, size, burst, options, fields in verdicts:
            queue = forwarded[write]
            passed = False
            if queue:
                m_cycle, m_fields = queue[0]
                passed = m_fields == (axi_id, addr, *fields[2:])
            if passed and Err.OK not in options:
                raise Mismatch(m_cycle, f"{'write' if write else 'read'} burst at {addr:#x} (tag {tag}, "
                                        f"len {length}, size {size}, burst {burst}) forwarded",
                               None, f"refused: {sorted(e.name for e in options)}", "forwarded")
            if passed:
                queue.popleft()
                if m_cycle < cycle + G:
                    raise Mismatch(m_cycle, f"burst of edge {cycle} on m_axi after {m_cycle - cycle} "
                                            f"cycles (G = {G})", None, f">= {G}", m_cycle - cycle)
                err = Err.OK
            else:
                refusals = options - {Err.OK}
                if not refusals:
                    raise Mismatch(cycle, f"{'write' if write else 'read'} burst at {addr:#x} (tag {tag}, "
                                          f"len {length}, size {size}, burst {burst}) not forwarded",
                                   None, "forwarded", "refused or out of order")
                err = None          # its code comes from the log
                expected_log.append((cycle, write, axi_id, addr, tag, refusals))
            results.append(err)
            counts[(write, burst, err is None)] += 1
        for queue in forwarded.values():
            if queue:
                raise Mismatch(queue[0][0], "a burst on m_axi that no verdict forwarded", None,
                               "none", queue[0][1])
        # every refusal logged, in order, with its fields, but those a full log
        # counted in ERR_DROPPED (the native traffic here makes no errors)
        if len(self.log) + self.dropped != len(expected_log):
            raise Mismatch(None, "refusals logged + ERR_DROPPED", None, len(expected_log),
                           f"{len(self.log)} + {self.dropped}")
        expected = iter(expected_log)
        codes = []
        for w0, w1, w2, w3 in self.log:
            # the next refusal of that cycle and ID (those before it were dropped)
            match = next((e for e in expected if (e[0] - 1 - cycle_base) % 2**32 == w3 and e[2] == w2), None)
            if match is None:
                raise Mismatch(None, "a log entry of no refusal (or out of order)", None, "",
                               [hex(w) for w in (w0, w1, w2, w3)])
            cycle, write, axi_id, addr, tag, refusals = match
            pool = locate(CONFIG, addr)[0]
            got = {"code": (w0 >> 20) & 15, "op": (w0 >> 28) & 7, "pool": (w0 >> 8) & 0xFF,
                   "tag": w0 & 0xFF, "addr": w1, "id": w2, "cycle": w3}
            want = {"op": Op.WRITE_ACCESS if write else Op.READ_ACCESS,
                    "pool": 0xFF if pool is None else pool, "tag": tag, "addr": addr % 2**32,
                    "id": axi_id, "cycle": (cycle - 1 - cycle_base) % 2**32}
            if got["code"] not in refusals or any(got[k] != v for k, v in want.items()):
                raise Mismatch(cycle, "refusal's log entry", None, {**want, "code": sorted(refusals)}, got)
            codes.append(got["code"])
        self.check_responses(verdicts, results)
        self.check_memory(verdicts, results)
        return counts, codes, len(expected_log)

    def check_responses(self, verdicts, results):
        # the m side's answers per ID, in order
        # (R beats of different IDs may interleave: gathered per ID)
        def bursts_per_id(side):
            reads, beats = defaultdict(deque), defaultdict(list)
            for _, (rid, data, resp, last) in self.beats[f"{side}_r"]:
                beats[rid].append((data, resp))
                if last:
                    reads[rid].append(beats.pop(rid))
            writes = defaultdict(deque)
            for _, (bid, resp) in self.beats[f"{side}_b"]:
                writes[bid].append(resp)
            return reads, writes
        m_reads, m_writes = bursts_per_id("m_axi")
        # the s side's, per ID, in order
        s_reads, s_writes = bursts_per_id("s_axi")
        for (cycle, write, axi_id, addr, _tag, length, *_), err in zip(verdicts, results, strict=True):
            if write:
                got = s_writes[axi_id].popleft() if s_writes[axi_id] else None
                want = m_writes[axi_id].popleft() if err == Err.OK else SLVERR
            else:
                got = s_reads[axi_id].popleft() if s_reads[axi_id] else None
                want = m_reads[axi_id].popleft() if err == Err.OK else [(0, SLVERR)] * (length + 1)
            if got != want:
                raise Mismatch(cycle, f"{'B' if write else 'R'} of ID {axi_id}'s burst at {addr:#x} "
                                      f"({'forwarded' if err == Err.OK else 'refused'})", None, want, got)
        left = sum(map(len, s_reads.values())) + sum(map(len, s_writes.values()))
        if left:
            raise Mismatch(None, "responses to no burst", None, 0, left)

    def check_memory(self, verdicts, results):
        # W beats in AW order; the forwarded ones are exactly m_axi's W beats
        w_beats = deque(f for _, f in self.beats["s_axi_w"])
        passed = []
        for (_, write, _, addr, _, length, size, burst, *_), err in zip(verdicts, results, strict=True):
            if not write:
                continue
            mine = [w_beats.popleft() for _ in range(length + 1)]
            if err != Err.OK:
                continue
            passed.extend(mine)
            for (data, strb, _), (first, _, _) in zip(mine, beat_lanes(addr, length, size, burst),
                                                       strict=True):
                base = first - first % DATA_BYTES
                for lane in range(DATA_BYTES):
                    if strb >> lane & 1:
                        self.shadow[(base + lane) % self.ram.size] = data >> (8 * lane) & 0xFF
        if [f for _, f in self.beats["m_axi_w"]] != passed:
            raise Mismatch(None, "m_axi's W beats are the forwarded writes' beats", None,
                           len(passed), len(self.beats["m_axi_w"]))
        for address, value in self.shadow.items():
            got = self.ram.read(address, 1)[0]     # (wrapped as the RAM wraps it)
            if got != value:
                raise Mismatch(None, f"memory byte {address:#x}", None, value, got)


async def _setup(dut):
    tb = Tb(dut)
    guard = GuardBench(dut, tb)
    await tb.start()
    bench = tb.bench
    inner = bench.tick

    async def tick():
        # before the edge: the model after the last edge's handshakes
        guard.snapshot(bench.cycle - 1)
        await inner()
        guard.sample(bench.cycle + 1)

    bench.tick = tick
    return tb, guard


async def gentle_traffic(bench, rng, cycles):
    """Native allocs, frees and flushes that never fail but by EXHAUSTED (not
    logged), so that the error log holds the guard's refusals only: frees of
    held slots with their tags, flushes of transient pools."""
    model = bench.scoreboard.model
    transient = [p.index for p in CONFIG.pools if p.lifetime == "transient"]
    for _ in range(cycles):
        alloc = free = flush = None
        if rng.random() < 0.35:
            pool = rng.randrange(len(CONFIG.pools))
            alloc = (pool, rng.randint(1, CONFIG.pools[pool].slot_size), bench.user(rng.getrandbits(8)))
        held = [(p, s, t) for p in transient for s, t in model.held[p].items()]
        if held and rng.random() < 0.15:
            pool, slot, tag = rng.choice(held)
            free = (CONFIG.pools[pool].addr_of(slot), tag, bench.user(rng.getrandbits(8)))
        if transient and rng.random() < 0.002:
            flush = (rng.choice(transient), bench.user(5))
        await bench.step(alloc, free, flush)


async def _drain(tb, guard):
    """Idle until every burst is answered (the DMA's queues empty)."""
    for _ in range(20000):
        await tb.bench.step()
        idle = all(ch.idle() for ch in (guard.aw, guard.w, guard.ar))
        if idle and guard.pending() == 0:
            break


@cocotb.test(skip=GUARD is None)
async def test_guard_random(dut):
    """Random DMA bursts of every kind against live allocations, with stalls."""
    tb, guard = await _setup(dut)

    async def body():
        guard.stall(True)
        done = []
        popper = cocotb.start_soon(guard.pop_log(lambda: bool(done)))
        dma = cocotb.start_soon(guard.issue(BURSTS, gap=6))
        while not dma.done():
            await gentle_traffic(tb.bench, guard.rng, 64)
        await _drain(tb, guard)
        done.append(1)
        await popper
        guard.dropped = await guard.register("ERR_DROPPED")
        counts, codes, refused = guard.check()
        checks, refusals = await guard.register("GUARD_CHECKS"), await guard.register("GUARD_REFUSED")
        bursts = len(guard.beats["s_axi_ar"]) + len(guard.beats["s_axi_aw"])
        if (checks, refusals) != (bursts, refused):
            raise Mismatch(None, "GUARD_CHECKS, GUARD_REFUSED", None, (bursts, refused), (checks, refusals))
        tb.bench.stats.coverage.update(guard_coverage(counts, codes))
        dut._log.info("guard: %d bursts, %d refused (%d logged, %d dropped), codes %s", bursts, refused,
                      len(guard.log), guard.dropped, sorted(set(codes)))
        tb.bench.stats.ops += bursts

    await _guarded(tb, "guard_random", body)


async def _held_slots(tb, guard, count):
    """Allocate in rw pools (every pool, if none is rw) until about ``count``
    slots are held, leaving every pool a slot never held (a config of tiny
    pools would otherwise have none left to read and be refused); returns
    [(pool, slot, tag)] of those pools (the native side then stays idle)."""
    bench, rng = tb.bench, guard.rng
    pools = [p.index for p in CONFIG.pools if p.access == "rw"] or [p.index for p in CONFIG.pools]
    held = bench.scoreboard.model.held
    for _ in range(count * 4):
        # (the model holds a slot from its alloc's handshake: all but one)
        room = [p for p in pools if len(held[p]) < CONFIG.pools[p].slots - 1]
        await bench.step((rng.choice(room), 1, bench.user(1)) if room else None)
    await bench.drain()
    return [(p, s, t) for p in pools for s, t in held[p].items()]


def _writable(held):
    """The held slots a write may go to: those of rw pools."""
    return [(p, s, t) for p, s, t in held if CONFIG.pools[p].access == "rw"]


def _legal(guard, held, write, *, single=False):
    """A burst that fits in a held slot of a rw pool, with its tag (``single``:
    one beat)."""
    rng = guard.rng
    pool_index, slot, tag = rng.choice(held)
    pool = CONFIG.pools[pool_index]
    size = rng.randint(0, min(GUARD.max_size, pool.offset_bits))
    length = rng.randint(0, (pool.slot_size >> size) - 1) if rng.random() < 0.5 and not single else 0
    length = min(length, 15)
    start = pool.addr_of(slot) + (rng.randrange(pool.slot_size >> size) << size) % (
        pool.slot_size - ((length + 1) << size) + (1 << size))
    return (tag << A) | start, min(length, 255), size, Burst.INCR


async def _send(guard, axi_addr, length, size, burst, write, axi_id=0):
    common = dict(len=length, size=size, burst=burst, lock=0, cache=0, prot=0, qos=0)
    if write:
        guard.aw.send_nowait(AxiAWTransaction(awid=axi_id, awaddr=axi_addr,
                                              **{f"aw{k}": v for k, v in common.items()}))
        for i in range(length + 1):
            guard.w.send_nowait(AxiWTransaction(wdata=guard.rng.getrandbits(8 * DATA_BYTES),
                                                wstrb=(1 << DATA_BYTES) - 1, wlast=int(i == length)))
    else:
        guard.ar.send_nowait(AxiARTransaction(arid=axi_id, araddr=axi_addr,
                                              **{f"ar{k}": v for k, v in common.items()}))


async def _idle_until_answered(tb, guard):
    await _drain(tb, guard)
    for _ in range(4):
        await tb.bench.step()


@cocotb.test(skip=GUARD is None)
async def test_guard_line_rate(dut):
    """Without stalls: one AR and one AW taken every cycle, each on m_axi exactly
    G cycles after its handshake (single beats, which memory takes at that rate)."""
    tb, guard = await _setup(dut)

    async def body():
        guard.stall(False)
        held = await _held_slots(tb, guard, 8)
        if not held:
            raise Mismatch(None, "no slot held to read", None, ">0", 0)
        # (a config whose pools are all read-only has no legal write: reads only)
        writable = _writable(held)
        channels = ("ar", "aw") if writable else ("ar",)
        for _ in range(40):
            await _send(guard, *_legal(guard, held, False, single=True), write=False)
            if writable:
                await _send(guard, *_legal(guard, writable, True, single=True), write=True)
        await _idle_until_answered(tb, guard)
        for ch in channels:
            s_side, m_side = guard.beats[f"s_axi_{ch}"], guard.beats[f"m_axi_{ch}"]
            s_cycles = [c for c, _ in s_side]
            if len(s_side) != 40 or s_cycles != list(range(s_cycles[0], s_cycles[0] + 40)):
                raise Mismatch(None, f"{ch.upper()} taken one a cycle", None, "40 consecutive", s_cycles)
            delays = {m - s for (s, _), (m, _) in zip(s_side, m_side, strict=True)}
            if delays != {GUARD_LATENCY}:
                raise Mismatch(None, f"{ch.upper()}'s added latency G", None, {GUARD_LATENCY}, delays)
        beats = guard.beats["s_axi_r"]
        busy = sum(f[3] == 0 for _, f in beats)
        if any(f[2] for _, f in beats) or any(f[1] for _, f in guard.beats["s_axi_b"]):
            raise Mismatch(None, "legal bursts answered OKAY", None, "OKAY", "an error")
        counts, codes, refused = guard.check()
        if refused:
            raise Mismatch(None, "legal bursts refused", None, 0, refused)
        tb.bench.stats.ops += 40 * len(channels) + busy

    await _guarded(tb, "guard_line_rate", body)


@cocotb.test(skip=GUARD is None)
async def test_guard_lock(dut):
    """Degraded mode: with LOCK_ON_VIOLATION a refusal locks every write out
    (ACCESS_LOCKED, logged) while reads go on; writing 1 to LOCKED unlocks."""
    tb, guard = await _setup(dut)

    async def register_write(name, value):
        await guard.axil.write(MAP[name].offset, value.to_bytes(4, "little"))

    async def one(burst, write):
        await _send(guard, *burst, write=write)
        await _idle_until_answered(tb, guard)
        return (guard.beats["s_axi_b"] if write else guard.beats["s_axi_r"])[-1][1][-1 if write else 2]

    async def body():
        guard.stall(False)
        held = await _held_slots(tb, guard, 4)
        await register_write("GUARD_CTRL", 1)
        if await guard.register("GUARD_CTRL") != 1:
            raise Mismatch(None, "GUARD_CTRL reads back", None, 1, 0)
        # (with every pool read-only, no write is legal: the one sent while
        # locked goes to a held read-only slot, and none is sent unlocked,
        # where its refusal would lock the guard again)
        writable = _writable(held)
        legal_write, legal_read = _legal(guard, writable or held, True), _legal(guard, held, False)
        steps = []
        if writable:
            steps.append(("legal write, unlocked", await one(legal_write, True), 0))
        # a read of a slot never held: refused, and the guard locks
        free_slot = next((p, s) for p in range(len(CONFIG.pools)) for s in range(CONFIG.pools[p].slots)
                         if s not in tb.bench.scoreboard.model.held[p])
        pool = CONFIG.pools[free_slot[0]]
        steps.append(("read of a free slot", await one((pool.addr_of(free_slot[1]), 0, 0, Burst.INCR), False),
                      SLVERR))
        steps.append(("GUARD_STATUS.LOCKED", await guard.register("GUARD_STATUS"), 1))
        steps.append(("IRQ_STATUS ERROR|ACCESS", await guard.register("IRQ_STATUS") & 0x21, 0x21))
        steps.append(("legal write, locked", await one(legal_write, True), SLVERR))
        steps.append(("legal read, locked", await one(legal_read, False), 0))
        await register_write("GUARD_STATUS", 1)
        steps.append(("GUARD_STATUS after unlock", await guard.register("GUARD_STATUS"), 0))
        if writable:
            steps.append(("legal write, unlocked again", await one(legal_write, True), 0))
        await register_write("GUARD_CTRL", 0)
        wrong = [(what, want, got) for what, got, want in steps if got != want]
        if wrong:
            raise Mismatch(None, "degraded mode", None, [w[1] for w in wrong], wrong)
        # the log: the read's refusal, then the write's ACCESS_LOCKED
        entries = []
        while True:
            word0 = await guard.register("ERR_HEAD0")
            if not word0 >> 31:
                break
            entries.append(((word0 >> 20) & 15, (word0 >> 28) & 7))
            await register_write("ERR_POP", 1)
        if entries != [(Err.ACCESS_FREE, Op.READ_ACCESS), (Err.ACCESS_LOCKED, Op.WRITE_ACCESS)]:
            raise Mismatch(None, "log of degraded mode", None, "FREE read, LOCKED write", entries)
        tb.bench.stats.coverage["guard.ACCESS_LOCKED"] += 1
        tb.bench.stats.ops += 6

    await _guarded(tb, "guard_lock", body)
