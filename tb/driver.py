"""A simulator-neutral driver for the native ports.

:class:`NativeBench` runs one edge at a time through three callables that the
cocotb and Amaranth benches provide: ``get(name) -> int``, ``set(name, value)``
and ``async tick()`` (return once the next rising edge has passed, with the
outputs that the edge after it will sample readable). Everything else (what to
send, what to expect, how to check) is shared, so both simulators run the very
same bench.
"""

from hwalloc.model import Flushed, Freed, Grant

from .scoreboard import Mismatch, Scoreboard, Stimulus

__all__ = ["NativeBench", "Channels"]


class NativeBench:
    """Drives requests, feeds the scoreboard, checks every edge.

    Parameters
    ----------
    config : :class:`hwalloc.config.Config`
    recycle_delay : int
    get, set, tick : the simulator bindings (see the module docstring)
    rng : random.Random
    has_ready : bool
        Whether ``alloc_ready``/``free_ready`` exist (the top) or not (the core).
    """

    def __init__(self, config, *, recycle_delay, get, set, tick, rng, has_ready=True, stats=None,
                 progress=None):
        self.config = config
        self.get, self.set, self.tick = get, set, tick
        self.rng = rng
        self.has_ready = has_ready
        self.scoreboard = Scoreboard(config, recycle_delay=recycle_delay, stats=stats)
        self.stimulus = Stimulus(config, self.scoreboard.model, rng)
        self.cycle = 0
        self.ready_checked = False
        self.last_grants = []
        self.last_freeds = []
        self.last_flusheds = []
        self._driven = {}
        self.progress = progress      # called with the bench every 4096 cycles
        self.registers = None         # register-side monitor (see tb/test_axil.py), if any

    def user(self, value):
        """A requester id that fits ``user_bits``."""
        return value % (1 << self.config.user_bits)

    @property
    def stats(self):
        return self.scoreboard.stats

    def _drive(self, name, value):
        if self._driven.get(name) != value:
            self.set(name, value)
            self._driven[name] = value

    def _sample(self):
        cfg, get = self.config, self.get
        grant = freed = None
        if get("grant_valid"):
            grant = Grant(ok=get("grant_ok"), err=get("grant_err"), pool=get("grant_pool"),
                          slot=get("grant_slot"), addr=get("grant_addr"),
                          tag=get("grant_tag") if cfg.tag_bits else 0, user=get("grant_user"),
                          # the core (no ready) shows whether the grant overwrote a
                          # held ring slot; the top shows it in its registers only
                          overwrote=None if self.has_ready else bool(get("grant_overwrite")))
        if get("freed_valid"):
            freed = Freed(ok=get("freed_ok"), err=get("freed_err"), user=get("freed_user"))
        flushed = None
        if get("flushed_valid"):
            flushed = Flushed(ok=get("flushed_ok"), err=get("flushed_err"), user=get("flushed_user"))
        return grant, freed, flushed

    async def step(self, alloc=None, free=None, flush=None, *, check_ready=True):
        """One edge: present ``alloc``/``free``/``flush`` (tuples or None); returns
        the alloc and free accepted and the grant and freed responses sampled at
        this edge (flushes are checked by the scoreboard; ``last_flusheds``)."""
        cfg = self.config
        grant, freed, flushed = self._sample()
        self.scoreboard.observe(self.cycle, grant=grant, freed=freed, flushed=flushed)
        if grant is not None:
            self.last_grants.append(grant)
        if freed is not None:
            self.last_freeds.append(freed)
        if flushed is not None:
            self.last_flusheds.append(flushed)
        self._drive("alloc_valid", int(alloc is not None))
        if alloc is not None:
            pool, size, user = alloc
            self._drive("alloc_pool", pool)
            self._drive("alloc_size", size)
            self._drive("alloc_user", user)
        self._drive("free_valid", int(free is not None))
        if free is not None:
            addr, tag, user = free
            self._drive("free_addr", addr)
            if cfg.tag_bits:
                self._drive("free_tag", tag)
            self._drive("free_user", user)
        self._drive("flush_valid", int(flush is not None))
        if flush is not None:
            self._drive("flush_pool", flush[0])
            self._drive("flush_user", flush[1])
        alloc_ready = free_ready = flush_ready = 1
        if self.has_ready:
            alloc_ready, free_ready = self.get("alloc_ready"), self.get("free_ready")
            flush_ready = self.get("flush_ready")
            if check_ready and self.ready_checked and not (alloc_ready and free_ready and flush_ready):
                raise Mismatch(self.cycle, "a ready low with only native traffic", None,
                               "ready 1/1/1", f"ready {alloc_ready}/{free_ready}/{flush_ready}")
        accepted_alloc = alloc if alloc is not None and alloc_ready else None
        accepted_free = free if free is not None and free_ready else None
        accepted_flush = flush if flush is not None and flush_ready else None
        # A ready low once the core is running: a register request has the pipeline.
        register_alloc = register_free = register_flush = None
        if self.registers is not None and self.ready_checked:
            if not alloc_ready:
                register_alloc = self.registers.alloc_entered(self.cycle)
            if not free_ready:
                register_free = self.registers.free_entered(self.cycle)
            if not flush_ready:
                register_flush = self.registers.flush_entered(self.cycle)
        await self.tick()
        if (accepted_alloc, accepted_free, accepted_flush, register_alloc, register_free,
                register_flush) != (None,) * 6:
            free_req, free_src, oor_pool = accepted_free, 0, None
            if register_free is not None:
                free_req, free_src, oor_pool = register_free["free"], 1, register_free["oor_pool"]
            grant, freed = self.scoreboard.handshake(
                self.cycle, alloc=accepted_alloc if register_alloc is None else register_alloc,
                free=free_req, flush=accepted_flush if register_flush is None else register_flush,
                alloc_src=int(register_alloc is not None), free_src=free_src,
                flush_src=int(register_flush is not None), free_oor_pool=oor_pool)
            if register_alloc is not None:
                self.registers.expect_alloc(grant)
            if register_free is not None:
                self.registers.expect_free(freed)
            if register_flush is not None:
                self.registers.expect_flush(self.scoreboard.last_flushed)
            if accepted_free is not None:
                self.stimulus.accepted(accepted_free, freed)
        self.cycle += 1
        if self.progress is not None and not self.cycle % 4096:
            self.progress(self)
        return accepted_alloc, accepted_free, grant, freed

    async def reset_edge(self):
        """The first edge with reset asserted: whatever it samples belongs to the
        old life; from here on no request in flight may answer."""
        self._drive("alloc_valid", 0)
        self._drive("free_valid", 0)
        self._drive("flush_valid", 0)
        await self.tick()
        self.cycle += 1
        model = self.scoreboard.model
        self.stimulus.before_reset = [(p, s, t) for p in range(len(self.config.pools))
                                      for s, t in model.held[p].items()]
        self.scoreboard.reset(self.cycle - 1)
        self.stimulus.recently_freed.clear()
        self.ready_checked = False

    def reset_released(self):
        """Reset is deasserted from the next edge on: CYCLE counts from the last
        edge that saw it asserted."""
        self.scoreboard.cycle_base = self.cycle - 1

    async def stale_pointers(self):
        """Right after a reset: present every pointer that was held before it,
        with its old tag, while allocations restart. Each must fail unless its
        slot was granted anew; the memories still hold the old state."""
        cfg = self.config
        for pool, slot, tag in list(self.stimulus.before_reset):
            alloc = (pool, 0, self.user(7)) if self.rng.random() < 0.5 else None
            await self.step(alloc, (cfg.pools[pool].addr_of(slot), tag, self.user(6)))

    async def idle(self, cycles):
        for _ in range(cycles):
            await self.step()

    async def wait_ready(self, limit=8):
        """After reset: ready must rise within ``limit`` cycles and then stay high."""
        for waited in range(limit + 1):
            if not self.has_ready or (self.get("alloc_ready") and self.get("free_ready")):
                self.ready_checked = True
                return waited
            await self.step(check_ready=False)
        raise Mismatch(self.cycle, f"ready still low {limit} cycles after reset", None, "1", "0")

    async def drain(self):
        """Idle until every outstanding request has been answered."""
        for _ in range(self.config.latency + 1):
            await self.step()
        if self.scoreboard.outstanding:
            raise Mismatch(self.cycle, "requests left unanswered", None, 0, self.scoreboard.outstanding)

    async def random_traffic(self, cycles, *, phases=("fill", "churn", "drain", "errors", "churn")):
        """Random traffic, cycling through ``phases``; each phase runs long
        enough to fill or drain the largest pool."""
        longest = max(p.slots for p in self.config.pools) * 2 + 16
        done = 0
        while done < cycles:
            for phase in phases:
                self.stimulus.phase = phase
                span = min(cycles - done, self.rng.randint(longest * 3 // 4, longest))
                for _ in range(span):
                    await self.step(*self.stimulus.next())
                done += span
                if done >= cycles:
                    break

    async def hold_all_but_one(self, pool_index, rounds):
        """Fill the pool, then release and regrant a single slot ``rounds``
        times: the tag of that slot wraps around once rounds > 2**tag_bits.
        A ring pool is gone round ``rounds`` times instead."""
        cfg, model = self.config, self.scoreboard.model
        pool = cfg.pools[pool_index]
        if pool.kind == "ring":
            # a ring never runs dry: go round it ``rounds`` times, overwriting
            for _ in range(rounds * pool.slots):
                await self.step((pool_index, 0, self.user(1)))
            return
        while len(model.held[pool_index]) < pool.slots:
            await self.step((pool_index, pool.slot_size, self.user(1)))
        await self.step((pool_index, 1, self.user(2)))            # EXHAUSTED
        slot = self.rng.randrange(pool.slots)
        for _ in range(rounds):
            tag = model.held[pool_index][slot]
            await self.step(None, (pool.addr_of(slot), tag, self.user(3)))
            for _ in range(self.scoreboard.model.recycle_delay - 1):
                await self.step((pool_index, 0, self.user(4)))     # still EXHAUSTED
            await self.step((pool_index, 0, self.user(5)))         # gets the slot back

    async def queue_at_full_speed(self, pool_index, cycles):
        """A freelist pool kept full: an alloc of it every cycle, and frees of
        its held slots in bursts of one to four on back-to-back cycles with
        gaps of zero to three, so that every released slot is granted again at
        the first commit that can pop it (its queue entry written at the very
        edge a pool deeper than a bank reads it, see hwalloc.freelist), with up
        to four entries in flight, round the queue's wrap many times."""
        model, rng = self.scoreboard.model, self.rng
        pool = self.config.pools[pool_index]
        while len(model.held[pool_index]) < pool.slots:
            await self.step((pool_index, 0, self.user(50)))
        burst = 0
        for _ in range(cycles):
            free = None
            if burst == 0 and rng.random() < 0.3:
                burst = rng.randint(1, 4)
            held = model.held[pool_index]
            if burst and held:
                burst -= 1
                slot = rng.choice(sorted(held))
                free = (pool.addr_of(slot), held[slot], self.user(51))
            await self.step((pool_index, 0, self.user(52)), free)
        await self.drain()

    async def free_at_every_distance(self, pool_index, distances=range(1, 9)):
        """A slot freed ``k`` cycles after the alloc that takes it, for every
        ``k`` in ``distances`` (its address and tag known at once, from the
        model, long before the grant is answered), then freed again ``j``
        cycles later (a double free) for every ``j``, and the tag presented
        wrong on every other round: each alloc and free in flight that the
        free check forwards (one to four older; a pool deeper than a bank
        reads its memories an edge earlier, see hwalloc.core free stage 0),
        at each distance. A persistent pool's frees answer CONTRACT."""
        cfg = self.config
        pool = cfg.pools[pool_index]
        for k in distances:
            for j in distances:
                _, _, grant, _ = await self.step((pool_index, 0, self.user(40)))
                if grant is None or not grant.ok:
                    continue                        # the pool is full: a later round frees it
                address, tag = pool.addr_of(grant.slot), grant.tag
                wrong = (tag + 1) % (1 << cfg.tag_bits) if cfg.tag_bits and (k + j) % 2 else tag
                for _ in range(k - 1):
                    await self.step()
                await self.step(None, (address, wrong, self.user(41)))
                for _ in range(j - 1):
                    await self.step()
                await self.step(None, (address, tag, self.user(42)))
        await self.drain()

    async def flush_restarts(self, pool_index, rounds):
        """Slot 0 granted on back-to-back cycles across flushes, the case in
        which a grant takes its tag from the grant one cycle older (still on
        its way to the slot's record): allocs each with a flush of their pool
        (each takes slot 0 again); and a freelist's queue head, slot 0 or
        another, granted in the cycle before an alloc with a flush. Each round
        ends with a flush, so the pool holds nothing after it."""
        cfg, model, rng = self.config, self.scoreboard.model, self.rng
        pool = cfg.pools[pool_index]

        def alloc(user):
            return (pool_index, 0, self.user(user))

        def flush(user):
            return (pool_index, self.user(user))
        for k in range(rounds):
            for _ in range(rng.randint(1, 4)):
                await self.step(alloc(31), None, flush(32))
            if pool.kind == "freelist":
                # every never-used slot taken, slot 0 (every other round another
                # slot, whose grant then lends slot 0 nothing) released into the
                # queue and waited for, then granted the cycle before a flush
                # with an alloc
                while len(model.held[pool_index]) < pool.slots:
                    await self.step(alloc(33))
                slot = rng.randrange(1, pool.slots) if k % 2 and pool.slots > 1 else 0
                await self.step(None, (pool.addr_of(slot), model.held[pool_index][slot], self.user(34)))
                await self.idle(model.recycle_delay)
                await self.step(alloc(35))
                await self.step(alloc(36), None, flush(37))
            await self.step(None, None, flush(38))
            await self.idle(cfg.latency)

    async def ring_races(self, pool_index, cycles):
        """A ring pool at full speed with frees racing its pointer: most cycles
        an alloc, and a free of a slot that the pointer reaches within the next
        four allocs, so that a free and the grant that reuses its slot are zero
        to four cycles apart, either way round; now and then a stale tag (the
        holder before an overwrite) and a flush."""
        cfg, rng, model = self.config, self.rng, self.scoreboard.model
        pool = cfg.pools[pool_index]
        for _ in range(cycles):
            alloc = (pool_index, 0, self.user(11)) if rng.random() < 0.85 else None
            free, held = None, model.held[pool_index]
            if held and rng.random() < 0.7:
                ahead = model.ring_next[pool_index]
                near = [slot for slot in held if (slot - ahead) % pool.slots < 4]
                slot = rng.choice(near or list(held))
                tag = held[slot] if rng.random() < 0.85 else (held[slot] - 1) % (1 << cfg.tag_bits)
                free = (pool.addr_of(slot), tag, self.user(12))
            flush = (pool_index, self.user(13)) if rng.random() < 0.01 else None
            await self.step(alloc, free, flush)

    async def ring_log(self, pool_index, cycles):
        """A log on a ring pool: a writer that allocates and never frees, beside
        a reader that frees the writer's entries in the order they were granted,
        sometimes keeping up and sometimes falling behind, so that the writer
        overwrites entries the reader has not read (whose frees then answer
        TAG_MISMATCH)."""
        rng = self.rng
        unread = []                  # (addr, tag) of the writer's grants, oldest first
        pace = 0.9
        for cycle in range(cycles):
            if cycle % 200 == 0:
                pace = rng.choice((0.3, 0.6, 0.9, 1.0))      # the reader's speed
            alloc = (pool_index, 1, self.user(21)) if rng.random() < 0.7 else None
            free = None
            if unread and rng.random() < pace:
                addr, tag = unread.pop(0)
                free = (addr, tag, self.user(22))
            _, accepted_free, grant, _ = await self.step(alloc, free)
            if free is not None and accepted_free is None:
                unread.insert(0, (free[0], free[1]))
            if grant is not None and grant.ok and grant.pool == pool_index and grant.user == self.user(21):
                unread.append((grant.addr, grant.tag))


class Channels:
    """N acquisition channels on one pool: each allocates, waits for its grant
    on the ports, holds the buffer for a random time, and frees exactly what
    it was granted. This is the seed's headline: zero failures, every grant at L.
    """

    def __init__(self, bench, *, pool, channels, hold=(1, 2000)):
        self.bench = bench
        self.pool = pool
        self.hold = hold
        self.idle = list(range(channels))
        self.waiting = set()
        self.holding = {}            # channel -> (release cycle, addr, tag)

    async def run(self, cycles):
        bench, rng = self.bench, self.bench.rng
        for _ in range(cycles):
            alloc = free = None
            if self.idle and rng.random() < 0.9:
                channel = self.idle.pop(rng.randrange(len(self.idle)))
                alloc = (self.pool, rng.randint(1, bench.config.pools[self.pool].slot_size), channel)
            due = [c for c, (at, _, _) in self.holding.items() if at <= bench.cycle]
            if due:
                channel = rng.choice(due)
                _, addr, tag = self.holding.pop(channel)
                free = (addr, tag, channel)
            accepted_alloc, accepted_free, grant, _ = await bench.step(alloc, free)
            if alloc is not None:
                if accepted_alloc is None:
                    self.idle.append(alloc[2])
                else:
                    self.waiting.add(alloc[2])
            if free is not None:
                if accepted_free is None:
                    self.holding[free[2]] = (bench.cycle, free[0], free[1])
                else:
                    self.idle.append(free[2])
            if grant is not None and grant.user in self.waiting:
                self.waiting.discard(grant.user)
                if grant.ok:
                    self.holding[grant.user] = (bench.cycle + rng.randint(*self.hold),
                                                grant.addr, grant.tag)
                else:
                    self.idle.append(grant.user)
