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
