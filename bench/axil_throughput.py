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


#: SPEC §6's figures for a master that never stalls (L the core's latency).
SPEC = {
    "plain read": lambda L: "1 / 3",
    "plain write": lambda L: "1 / 3",
    "read and write at once": lambda L: "1 / 3",
    "register ALLOC": lambda L: f"1 / {L + 2}",
    "register FREE": lambda L: f"1 / {L + 2}",
}

#: Published figures of other AXI4-Lite slaves (cycles per transaction /
#: latency), as their authors state them; not measured here.
PUBLISHED = {
    # ZipCPU's easyaxil, with its skid buffers: one read and one write every
    # clock, RVALID one cycle after the AR handshake
    "easyaxil": {"plain read": "1 / 1", "plain write": "1 / -", "read and write at once": "1 / -"},
    # PeakRDL-regblock: one transaction of either kind per clock, RVALID two
    # cycles after AR (one more per retiming option)
    "PeakRDL-regblock": {"plain read": "1 / 2", "plain write": "1 / -", "read and write at once": "2 / -"},
    # the Xilinx (Vivado) AXI4-Lite slave template: one transaction per two clocks
    "Xilinx template": {"plain read": "2 / -", "plain write": "2 / -"},
}


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
    L = results.pop("latency")
    print(f"AXI4-Lite register interface of {results.pop('config')} (L = {L}), "
          f"cocotbext-axi master that never stalls")
    print("cycles per transaction sustained / cycles from the request's handshake to the response's")
    print("(a write: from the later of AW and W). hwalloc measured here; the others are")
    print("their published figures, not measured here.")
    head = ["measure", "hwalloc", "SPEC §6", *PUBLISHED]
    rows = [[name, f"{per:.2f} / {latency}", SPEC[name](L)] + [figures.get(name, "-")
                                                              for figures in PUBLISHED.values()]
            for name, (per, latency) in results.items()]
    widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main(sys.argv)
