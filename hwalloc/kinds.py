"""The pool kinds: a config's ``kind`` to the class that builds its state
(:class:`hwalloc.pool.PoolState`). A new kind is a new file and a line here."""

from .freelist import FreelistPool
from .ring import RingPool

__all__ = ["KINDS"]

KINDS = {
    "freelist": FreelistPool,
    "ring": RingPool,
}
