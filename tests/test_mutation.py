"""Mutation check: every mutant of tests/mutants.py must make the benches fail,
and the unmutated core must pass the very same run (else a kill means nothing).
The kill table is printed at the end of the pytest run (conftest.py)."""

import pytest

from hwalloc.config import parse_config
from hwalloc.emit import emit_verilog

import mutants

CACHE = mutants.REPO / "sim_build"


def test_unmutated_core_passes_the_mutation_bench(tmp_path):
    control = mutants.Mutant("none", "core", "class AllocatorCore(", "class AllocatorCore(", "control")
    assert mutants.mutant_verilog(parse_config(mutants.CONFIG), control) == \
        emit_verilog(parse_config(mutants.CONFIG))
    killed, by = mutants.run_mutant(control, tmp_path, CACHE)
    assert not killed, by


def test_unmutated_guard_passes_the_mutation_bench(tmp_path):
    control = mutants.Mutant("none", "guard", "class AccessGuard(", "class AccessGuard(", "control",
                             guarded=True)
    killed, by = mutants.run_mutant(control, tmp_path, CACHE)
    assert not killed, by


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed(mutant, tmp_path, record_property):
    killed, by = mutants.run_mutant(mutant, tmp_path, CACHE)
    # the kill table of the run, printed by conftest.py
    record_property("hwalloc_mutant", [mutant.name, killed, by])
    assert killed, f"mutant {mutant.name} ({mutant.what}) survived every bench"


def test_a_mutant_that_matches_nothing_is_refused():
    stale = mutants.Mutant("stale", "core", "no such text", "x", "")
    with pytest.raises(AssertionError, match="occurs 0 times in core.py, not once"):
        mutants.mutated_module(stale)
