"""Small helpers shared by the emitters and the tool runners."""

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["environment", "installed_tool"]


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


def installed_tool(name, packages):
    """The path of the command ``name``: beside this Python first (a virtual
    environment's bin/), then on PATH. ``packages`` are named in the error."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (pip install {packages})")
    return found
