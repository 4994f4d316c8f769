import sys
from pathlib import Path

# tests/simutil.py and friends are imported as plain modules
sys.path.insert(0, str(Path(__file__).parent))

from hwalloc.tb.scoreboard import Stats  # noqa: E402

# What the Verilator benches checked and the mutants' verdicts in this run. The
# tests hand them over as user properties of their reports, which reach this
# process from every pytest-xdist worker.
_BENCHES = Stats()
_KILLS = []


#: The suite's long tests, longest first (about 2-6 minutes each on 2 cores). They
#: are started first, so that no worker starts a long test when the others are
#: about to finish: the run's time is its total over the workers, not a long tail.
_LONG_FIRST = ("test_benches.py::test_shipped_core_matches_model", "test_formal.py::test_formal_set_proves",
               "test_benches.py", "test_formal.py", "test_pnr.py::test_pnr_places",
               "test_mutation.py", "test_synth.py", "test_core_sim.py", "test_vivado.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((i for i, key in enumerate(_LONG_FIRST) if key in item.nodeid), len(_LONG_FIRST))
    items.sort(key=rank)          # stable: the order within a rank is kept


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "hwalloc_bench_stats":
            _BENCHES.merge(Stats.from_dict(value))
        elif key == "hwalloc_mutant":
            _KILLS.append(value)


def pytest_terminal_summary(terminalreporter):
    if _BENCHES.ops:
        terminalreporter.write_line(
            f"hwalloc benches (shipped examples, Verilator): {_BENCHES.summary()}")
    if _KILLS:
        import mutants
        by_name = {mutant.name: mutant for mutant in mutants.MUTANTS}
        rows = [(by_name[name], killed, by) for name, killed, by in sorted(_KILLS)]
        terminalreporter.write_line("mutation check (tests/mutants.py):")
        for line in mutants.kill_table(rows).splitlines():
            terminalreporter.write_line("  " + line)
