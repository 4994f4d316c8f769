"""Measure the AXI4-Lite register interface of a core under Verilator and print
a table: cycles per transaction with a master that never stalls, and the
register ALLOC's latency. Figures, not a test.

    python bench/axil_throughput.py [CONFIG.yaml]
"""

import json
import sys
import tempfile
from pathlib import Path

from cocotb_tools.runner import get_runner

from hwalloc import sim
from hwalloc.config import DEFAULT_EXAMPLE, example_path, load_config


def main(argv):
    path = argv[1] if len(argv) > 1 else example_path(DEFAULT_EXAMPLE)
    config = load_config(path)
    build_dir = sim.build(config, log=lambda text: print(text, file=sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        sim.setup_verilator()
        get_runner("verilator").test(
            test_module="hwalloc.tb.bench_axil", hdl_toplevel=config.name,
            hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=build_dir,
            extra_env={"HWALLOC_CONFIG": str(Path(path).resolve()), "HWALLOC_BENCH_OUT": str(out)},
            log_file=Path(tmp) / "sim.log", results_xml=str(Path(tmp) / "results.xml"))
        results = json.loads(out.read_text())
    print(f"AXI4-Lite register interface of {results.pop('config')} "
          f"(L = {results.pop('latency')}), cocotbext-axi master, no stalls")
    print(f"| {'measure':42} | cycles |")
    print(f"|{'-' * 44}|--------|")
    for name, value in results.items():
        print(f"| {name:42} | {value:6.2f} |")


if __name__ == "__main__":
    main(sys.argv)
