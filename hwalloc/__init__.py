"""hwalloc: deterministic hardware memory allocators as IP cores."""

__version__ = "0.1.0"
