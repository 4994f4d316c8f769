"""Formal checks (hwalloc.formal) of the shipped formal set: two pools of 4 and
5 slots, 2-bit tags, at L = 7 (there with a ring pool) and at the minimum
latency (there with a persistent pool). Every bounded check
passes, every cover is reached, the k-induction tasks that close do; and the
harness is shown to catch bugs: mutants of the core fail it."""

import pytest
import yaml
from amaranth import Const

from hwalloc import cli, formal, memory
from hwalloc.config import parse_config

import mutants

FORMAL_SET = formal.SHIPPED
COVERS = {"exhaustion", "double free", "tag wrap", "exhaustion then recovery",
          "grant and release together", "register ALLOC beside a native free",
          "register FREE beside a native alloc", "flush with a release and a grant",
          "three reads open", "three writes open"}


@pytest.mark.parametrize("name", FORMAL_SET)
def test_formal_set_proves(name, tmp_path, monkeypatch, capsys):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(FORMAL_SET[name]))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["prove", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS: every bounded check and cover; every k-induction closed" in out
    config = parse_config(FORMAL_SET[name])
    reached = set()
    for task in formal.TASKS:
        line = next(text for text in out.splitlines() if text.strip().startswith(task.name + " "))
        assert " PASS " in line, line
        depth = int(line.split()[2])
        assert depth == task.depth(config)
        if task.mode == "cover":
            reached |= set(line.split("reached: ")[1].split(", "))
    persistent = any(pool.lifetime == "persistent" for pool in config.pools)
    ring = any(pool.kind == "ring" for pool in config.pools)
    assert reached == (COVERS | ({"persistent free refused"} if persistent else set()) |
                       ({"ring overwrite", "ring release then regrant"} if ring else set()))
    # the bounded check is deep enough for a full cycle of the largest pool, plus L
    assert formal._native_depth(config) >= 5 + config.latency + formal.RECYCLE_DELAY


@pytest.mark.parametrize("name, task, prop", [
    ("tag_check_dropped", "native_bmc", "free_check: error code"),
    ("forward_alloc2_dropped", "native_bmc", "free_check: error code"),
    ("latency_minus_one", "native_timing_prove", "latency: grant"),
    ("never_granted_check_dropped", "native_bmc", "free_check: error code"),
    # (the early wrap makes the ring's pointer and its free check fail at the
    # same step, 12; which of the two the solver's counterexample shows depends
    # on the rest of the design's encoding: either is this mutant caught)
    ("ring_order_off_by_one", "native_bmc", ("ring_order: the pointer's slot", "free_check: error code")),
    ("irq_clear_wins", "axi_bmc", "irq: a raised cause is set, whatever the clear of its cycle"),
])
def test_formal_kills_mutants(name, task, prop, tmp_path):
    mutant = next(m for m in mutants.MUTANTS if m.name == name)
    config = parse_config(FORMAL_SET["L7"])
    with mutants.patched(mutant, formal):
        [result] = formal.prove(config, tmp_path, tasks=[task], log=lambda text: None)
    assert result["status"] == "FAIL"
    expected = prop if isinstance(prop, tuple) else (prop,)
    assert set(expected) & set(result["detail"]["failed"]), result["detail"]


def test_pools_deeper_than_a_bank_prove(tmp_path, monkeypatch):
    """The shipped L = 7 set with every memory in RAM, cut into banks of two
    rows: its pools are deeper than a bank, so the free check reads their
    memories an edge earlier (three-edge reads) and forwards alloc t-4 and free
    t-4 as well, and the freelist's queue is split in halves read an edge
    before the commit, the row written at that edge forwarded. The bounded
    check passes, and fails without any of these forwardings."""
    monkeypatch.setattr(memory, "BANK_DEPTH", 2)
    monkeypatch.setattr(memory, "FLOP_DEPTH", 0)
    config = parse_config(FORMAL_SET["L7"])
    [result] = formal.prove(config, tmp_path / "core", tasks=["native_bmc"], log=lambda text: None)
    assert result["status"] == "PASS", result["detail"]
    for name, find, replace in [
            ("alloc_t4", "older3 = hit_a3 | (~rel_f3 & f2_hit_a4)", "older3 = hit_a3"),
            ("free_t4", "f2_rel_f4.eq(in_early & same_as_fourth() & f5_ok)", "f2_rel_f4.eq(0)")]:
        mutant = mutants.Mutant(name, "core", find, replace, f"the forwarding of {name} dropped")
        with mutants.patched(mutant, formal):
            [result] = formal.prove(config, tmp_path / name, tasks=["native_bmc"], log=lambda text: None)
        assert result["status"] == "FAIL" and "free_check: error code" in result["detail"]["failed"], name
    # (the queue's read of the row written at its edge: a grant's tag then differs from the model's)
    monkeypatch.setattr(memory, "equal", lambda a, b: Const(0))
    [result] = formal.prove(config, tmp_path / "queue", tasks=["native_bmc"], log=lambda text: None)
    assert result["status"] == "FAIL" and result["detail"]["failed"], "queue forwarding"


def test_parities_built_of_lut_ram_groups_prove(tmp_path, monkeypatch):
    """The shipped L = 7 set with its parities built as a parity of 17 to 256
    slots is (hwalloc.memory's LUT RAM groups, here of two rows each): each
    group written where the core's registered one-hot of the slot's group
    says, each group's read registered and chosen at the next edge. The
    bounded check passes, and fails when the one-hot names the next group."""
    monkeypatch.setattr(memory, "GROUP_DEPTH", 2)
    monkeypatch.setattr(memory, "FLOP_DEPTH", 2)
    config = parse_config(FORMAL_SET["L7"])
    [result] = formal.prove(config, tmp_path / "core", tasks=["native_bmc"], log=lambda text: None)
    assert result["status"] == "PASS", result["detail"]
    mutant = mutants.Mutant("group_off_by_one", "core", "== r for r in range(len(rows))",
                            "== r + 1 for r in range(len(rows))", "a release writes the next group")
    with mutants.patched(mutant, formal):
        [result] = formal.prove(config, tmp_path / "mutant", tasks=["native_bmc"], log=lambda text: None)
    assert result["status"] == "FAIL" and result["detail"]["failed"], result["detail"]


def test_prove_refuses_a_config_too_big_for_the_harness(capsys):
    assert cli.main(["prove"]) == 2
    err = capsys.readouterr().err
    assert "hwalloc_event: cannot prove this config" in err
    assert "pools: 64 slots in all; the formal harness takes at most 24" in err


def test_prove_refuses_an_unknown_task(tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(FORMAL_SET["L7"]))
    assert cli.main(["prove", str(path), "--task", "nope"]) == 2
    assert "--task: unknown nope; the tasks are native_bmc," in capsys.readouterr().err


def test_verdict_reads_the_results():
    def result(task, mode, status):
        return {"task": task, "mode": mode, "status": status}
    bmc, cover = result("native_bmc", "bmc", "PASS"), result("native_cover", "cover", "PASS")
    assert formal.verdict([bmc, cover]) == (True, "PASS: every bounded check and cover")
    closing = result("native_timing_prove", "prove", "PASS")
    assert formal.verdict([bmc, closing])[1].endswith("every k-induction closed")
    # a k-induction expected to close that does not is a failure; another one is reported open
    assert formal.verdict([bmc, dict(closing, status="UNKNOWN")]) == (False, "FAIL: native_timing_prove")
    assert formal.verdict([bmc, result("extra_prove", "prove", "UNKNOWN")])[1] == \
        "PASS: every bounded check and cover; k-induction open for extra_prove"
    assert formal.verdict([dict(bmc, status="FAIL"), cover]) == (False, "FAIL: native_bmc")
    assert not formal.verdict([dict(cover, status="FAIL")])[0]


def test_guard_formal_proves_and_catches_a_forwarded_refusal(tmp_path):
    """The access guard's harness on its config: handshakes on both sides and
    no burst it must refuse on m_axi, every cover reached; a guard that
    forwards refused writes fails it."""
    config = parse_config(formal.GUARD)
    results = formal.prove(config, tmp_path, tasks=["guard_bmc", "guard_cover"], log=lambda text: None)
    assert [r["status"] for r in results] == ["PASS", "PASS"], formal.table(results)
    assert set(results[1]["detail"]["reached"]) == {"a read forwarded", "a read refused",
                                                   "a write forwarded", "a write refused"}
    mutant = next(m for m in mutants.MUTANTS if m.name == "guard_refused_write_forwarded")
    with mutants.patched(mutant, formal):
        [result] = formal.prove(config, tmp_path / "mutant", tasks=["guard_bmc"], log=lambda text: None)
    assert result["status"] == "FAIL"
    assert "guard: a write on m_axi is one the guard may pass" in result["detail"]["failed"]
