"""Small building blocks for logic that stays shallow after LUT mapping.

Yosys' ABC maps a wide AND, OR or comparison as a chain of small LUTs, a level
every two inputs. Two ways out, so that the depth of a stage is set here and
not by how the mapper happens to share terms (see :mod:`hwalloc.synth`):

- split it into pieces of at most six inputs (one LUT each), registered, and
  join them in the next stage (``predecode``, ``eq_chunks``);
- put it on a carry chain, one LUT a bit beside it, a level for the whole
  chain (``any_of``, ``equal``, ``at_least``).
"""

from amaranth import Cat, Const, Mux, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["or_all", "and_all", "any_of", "predecode", "eq_chunks", "equal", "at_least",
           "choose_one_hot", "ShiftQueue", "RamQueue"]

#: Bits of a value compared in one LUT.
CHUNK = 6


def or_all(values):
    """The OR of ``values`` as a balanced tree (0 if there are none)."""
    values = list(values)
    if not values:
        return Const(0)
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def any_of(values, *, chain=False):
    """The OR of many one-bit ``values`` on a carry chain: the carry out of
    ``x + (2**n - 1)``. Each value (or the small function that forms it) is one
    LUT beside the chain, so the depth does not grow with their number, where
    Yosys' mapper makes a wide OR a chain of LUTs, a level every two terms.
    Up to three values are a plain OR, unless ``chain``."""
    values = [Value.cast(value) for value in values]
    if len(values) <= (1 if chain else 3):
        return or_all(values)
    bits = Cat(*values)
    return (bits + ((1 << len(bits)) - 1))[len(bits)]


def and_all(values):
    """The AND of ``values`` as a balanced tree (1 if there are none)."""
    return ~or_all(~value for value in values)


def predecode(m, addr, name):
    """Register the 12-bit ``addr`` as one-hot groups of at most four bits, and
    return ``match(offset)``: whether the registered address equals ``offset``,
    an AND of four registered bits (one LUT). The groups are not reset: the
    caller reads a match only beside a valid bit of its own."""
    groups = [(0, 2), (2, 5), (5, 8), (8, 12)]
    flags = []
    for lo, hi in groups:
        onehot = Signal(1 << (hi - lo), name=f"{name}_a{hi - 1}_{lo}", reset_less=True)
        m.d.sync += onehot.eq(1 << addr[lo:hi])
        flags.append((lo, hi, onehot))

    def match(offset):
        return and_all(onehot[(offset >> lo) & ((1 << (hi - lo)) - 1)] for lo, hi, onehot in flags)
    return match


def _chunks(width):
    return [(lo, min(lo + CHUNK, width)) for lo in range(0, width, CHUNK)]


def eq_chunks(m, a, b, name):
    """Register ``a == b`` in pieces of at most three bits of each (one LUT a
    piece). Returns a function that joins them (call it in the next stage)."""
    width = max(len(a), len(b))
    a, b = (Cat(v, Const(0, width - len(v))) for v in (a, b))
    pieces = []
    for lo in range(0, width, CHUNK // 2):
        hi = min(lo + CHUNK // 2, width)
        equal = Signal(name=f"{name}_eq{lo}")
        m.d.sync += equal.eq(a[lo:hi] == b[lo:hi])
        pieces.append(equal)
    return lambda: and_all(pieces)


def equal(a, b):
    """``a == b`` on a carry chain: the carry out of ``~(a ^ b) + 1``. One LUT a
    bit pair feeds the chain, so a wide comparison is one LUT and one chain deep,
    where a LUT tree would be two or three levels (and Yosys' mapper, sharing
    terms, often makes it a longer chain of LUTs)."""
    width = max(len(a), len(b))
    if width <= 3:
        return a == b
    a, b = (Cat(v, Const(0, width - len(v))) for v in (a, b))
    return (~(a ^ b) + 1)[width]


def at_least(a, b):
    """``a >= b`` (unsigned; ``b`` may be an integer) on a carry chain: no borrow
    out of ``a - b``."""
    if isinstance(b, int):
        if b <= 0:
            return Const(1)
        if b >= 1 << len(a):
            return Const(0)
        b = Const(b, b.bit_length())
    width = max(len(a), len(b))
    if width <= 3:
        return a >= b
    a, b = (Cat(v, Const(0, width + 1 - len(v))) for v in (a, b))
    return ~(a - b)[width]


def choose_one_hot(choices, width, *, chain=False):
    """The value of the choice whose select is set, for ``(select, value)``
    pairs of which at most one select is set (0 if none): per bit, the OR of
    ``select & value[i]`` on a carry chain (:func:`any_of`), so that each term
    and the small function forming its value are one LUT beside the chain."""
    choices = [(Value.cast(select), Value.cast(value)) for select, value in choices]
    return Cat(any_of((select & value[i] for select, value in choices if i < len(value)), chain=chain)
               for i in range(width))


class _InOrderQueue:
    """What both queues show: ``full`` is a thermometer of registers (more
    than i entries held iff ``full[i]``)."""

    @property
    def head_valid(self):
        return self.full[0]

    @property
    def at_limit(self):
        """Every entry held (a register)."""
        return self.full[self.depth - 1]

    @property
    def nearly_full(self):
        """At most one entry free (a register)."""
        return self.full[self.depth - 2]


class ShiftQueue(_InOrderQueue):
    """An in-order queue of ``depth`` entries in flip-flops whose head is
    always entry 0: ``head`` and ``head_valid`` are registers, so whatever
    reads them (an output pin, a handshake) sees no memory and no pointer.

    Entry i holds ``data[i]``; ``full`` is a thermometer (entry i is held iff
    ``full[i]``). Each cycle, ``pop`` (only while ``head_valid``) moves every
    entry down one and ``push`` puts ``w_data`` behind the last one held. Every
    empty entry loads ``w_data`` whether pushed or not (its content does not
    matter), so an entry's next value is one 6-input function: one LUT after
    ``pop``. The caller never pushes into a full queue."""

    def __init__(self, m, width, depth, name, *, reset_data=True):
        self.width, self.depth = width, depth
        self.pop, self.push = Signal(name=f"{name}_pop"), Signal(name=f"{name}_push")
        self.w_data = Signal(width, name=f"{name}_w_data")
        self.full = Signal(depth, name=f"{name}_full")
        # (``reset_data=False``: only ``full`` is reset, a LUT input less on the data)
        self.data = [Signal(width, name=f"{name}_data{i}", reset_less=not reset_data) for i in range(depth)]
        for i in range(depth):
            here, above = self.data[i], self.data[i + 1] if i + 1 < depth else self.w_data
            held_above = self.full[i + 1] if i + 1 < depth else Const(0)
            below_held = self.full[i - 1] if i else Const(1)
            m.d.sync += [
                here.eq(Mux(self.pop, Mux(held_above, above, self.w_data),
                            Mux(self.full[i], here, self.w_data))),
                self.full[i].eq(Mux(self.pop, held_above | (self.push & self.full[i]),
                                    self.full[i] | (self.push & below_held))),
            ]

    @property
    def head(self):
        return self.data[0]

    def head_after(self, popped):
        """The head's flag and value at the next edge, if the head is popped
        now or not (``popped``, a Python bool): expressions of registers and
        the push, for a caller that keeps a flag of the next head in a
        register of its own and chooses by its pop last."""
        full, data, push, w_data = self.full, self.data, self.push, self.w_data
        above, held_above = (data[1], full[1]) if self.depth > 1 else (w_data, Const(0))
        if popped:
            return held_above | (push & full[0]), Mux(held_above, above, w_data)
        return full[0] | push, Mux(full[0], data[0], w_data)

    def head_valid_after(self, popped):
        return self.head_after(popped)[0]


class RamQueue(_InOrderQueue):
    """The in-order queue of :class:`ShiftQueue` (same ``push``, ``pop``,
    ``w_data``, ``head``, ``full`` and the flags read from it, all but
    ``w_data`` and the strobes registers), for a wide or deep one: the head is a register
    and the entries behind it wait in a ring of LUT RAM.

    Place and route showed why: a shift queue's ``pop`` moves every entry, so
    it fans out to every bit of it (330 flip-flops for a 33-bit queue of ten),
    and that net, a LUT after the bus handshake, set the clock of the register
    interface. Here ``pop`` reaches the head register, two pointers and a few
    flags; a ``push`` writes one row of the RAM, whose write port takes it at
    the edge. The RAM's read is asynchronous (a LUT RAM), from a pointer
    register, into the head register (with ``w_data`` when the ring is empty:
    a push into an empty queue is the head at the next edge, as in a shift
    queue)."""

    def __init__(self, m, width, depth, name):
        assert depth >= 2
        self.width, self.depth = width, depth
        self.pop, self.push = Signal(name=f"{name}_pop"), Signal(name=f"{name}_push")
        self.w_data = Signal(width, name=f"{name}_w_data")
        self._head = Signal(width, name=f"{name}_head")
        # entries in all (head included) as a thermometer: ``full[i]`` says
        # more than i are held
        self.full = Signal(depth, name=f"{name}_count")
        # the ring behind the head: rows a power of two, so the pointers wrap alone
        rows = 1 << max(1, (depth - 2).bit_length())
        ring = Memory(shape=width, depth=rows, init=[])
        m.submodules[f"{name}_ring"] = ring
        write, read = ring.write_port(), ring.read_port(domain="comb")
        rd, wr = Signal(range(rows), name=f"{name}_rd"), Signal(range(rows), name=f"{name}_wr")
        # entries in the ring, a thermometer too: ``held[i]``, more than i
        held = Signal(depth - 1, name=f"{name}_held")

        # Every next state is a LUT or two of ``pop`` and ``push`` (which come
        # from a handshake) and registers, written out in them: through
        # intermediate strobes and counters the mapper would chain LUTs. The
        # head moves when popped or empty; the ring's front moves to it if
        # there is one; a push goes into the ring unless it becomes the head at
        # once. (``pop`` only while ``head_valid``.)
        pop, push, hv = self.pop, self.push, self.head_valid
        stays = hv & ~pop                                         # the head stays
        into = push & (held[0] | stays)                           # a push goes into the ring
        out = ~stays & held[0]                                    # the ring's front goes to the head
        m.d.comb += [read.addr.eq(rd), write.addr.eq(wr), write.data.eq(self.w_data), write.en.eq(into)]
        with m.If(~stays):
            m.d.sync += self._head.eq(Mux(held[0], read.data, self.w_data))
        # each pointer beside its successor, so that a step is a choice of registers
        for pointer, step in ((rd, out), (wr, into)):
            after = Signal.like(pointer, name=f"{pointer.name}_next", init=1)
            with m.If(step):
                m.d.sync += [pointer.eq(after), after.eq(after + 1)]

        def thermometer(flags, up, down):
            return [flags[i].eq(Mux(up, flags[i - 1] if i else 1,
                                    Mux(down, flags[i + 1] if i + 1 < len(flags) else 0, flags[i])))
                    for i in range(len(flags))]
        # the ring grows when a push stays behind a head that stays, shrinks
        # when its front goes to the head and nothing is pushed
        m.d.sync += thermometer(held, push & stays, out & ~push)
        m.d.sync += thermometer(self.full, push & ~pop, pop & ~push)

    @property
    def head(self):
        return self._head

    def head_valid_after(self, popped):
        """The head's flag at the next edge, if the head is popped now or not
        (see :meth:`ShiftQueue.head_after`)."""
        if popped:
            return Mux(self.push, self.full[0], self.full[1])
        return self.full[0] | self.push


class Skid:
    """One register stage on a valid/ready channel at full rate (a skid
    buffer): ``out_valid`` and ``out_data`` are registers, and so is
    ``in_ready``, so that no path crosses it from either side. The caller
    drives ``in_valid``, ``in_data`` and ``out_ready``."""

    def __init__(self, m, width, name):
        self.in_valid, self.out_ready = Signal(name=f"{name}_in_valid"), Signal(name=f"{name}_out_ready")
        self.in_data = Signal(width, name=f"{name}_in_data")
        self.out_valid = Signal(name=f"{name}_out_valid")
        self.out_data = Signal(width, name=f"{name}_out_data", reset_less=True)
        spare_valid = Signal(name=f"{name}_spare_valid")
        spare = Signal(width, name=f"{name}_spare", reset_less=True)
        self.in_ready = ~spare_valid
        with m.If(~self.out_valid | self.out_ready):
            # the output moves on: to the spare beat if one waits, else to the input
            m.d.sync += [self.out_valid.eq(spare_valid | self.in_valid),
                         self.out_data.eq(Mux(spare_valid, spare, self.in_data)),
                         spare_valid.eq(0)]
        with m.Elif(self.in_valid & ~spare_valid):
            m.d.sync += [spare_valid.eq(1), spare.eq(self.in_data)]
