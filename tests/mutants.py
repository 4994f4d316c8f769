"""Mutation check: deliberate bugs put into the generator's source, one at a
time, to show the benches notice each of them.

A mutant is a text substitution in one module of the ``hwalloc`` package,
applied to a copy in memory: the product's source never holds an alternative.
Each substitution must match exactly once, so a refactor that moves the code
fails here loudly instead of leaving a mutant that silently mutates nothing.

    python tests/mutants.py [--formal] [NAME ...]     # prints the kill table

``tests/test_mutation.py`` runs every mutant through the benches in the suite.
With ``--formal`` the table also says which formal tasks (hwalloc.formal, on
its shipped L = 7 config, or the guard's tasks on its config for a guard's
mutant) kill each mutant; ``tests/test_formal.py`` runs a
few of those in the suite, since every one takes a while.
"""

import contextlib
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hwalloc import emit, kinds, memory, sim  # noqa: E402
from hwalloc.config import parse_config  # noqa: E402

#: Small enough to exhaust in a few cycles, two pools so the pool checks matter
#: and a persistent one for CONTRACT, a ring, tags that wrap quickly, a static
#: region for OUT_OF_RANGE.
CONFIG = {
    "name": "mutant", "latency": 7, "tag_bits": 2, "user_bits": 4, "addr_width": 16,
    "error_log_depth": 4,
    "pools": [{"name": "a", "base": 0x1000, "slot_size": 16, "slots": 4},
              {"name": "b", "base": 0x2000, "slot_size": 64, "slots": 5},
              {"name": "c", "base": 0x3000, "slot_size": 32, "slots": 2, "lifetime": "persistent"},
              {"name": "d", "base": 0x4000, "slot_size": 16, "slots": 4, "kind": "ring"}],
    "regions": [{"name": "boot", "base": 0x0, "size": 0x1000}],
}
OPS = 3000
#: The same with an access guard, for the guard's mutants (its benches only).
GUARD_CONFIG = {**CONFIG, "name": "mutant_guard",
                "guard": {"data_bytes": 4, "id_width": 2, "outside": "refuse"}}
GUARD_TESTS = ["test_guard_random", "test_guard_line_rate", "test_guard_lock"]


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str          # "core", "regfile", "axil", "guard" or a pool kind ("freelist", "ring")
    find: object         # a text, or a tuple of texts replaced pairwise by ``replace``
    replace: object
    what: str
    guarded: bool = False   # run on GUARD_CONFIG's guard benches
    # every memory built as RAM (memory.FLOP_DEPTH = 0). CONFIG's pools are small
    # enough for flip-flop parities, whose read of the row written at the same
    # edge returns the new value; a RAM returns the old one. The core is right
    # either way, but only a RAM (a larger pool's) needs free t-3's forwarding.
    ram: bool = False

    def edits(self):
        if isinstance(self.find, tuple):
            return list(zip(self.find, self.replace, strict=True))
        return [(self.find, self.replace)]


MUTANTS = [
    Mutant("latency_minus_one", "core",
           "for k in range(_ALLOC_DONE_STAGE + 1, cfg.latency):",
           "for k in range(_ALLOC_DONE_STAGE + 1, cfg.latency - 1):",
           "grants answered one cycle early"),
    Mutant("latency_plus_one", "core",
           "for k in range(_FREE_DONE_STAGE + 1, cfg.latency):",
           "for k in range(_FREE_DONE_STAGE, cfg.latency):",
           "frees answered one cycle late"),
    Mutant("forward_alloc1_dropped", "core",
           "hit_a1.eq(same_slot(a4_valid & a4_ok, a4_pool, a4_slot, f3_pool, f3_slot))",
           "hit_a1.eq(0)",
           "a free does not see the grant of the alloc one cycle older"),
    Mutant("forward_alloc2_dropped", "core",
           "hit_a2.eq(same_slot(a4_valid & a4_ok, a4_pool, a4_slot, f2_pool, f2_slot))",
           "hit_a2.eq(0)",
           "a free does not see the grant of the alloc two cycles older"),
    Mutant("forward_alloc3_dropped", "core",
           "hit_a3.eq(same_slot(a5_valid & a5_ok, a5_pool, a5_slot, f2_pool, f2_slot))",
           "hit_a3.eq(0)",
           "a free does not see the grant of the alloc three cycles older"),
    Mutant("forward_free1_dropped", "core",
           "released_f1.eq(release & same_slot(f4_go, f4_pool, f4_slot, f3_pool, f3_slot))",
           "released_f1.eq(0)",
           "a free does not see the release by the free one cycle older"),
    Mutant("forward_free2_dropped", "core",
           "rel_f2.eq(f3_same_second & f5_ok)",
           "rel_f2.eq(0)",
           "a free does not see the release by the free two cycles older"),
    Mutant("forward_free3_dropped", "core",
           "m.d.sync += f3_rel_f3.eq(rel_f3 | f2_rel_f4 if early else rel_f3)",
           "m.d.sync += f3_rel_f3.eq(rel_f3 | f2_rel_f4 if early else 0)",
           "a free does not see the release by the free three cycles older", ram=True),
    Mutant("tag_check_dropped", "core",
           "return equal(tag, presented) if T else Const(1)",
           "return Const(1)",
           "a stale pointer (wrong tag) frees the slot"),
    Mutant("never_granted_check_dropped", "core",
           "may_hold = ~f3_never_granted",
           "may_hold = Const(1)",
           "a never-granted slot is judged from uninitialised memory"),
    Mutant("lowest_free_order", "freelist",
           ("self.pop.eq(selected & ~flushing & ~self._has_fresh & self.nonempty)",
            "    def head_parts(self, select):"),
           ("self.pop.eq(selected & ~flushing & self.nonempty)",
            "    @property\n"
            "    def takes_fresh(self):\n"
            "        return (self._has_fresh | self.flushing) & ~(self.nonempty & ~self.flushing)\n\n"
            "    def head_parts(self, select):"),
           "released slots granted before never-used ones (lowest-free, not FIFO)"),
    Mutant("queue_count_not_decremented", "freelist",
           "up.eq(self.push), down.eq(self.pop),",
           "up.eq(self.push), down.eq(0),",
           "the released-slot count is not updated by a grant"),
    Mutant("allocs_counter_not_updated", "regfile",
           'c["ALLOCS"].eq(c["ALLOCS"] + ev["grant"])',
           'c["ALLOCS"].eq(c["ALLOCS"])',
           "the ALLOCS register never counts"),
    Mutant("log_wrong_code", "regfile",
           "free_entry = entry(self.rsp_freed_err, Op.FREE",
           "free_entry = entry(Mux(self.rsp_freed_err == Err.TAG_MISMATCH, Err.NOT_ALLOCATED, "
           "self.rsp_freed_err), Op.FREE",
           "a TAG_MISMATCH logged as NOT_ALLOCATED"),
    Mutant("flush_not_emptying_in_use", "regfile",
           'in_use.eq(Mux(ev["flush"], added, in_use + step))', "in_use.eq(in_use + step)",
           "IN_USE keeps counting the slots a flush released"),
    Mutant("slverr_dropped_unmapped_read", "regfile",
           "r_err.eq(~r2_found_in.any())",
           "r_err.eq(0)",
           "a read of an unmapped or unaligned address answers OKAY"),
    Mutant("persistent_free_accepted", "core",
           "Mux(f1_contract, Err.CONTRACT, Err.OK)", "Err.OK",
           "a free in a persistent pool is checked and released like any other"),
    Mutant("flush_lets_older_free_push", "core",
           "not_killed = ~(x1_select | x0_select) & Mux(f3_flushed, 0, Const(-1, len(pools)))",
           "not_killed = Const(-1, len(pools))",
           "a free older than a flush, deciding after it, still toggles and pushes its slot"),
    Mutant("flush_restarts_tags", "core",
           "a3_sel_last.eq(Mux(a2_ok & a2_from_fresh, a2_in & ever, 0))", "a3_sel_last.eq(0)",
           "a grant after a flush starts the slot's tags again at 1"),
    Mutant("flush_tag_forward_dropped", "core",
           "a3_fwd_ok.eq(a2_ok & a2_from_fresh & (1 if self._flush else a2_ring))", "a3_fwd_ok.eq(0)",
           "a grant after a flush takes the slot's last tag from memory only, missing grants in flight"),
    Mutant("flush_forward_queue_dropped", "core",
           "[select & head.zero for st in state", "[Const(0) for st in state",
           "a grant after a flush misses the tag of the grant one cycle older that took slot 0 "
           "from the queue"),
    Mutant("flush_forward_zero_ignored", "freelist",
           "zero.eq(~any_of(slot[:self.pool.slot_bits], chain=True))", "zero.eq(1)",
           "every queue entry says slot 0: a grant after a flush takes the tag of any queued "
           "grant one cycle older"),
    Mutant("tag_forward_gate_dropped", "core",
           "stale = a3_hit_a1 | a3_older_hit", "stale = Const(0)",
           "a grant after a flush ORs the tag forwarded from a grant in flight with its record's"),
    Mutant("ring_order_off_by_one", "ring",
           "(self.fresh == self.pool.slots - 2)", "(self.fresh == self.pool.slots - 3)",
           "a ring's pointer goes back to 0 one slot early"),
    Mutant("overwrite_not_counted", "regfile",
           'c["OVERWRITES"].eq(c["OVERWRITES"] + ev["overwrite"])', 'c["OVERWRITES"].eq(c["OVERWRITES"])',
           "a ring overwrite is not counted in OVERWRITES"),
    Mutant("ring_racing_free_writes", "core",
           "not_raced = ~f4_raced", "not_raced = Const(1)",
           "a free of a ring slot that the pointer granted again while the free was in flight "
           "still toggles its parity (the new grant then looks free)"),
    Mutant("ring_racing_free_no_cancel", "core",
           "a5_overwrite.eq(a4_prev_held & ~a4_released & ~(release & f4_taken_a4))",
           "a5_overwrite.eq(a4_prev_held & ~a4_released)",
           "a grant of a ring slot released by a free of the same cycle counts as an overwrite"),
    Mutant("slverr_dropped_partial_free", "regfile",
           "w_err.eq(~w2_plain & ~(w2_command & w2_full_word))",
           "w_err.eq(~w2_plain & ~w2_command)",
           "a command (FREE included) written with partial strobes answers OKAY"),
    Mutant("irq_clear_wins", "regfile",
           "m.d.sync += irq_status.eq((irq_status & ~w1c) | irq_set)",
           "m.d.sync += irq_status.eq((irq_status | irq_set) & ~w1c)",
           "an interrupt event in the cycle of a write-1-to-clear of its bit is lost"),
    Mutant("low_water_one_early", "regfile",
           "short.eq(in_use > below)",
           "short.eq(in_use >= below)",
           "LOW_WATER raised while exactly LOW_WATER slots are left"),
    Mutant("free_decode_blocks_shifted", "regfile",
           "pool_blocks = Const(sum(1 << ((POOL_BASE >> 6) + pool.index)",
           "pool_blocks = Const(sum(1 << ((POOL_BASE >> 6) + pool.index + 1)",
           "a register FREE or FLUSH is decoded in the next pool's block (the first pool's "
           "commands become plain writes)"),
    Mutant("free_not_round_robin", "regfile",
           "m.d.sync += native_turn.eq((self.req_free & self.native_free_valid) |",
           "m.d.sync += native_turn.eq(0 & (self.req_free & self.native_free_valid) |",
           "back-to-back register FREEs hold the native free port off (no round robin)"),
    Mutant("b_before_its_answer", "axil",
           "bvalid = w_kinds.head_valid & Mux(b_head_slow, w_slow.head_valid, w_fast.head_valid)",
           "bvalid = w_kinds.head_valid & (w_slow.head_valid | w_fast.head_valid)",
           "B given for the oldest write once any write is answered, FREEs' and plain writes' "
           "answers swapped"),
    # the access guard (SPEC §8)
    Mutant("guard_tag_check_dropped", "guard",
           "mismatch = Const(0) if not T else ~equal(presented_next[:T], view_next[:T])",
           "mismatch = Const(0)",
           "a burst with a stale or forged tag passes", guarded=True),
    Mutant("guard_held_check_dropped", "guard",
           ("Mux(in_pool_d & ~held, Err.ACCESS_FREE,", "(in_pool_d & (~held | mismatch))"),
           ("Mux(0, Err.ACCESS_FREE,", "(in_pool_d & mismatch)"),
           "a burst into a slot nobody holds passes (use after free)", guarded=True),
    Mutant("guard_bounds_one_beat_short", "guard",
           "last1.eq((addr0 | mask) + spread)", "last1.eq((addr0 | mask) + spread - mask - 1)",
           "the bounds check misses an INCR burst's last beat (one beat past a slot's end passes)",
           guarded=True),
    Mutant("guard_refused_write_forwarded", "guard",
           ("forward=~aw_refused", "Cat(~refused, side.entry)"),
           ("forward=Const(1)", "Cat(~refused | (d == \"aw\"), side.entry)"),
           "a refused write goes to memory (its AW and W beats forwarded)", guarded=True),
    Mutant("guard_refusal_not_logged", "regfile",
           "flags = Cat(free_err, flush_err, alloc_err, ar_refused, aw_refused)",
           "flags = Cat(free_err, flush_err, alloc_err, Const(0, 2))",
           "the guard's refusals never reach the error log (counted and raised only)", guarded=True),
]


def mutated_module(mutant):
    """The ``hwalloc.<module>`` module with the mutant's substitution, loaded fresh."""
    path = REPO / "hwalloc" / f"{mutant.module}.py"
    source = path.read_text()
    for find, replace in mutant.edits():
        found = source.count(find)
        if found != 1:
            raise AssertionError(f"mutant {mutant.name}: its text occurs {found} times in {path.name}, "
                                 "not once; update tests/mutants.py")
        source = source.replace(find, replace)
    module = types.ModuleType(f"hwalloc.{mutant.module}")
    module.__package__ = "hwalloc"
    exec(compile(source, f"<mutant {mutant.name}>", "exec"), module.__dict__)
    return module


#: A pool kind's module, and the class of it that the core builds (hwalloc.kinds)
_KIND_MODULES = {"freelist": "FreelistPool", "ring": "RingPool"}


def patched(mutant, *targets):
    """A context in which the generator uses ``mutant``'s module: its top (for
    ``core``, patched into each of ``targets``), register file or pool kind."""
    module = mutated_module(mutant)
    if mutant.module == "core":
        patches = [mock.patch.object(target, "HwallocTop", module.HwallocTop) for target in targets]
    elif mutant.module == "regfile":
        patches = [mock.patch("hwalloc.core.RegisterFile", module.RegisterFile)]
    elif mutant.module == "axil":
        patches = [mock.patch("hwalloc.core.AxiLiteAdapter", module.AxiLiteAdapter)]
    elif mutant.module == "guard":
        patches = [mock.patch("hwalloc.core.AccessGuard", module.AccessGuard)]
    else:
        kind = getattr(module, _KIND_MODULES[mutant.module])
        patches = [mock.patch.dict(kinds.KINDS, {mutant.module: kind})]
    stack = contextlib.ExitStack()
    for patch in patches:
        stack.enter_context(patch)
    return stack


def memories(mutant):
    """A context in which memories are built as ``mutant`` asks (``ram``)."""
    return mock.patch.object(memory, "FLOP_DEPTH", 0 if mutant.ram else memory.FLOP_DEPTH)


def mutant_verilog(config, mutant):
    with patched(mutant, emit), memories(mutant):
        return emit.emit_verilog(config)


def run_mutant(mutant, work, cache):
    """Build the mutant and run every bench. Returns ``(killed, by)``: ``by``
    names the first bench test that failed and how."""
    raw = GUARD_CONFIG if mutant.guarded else CONFIG
    config = parse_config(raw)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "mutant.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    # quick: a mutant's bench is short, and its build is most of its time
    build_dir = sim.build(config, verilog=mutant_verilog(config, mutant), cache=cache,
                          log=lambda text: None, quick=True)
    stats = work / "stats.jsonl"
    stats.unlink(missing_ok=True)
    try:
        sim.run_bench(config, config_path, build_dir, ops=OPS, stats_file=stats,
                      testcase=GUARD_TESTS if mutant.guarded else None,
                      results_xml=work / "results.xml", log_file=work / "sim.log", test_dir=work,
                      first_failure=True)
    except SystemExit:
        entries = [json.loads(line) for line in stats.read_text().splitlines()] if stats.exists() else []
        failing = [e for e in entries if "mismatch" in e]
        if failing:
            first = failing[0]["mismatch"].splitlines()[0]
            return True, f"{failing[0]['test']}: {first}"
        return True, "a bench did not complete (see its log)"
    return False, "every bench passed"


def formal_kills(mutant, work):
    """The formal tasks that fail on ``mutant`` (shipped L = 7 config), with the
    properties they report."""
    from hwalloc import formal
    patch = patched(mutant, formal)
    # a guard's mutant: the guard's harness, on its formal config
    config = parse_config(formal.GUARD if mutant.guarded else formal.SHIPPED["L7"])
    kills = []
    with patch, memories(mutant):
        for task in formal.GUARD_TASKS if mutant.guarded else formal.TASKS:
            if task.mode == "cover":
                continue
            [result] = formal.prove(config, work, tasks=[task.name], log=lambda text: None)
            if result["status"] == "FAIL":
                kills.append(f"{task.name} ({', '.join(result['detail']['failed'])})")
    return kills


def kill_table(rows):
    """Rows of ``(mutant, killed, by)`` or ``(mutant, killed, by, formal kills)``."""
    width = max(len(row[0].name) for row in rows)
    lines = [f"{'mutant':<{width}}  verdict   killed by"]
    for mutant, killed, by, *formal in rows:
        lines.append(f"{mutant.name:<{width}}  {'killed ' if killed else 'SURVIVED'}  simulation: {by[:100]}")
        if formal:
            lines.append(f"{'':<{width}}            formal: {'; '.join(formal[0]) or 'no task fails'}")
    return "\n".join(lines)


def main(argv):
    import tempfile
    with_formal = "--formal" in argv
    names = [a for a in argv if not a.startswith("--")]
    chosen = [m for m in MUTANTS if not names or m.name in names]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mutant in chosen:
            print(f"mutant {mutant.name}: {mutant.what} ...", file=sys.stderr)
            killed, by = run_mutant(mutant, Path(tmp) / mutant.name, REPO / "sim_build")
            row = (mutant, killed, by)
            if with_formal:
                kills = formal_kills(mutant, Path(tmp) / f"{mutant.name}_formal")
                row = (mutant, killed or bool(kills), by, kills)
            rows.append(row)
    print(kill_table(rows))
    return 0 if all(row[1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
