"""The configuration: YAML in, one frozen, validated object out.

Everything else in hwalloc (the HDL, the reference model, the emitters, the
benches) reads widths and constants from :class:`Config`; nothing re-derives a
width on its own.

Validation reports every problem at once, one message per problem, each naming
the field (``pools[1].slot_size: 3000 is not a power of two``), and happens
before anything is built or written.
"""

import difflib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .kinds import KINDS

__all__ = [
    "MIN_LATENCY", "MAX_LATENCY", "RECYCLE_DELAY",
    "ConfigError", "Pool", "Region", "Guard", "Config",
    "load_config", "parse_config", "example_path", "example_names", "DEFAULT_EXAMPLE",
]

#: Smallest grant latency the pipeline can meet (alloc: capture, check, commit,
#: memory output register, slot choice, response register; the free likewise
#: ends at stage 5).
MIN_LATENCY = 6
#: Largest grant latency accepted.
MAX_LATENCY = 32
#: R: a slot freed by a free accepted at cycle t is grantable to allocs accepted
#: at cycle t + RECYCLE_DELAY or later (SPEC §4). A property of the pipeline.
RECYCLE_DELAY = 5

DEFAULT_EXAMPLE = "event_region"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VERILOG_KEYWORDS = frozenset("""
    always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config
    deassign default defparam design disable edge else end endcase endconfig endfunction
    endgenerate endmodule endprimitive endspecify endtable endtask event for force forever
    fork function generate genvar highz0 highz1 if ifnone incdir include initial inout input
    instance integer join large liblist library localparam macromodule medium module nand
    negedge nmos nor noshowcancelled not notif0 notif1 or output parameter pmos posedge
    primitive pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real
    realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled
    signed small specify specparam strong0 strong1 supply0 supply1 table task time tran
    tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand
    weak0 weak1 while wire wor xnor xor
""".split())

_TOP_KEYS = ("name", "clock_mhz", "latency", "addr_width", "tag_bits", "user_bits",
             "error_log_depth", "pools", "regions", "guard")
_POOL_KEYS = ("name", "base", "slot_size", "slots", "kind", "access", "lifetime")
_REGION_KEYS = ("name", "base", "size", "access", "lifetime")
_GUARD_KEYS = ("data_bytes", "id_width", "outside")
_DATA_BYTES = (4, 8, 16, 32, 64)
_OUTSIDE = ("pass", "refuse")

_KINDS = tuple(KINDS)         # the pool kinds the core can build (hwalloc.kinds)
#: A ring pool's fewest slots: the pipeline has four grants in flight, which
#: then never name the same slot (without a flush between them).
MIN_RING_SLOTS = 4
_ACCESS = ("rw", "ro")
_LIFETIMES = ("transient", "persistent")


class ConfigError(ValueError):
    """A configuration was refused. ``problems`` lists one message per problem."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _bits(n):
    """Bits needed to hold the values 0 .. n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class Pool:
    """One pool of equal, fixed-size slots."""
    index: int
    name: str
    base: int
    slot_size: int
    slots: int
    kind: str = "freelist"
    access: str = "rw"
    lifetime: str = "transient"

    @property
    def end(self):
        """First byte address past the pool."""
        return self.base + self.slots * self.slot_size

    @property
    def offset_bits(self):
        """log2(slot_size): address bits below the slot index."""
        return self.slot_size.bit_length() - 1

    @property
    def slot_bits(self):
        """Width of this pool's slot index."""
        return _bits(self.slots)

    def addr_of(self, slot):
        return self.base + slot * self.slot_size


@dataclass(frozen=True)
class Region:
    """A static region: never allocated, never freeable."""
    name: str
    base: int
    size: int
    access: str = "ro"
    lifetime: str = "persistent"

    @property
    def end(self):
        return self.base + self.size


@dataclass(frozen=True)
class Guard:
    """The access guard of SPEC §8: an AXI4 path from a bus master to memory
    whose every burst is judged against the allocator's live state."""
    data_bytes: int = 8
    id_width: int = 4
    outside: str = "pass"          # pass | refuse: bursts that touch no pool and no region

    @property
    def max_size(self):
        """The largest AXI ``size`` (log2 of the bytes of a beat): the data width."""
        return self.data_bytes.bit_length() - 1

    def to_dict(self):
        return {"data_bytes": self.data_bytes, "id_width": self.id_width, "outside": self.outside}


@dataclass(frozen=True)
class Config:
    """A validated core configuration (SPEC §1). Widths follow SPEC §2."""
    name: str
    clock_mhz: float
    latency: int
    addr_width: int
    tag_bits: int
    user_bits: int
    error_log_depth: int
    pools: tuple
    regions: tuple = ()
    guard: Guard | None = None

    @property
    def recycle_delay(self):
        return RECYCLE_DELAY

    @property
    def pool_bits(self):
        """P = max(1, ceil(log2(pools)))."""
        return _bits(len(self.pools))

    @property
    def slot_bits(self):
        """S = max(1, ceil(log2(max slots)))."""
        return _bits(max(p.slots for p in self.pools))

    @property
    def size_bits(self):
        """Z = bit length of the largest slot_size, plus 1."""
        return max(p.slot_size for p in self.pools).bit_length() + 1

    def to_dict(self):
        """The config as plain data, in the YAML's own form."""
        return {
            "name": self.name, "clock_mhz": self.clock_mhz, "latency": self.latency,
            "addr_width": self.addr_width, "tag_bits": self.tag_bits,
            "user_bits": self.user_bits, "error_log_depth": self.error_log_depth,
            "pools": [{"name": p.name, "base": p.base, "slot_size": p.slot_size,
                       "slots": p.slots, "kind": p.kind, "access": p.access,
                       "lifetime": p.lifetime} for p in self.pools],
            "regions": [{"name": r.name, "base": r.base, "size": r.size,
                         "access": r.access, "lifetime": r.lifetime} for r in self.regions],
            **({"guard": self.guard.to_dict()} if self.guard else {}),
        }


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects problems; each check names its field."""

    def __init__(self):
        self.problems = []

    def problem(self, field, message):
        self.problems.append(f"{field}: {message}")

    def unknown_keys(self, data, allowed, where):
        for key in data:
            if key not in allowed:
                field = f"{where}.{key}" if where else str(key)
                close = difflib.get_close_matches(str(key), allowed, n=1)
                self.problem(field, f"unknown key (expected one of: {', '.join(allowed)})"
                             + (f"; did you mean {close[0]}?" if close else ""))

    def power_of_two(self, field, value):
        """Refuse ``value`` unless it is a power of two, naming the two nearest."""
        if value & (value - 1):
            below = 1 << (value.bit_length() - 1)
            self.problem(field, f"{value} is not a power of two ({below} or {below * 2}?)")
            return False
        return True

    def integer(self, data, key, field, lo, hi, default=None, required=False):
        if key not in data:
            if required:
                self.problem(field, "is required")
            return default
        value = data[key]
        if not _is_int(value):
            self.problem(field, f"{value!r} is not an integer")
            return None
        if not lo <= value <= hi:
            self.problem(field, f"{value} is out of range ({lo}..{hi})")
            return None
        return value

    def choice(self, data, key, field, choices, default):
        value = data.get(key, default)
        if value not in choices:
            self.problem(field, f"{value!r} is not one of: {', '.join(choices)}")
            return None
        return value

    def identifier(self, data, key, field, *, verilog=False):
        if key not in data:
            self.problem(field, "is required")
            return None
        value = data[key]
        if not isinstance(value, str):
            self.problem(field, f"{value!r} is not a string")
            return None
        if not _IDENT.match(value):
            self.problem(field, f"{value!r} is not an identifier "
                                "(letters, digits and _, not starting with a digit)")
            return None
        if verilog and value in _VERILOG_KEYWORDS:
            self.problem(field, f"{value!r} is a Verilog keyword")
            return None
        return value


def parse_config(data):
    """Validate plain data (as loaded from YAML) and return a :class:`Config`.

    Raises
    ------
    ConfigError
        With every problem found, each naming its field.
    """
    check = _Checker()
    if not isinstance(data, dict):
        raise ConfigError([f"config: expected a mapping of keys, not {type(data).__name__}"])
    check.unknown_keys(data, _TOP_KEYS, "")

    name = check.identifier(data, "name", "name", verilog=True)
    clock_mhz = data.get("clock_mhz", 350)
    if not isinstance(clock_mhz, (int, float)) or isinstance(clock_mhz, bool):
        check.problem("clock_mhz", f"{clock_mhz!r} is not a number")
        clock_mhz = None
    elif not 1 <= clock_mhz <= 1000:
        check.problem("clock_mhz", f"{clock_mhz} is out of range (1..1000)")
        clock_mhz = None
    if "latency" in data and _is_int(data["latency"]) and data["latency"] < MIN_LATENCY:
        check.problem("latency", f"{data['latency']} is below the architecture's minimum "
                                 f"of {MIN_LATENCY} cycles")
        latency = None
    else:
        latency = check.integer(data, "latency", "latency", MIN_LATENCY, MAX_LATENCY, 7)
    addr_width = check.integer(data, "addr_width", "addr_width", 12, 64, 32)
    tag_bits = check.integer(data, "tag_bits", "tag_bits", 0, 8, 4)
    user_bits = check.integer(data, "user_bits", "user_bits", 1, 32, 10)
    error_log_depth = check.integer(data, "error_log_depth", "error_log_depth", 2, 128, 16)
    if error_log_depth is not None:
        check.power_of_two("error_log_depth", error_log_depth)

    pools = []
    raw_pools = data.get("pools")
    if "pools" not in data:
        check.problem("pools", "is required")
    elif not isinstance(raw_pools, list):
        check.problem("pools", f"expected a list of pools, not {type(raw_pools).__name__}")
    elif not 1 <= len(raw_pools) <= 8:
        check.problem("pools", f"{len(raw_pools)} pools given; 1..8 are supported")
    else:
        for index, raw in enumerate(raw_pools):
            pool = _parse_pool(check, index, raw, addr_width)
            if pool is not None:
                pools.append(pool)

    regions = []
    raw_regions = data.get("regions", [])
    if raw_regions is None:
        raw_regions = []
    if not isinstance(raw_regions, list):
        check.problem("regions", f"expected a list of regions, not {type(raw_regions).__name__}")
    else:
        for index, raw in enumerate(raw_regions):
            region = _parse_region(check, index, raw, addr_width)
            if region is not None:
                regions.append(region)

    guard = _parse_guard(check, data["guard"]) if "guard" in data else None

    _check_layout(check, pools, regions)
    if tag_bits == 0:
        for pool in pools:
            if pool.kind == "ring":
                check.problem("tag_bits", f"0, but pools[{pool.index}] ({pool.name}) is a ring pool, which "
                                          "needs tag_bits >= 1 (without tags an overwritten holder's "
                                          "handle would release the new holder's slot)")

    if check.problems:
        raise ConfigError(check.problems)
    return Config(name=name, clock_mhz=clock_mhz, latency=latency, addr_width=addr_width,
                  tag_bits=tag_bits, user_bits=user_bits, error_log_depth=error_log_depth,
                  pools=tuple(pools), regions=tuple(regions), guard=guard)


def _parse_guard(check, raw):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        check.problem("guard", f"expected a mapping (or {{}} for the defaults), not {type(raw).__name__}")
        return None
    before = len(check.problems)
    check.unknown_keys(raw, _GUARD_KEYS, "guard")
    data_bytes = raw.get("data_bytes", 8)
    if not _is_int(data_bytes) or data_bytes not in _DATA_BYTES:
        check.problem("guard.data_bytes", f"{data_bytes!r} is not one of: {', '.join(map(str, _DATA_BYTES))}")
    id_width = check.integer(raw, "id_width", "guard.id_width", 1, 8, 4)
    outside = check.choice(raw, "outside", "guard.outside", _OUTSIDE, "pass")
    if len(check.problems) > before:
        return None
    return Guard(data_bytes=data_bytes, id_width=id_width, outside=outside)


def _parse_pool(check, index, raw, addr_width):
    where = f"pools[{index}]"
    if not isinstance(raw, dict):
        check.problem(where, f"expected a mapping, not {type(raw).__name__}")
        return None
    before = len(check.problems)
    check.unknown_keys(raw, _POOL_KEYS, where)
    name = check.identifier(raw, "name", f"{where}.name")
    base = check.integer(raw, "base", f"{where}.base", 0, 2**64 - 1, required=True)
    slot_size = check.integer(raw, "slot_size", f"{where}.slot_size", 4, 2**63,
                              required=True)
    if slot_size is not None and not check.power_of_two(f"{where}.slot_size", slot_size):
        slot_size = None
    slots = check.integer(raw, "slots", f"{where}.slots", 2, 65536, required=True)
    kind = check.choice(raw, "kind", f"{where}.kind", _KINDS, "freelist")
    access = check.choice(raw, "access", f"{where}.access", _ACCESS, "rw")
    lifetime = check.choice(raw, "lifetime", f"{where}.lifetime", _LIFETIMES, "transient")
    if kind == "ring":
        if lifetime == "persistent":
            check.problem(f"{where}.lifetime", "a ring pool cannot be persistent "
                                               "(a ring always reuses its oldest slot)")
        if slots is not None and slots < MIN_RING_SLOTS:
            check.problem(f"{where}.slots", f"{slots}: a ring pool needs at least {MIN_RING_SLOTS} slots")
    if base is not None and slot_size is not None and base % slot_size:
        check.problem(f"{where}.base", f"{base:#x} is not aligned to slot_size {slot_size}")
    if None not in (base, slot_size, slots, addr_width):
        end = base + slots * slot_size
        if end > 2**addr_width:
            check.problem(where, f"ends at {end:#x}, which does not fit in "
                                 f"addr_width {addr_width}")
    if len(check.problems) > before:
        return None
    return Pool(index=index, name=name, base=base, slot_size=slot_size, slots=slots,
                kind=kind, access=access, lifetime=lifetime)


def _parse_region(check, index, raw, addr_width):
    where = f"regions[{index}]"
    if not isinstance(raw, dict):
        check.problem(where, f"expected a mapping, not {type(raw).__name__}")
        return None
    before = len(check.problems)
    check.unknown_keys(raw, _REGION_KEYS, where)
    name = check.identifier(raw, "name", f"{where}.name")
    base = check.integer(raw, "base", f"{where}.base", 0, 2**64 - 1, required=True)
    size = check.integer(raw, "size", f"{where}.size", 1, 2**64, required=True)
    access = check.choice(raw, "access", f"{where}.access", _ACCESS, "ro")
    lifetime = check.choice(raw, "lifetime", f"{where}.lifetime", _LIFETIMES, "persistent")
    if None not in (base, size, addr_width) and base + size > 2**addr_width:
        check.problem(where, f"ends at {base + size:#x}, which does not fit in "
                             f"addr_width {addr_width}")
    if len(check.problems) > before:
        return None
    return Region(name=name, base=base, size=size, access=access, lifetime=lifetime)


def _check_layout(check, pools, regions):
    areas = ([(f"pools[{p.index}]", p.name, p.base, p.end) for p in pools] +
             [(f"regions[{i}]", r.name, r.base, r.end) for i, r in enumerate(regions)])
    seen = {}
    for field, name, _, _ in areas:
        if name in seen:
            check.problem(f"{field}.name", f"{name!r} is already used by {seen[name]}")
        else:
            seen[name] = field
    for i, (field_a, _, base_a, end_a) in enumerate(areas):
        for field_b, _, base_b, end_b in areas[:i]:
            if base_a < end_b and base_b < end_a:
                check.problem(field_a, f"[{base_a:#x}, {end_a:#x}) overlaps {field_b} "
                                       f"[{base_b:#x}, {end_b:#x})")


def load_config(source=None):
    """Load and validate a config from a YAML file path (None: the default example).

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or the config is invalid.
    """
    if source is None:
        source = example_path(DEFAULT_EXAMPLE)
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError([f"{path}: cannot read ({error.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError([f"{path}: not valid YAML: {error}"]) from None
    return parse_config(data)


def example_names():
    """Names of the shipped example configs."""
    folder = resources.files("hwalloc") / "examples"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def example_path(name):
    """Path of a shipped example config."""
    return Path(str(resources.files("hwalloc") / "examples" / f"{name}.yaml"))
