"""hwalloc: deterministic hardware memory allocators as IP cores.

The Python API, for Amaranth designs (README, "Use it from Amaranth")::

    from hwalloc import Allocator, load_config, to_verilog

    config = load_config("my_core.yaml")     # validated, or ConfigError
    alloc = Allocator(config)                 # the component `hwalloc generate` emits
    alloc.latency, alloc.recycle_delay        # L and R
    text = to_verilog(alloc)                  # the Verilog `hwalloc generate` writes
"""

__version__ = "0.1.0"

from .config import ConfigError, load_config, parse_config  # noqa: E402
from .core import HwallocTop as Allocator  # noqa: E402
from .emit import to_verilog  # noqa: E402

__all__ = ["Allocator", "ConfigError", "load_config", "parse_config", "to_verilog", "__version__"]
