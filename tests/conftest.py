import sys
from pathlib import Path

# tests/simutil.py and friends are imported as plain modules
sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter):
    """Print what the Verilator benches checked in this run."""
    import test_benches
    if test_benches.TOTAL.ops:
        terminalreporter.write_line(
            f"hwalloc benches (shipped examples, Verilator): {test_benches.TOTAL.summary()}")

    import test_mutation
    if test_mutation.KILLS:
        import mutants
        terminalreporter.write_line("mutation check (tests/mutants.py):")
        for line in mutants.kill_table(test_mutation.KILLS).splitlines():
            terminalreporter.write_line("  " + line)
