"""Small helpers shared by the emitters and the tool runners."""

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ToolMissing", "environment", "installed_tool", "require_programs"]


@contextmanager
def environment(name, value):
    """Set the environment variable ``name`` to ``value`` for the ``with`` block,
    then restore what was there (or remove it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


class ToolMissing(RuntimeError):
    """A program a command needs is not installed; the message says how to get it."""


def installed_tool(name, packages):
    """The path of the command ``name``: beside this Python first (a virtual
    environment's bin/), then on PATH. ``packages`` are named in the error."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed: pip install {packages} (hwalloc depends on it: "
                          "installing hwalloc with pip into this Python installs it)")
    return found


def require_programs(purpose, programs):
    """Check that the system programs ``programs`` are on PATH; raise
    :class:`ToolMissing` naming the missing ones, what needs them, and how to
    install them."""
    missing = [name for name in programs if not shutil.which(name)]
    if missing:
        packages = " ".join(dict.fromkeys(_DEBIAN.get(name, name) for name in missing))
        raise ToolMissing(f"{purpose} needs {', '.join(missing)}, not found on PATH: install "
                          f"{'it' if len(missing) == 1 else 'them'} with your system's package "
                          f"manager (Debian and Ubuntu: apt install {packages}), then run the "
                          "command again")


#: The Debian package of each program
_DEBIAN = {"c++": "g++", "make": "make", "perl": "perl"}
