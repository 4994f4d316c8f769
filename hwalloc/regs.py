"""The register map (SPEC §6), declared once, as data.

The RTL decode (:mod:`hwalloc.regfile`), the C header, the Markdown reference,
the SystemRDL file and the Python driver are all derived from
:func:`register_map`; no offset or field position is typed anywhere else.
"""

from dataclasses import dataclass

__all__ = ["Field", "Register", "RegisterMap", "register_map", "ID_VALUE", "version_word",
           "HANDLE_FIELDS", "POOL_STRIDE", "POOL_BASE", "ERR_HEAD0_FIELDS", "IRQ_FIELDS",
           "IRQ_MASK", "IRQ_BITS", "irq_fields", "irq_mask", "irq_bits", "LOW_WATER_BITS",
           "REGISTER_EXTRA", "PLAIN_READ", "PLAIN_WRITE"]

#: Cycles a register FREE or FLUSH adds to L from the later of its AW and W
#: handshakes to its B handshake, and a register ALLOC from its AR handshake
#: to its R handshake, with a master that never stalls: the request register,
#: the response register (SPEC §6).
REGISTER_EXTRA = 2
#: Cycles from an AR handshake to its R handshake for a plain read, and from
#: the later of AW and W to B for a plain write: three registered stages.
PLAIN_READ = PLAIN_WRITE = 3

ID_VALUE = 0x4857414C            # "HWAL"
POOL_BASE = 0x100
POOL_STRIDE = 0x40
LOW_WATER_BITS = 17


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    description: str

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register.

    ``access`` is one of ``RO``, ``WO``, ``RW``, ``RW1C`` (write 1 to clear) and
    ``RO_ALLOC`` (a read has a side effect: it allocates). ``pool`` is the pool
    index of a per-pool register, else None. ``command`` registers (WO) accept
    only full-word writes.
    """
    name: str
    offset: int
    access: str
    description: str
    fields: tuple = ()
    pool: int = None
    kind: str = None        # the per-pool register's name without its pool prefix

    @property
    def readable(self):
        return self.access in ("RO", "RW", "RW1C", "RO_ALLOC")

    @property
    def writable(self):
        return self.access in ("WO", "RW", "RW1C")


@dataclass(frozen=True)
class RegisterMap:
    registers: tuple

    def __iter__(self):
        return iter(self.registers)

    def __getitem__(self, name):
        for register in self.registers:
            if register.name == name:
                return register
        raise KeyError(name)

    def at(self, offset):
        for register in self.registers:
            if register.offset == offset:
                return register
        return None


IRQ_FIELDS = (
    Field("ERROR", 0, 1, "an error other than EXHAUSTED was logged (or dropped)"),
    Field("EXHAUSTED", 1, 1, "an allocation failed with EXHAUSTED"),
    Field("LOG_OVERFLOW", 2, 1, "an error was dropped because the log was full"),
    Field("OVERWRITE", 3, 1, "a ring pool overwrote a held slot"),
    Field("LOW_WATER", 4, 1, "a grant left fewer slots not held than the pool's LOW_WATER"),
)

#: IRQ_STATUS / IRQ_ENABLE bits of a core without a guard
IRQ_MASK = sum(1 << f.lsb for f in IRQ_FIELDS)
IRQ_BITS = IRQ_MASK.bit_length()
#: the bit a guard adds
ACCESS_FIELD = Field("ACCESS", 5, 1, "the access guard refused an access")


def irq_fields(config):
    """The IRQ_STATUS / IRQ_ENABLE bits of a core with ``config``."""
    return IRQ_FIELDS + ((ACCESS_FIELD,) if config.guard is not None else ())


def irq_mask(config):
    return sum(1 << f.lsb for f in irq_fields(config))


def irq_bits(config):
    return irq_mask(config).bit_length()

ERR_HEAD0_FIELDS = (
    Field("TAG", 0, 8, "tag presented (0 for allocs and flushes)"),
    Field("POOL", 8, 8, "pool index (0xFF: an address in no pool)"),
    Field("CODE", 20, 4, "error code"),
    Field("SOURCE", 26, 2, "0 native ports, 1 AXI-Lite register, 2 access guard"),
    Field("OP", 28, 3, "0 alloc, 1 free, 2 flush, 3 read access, 4 write access"),
    Field("VALID", 31, 1, "the log holds an entry"),
)

HANDLE_FIELDS = (
    Field("SLOT", 0, 19, "slot index"),
    Field("TAG", 19, 8, "tag of the grant (low T bits are used)"),
    Field("ERR", 27, 4, "error code (0 when OK)"),
    Field("OK", 31, 1, "1 = a slot was granted"),
)


def version_word(version):
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    return major << 16 | minor << 8 | patch


def register_map(config):
    """The register map of a core with ``config`` (SPEC §6)."""
    regs = [
        Register("ID", 0x000, "RO", "identifies the core: 0x4857414C (\"HWAL\")"),
        Register("VERSION", 0x004, "RO", "major<<16 | minor<<8 | patch of the generator"),
        Register("CONFIG", 0x008, "RO", "build parameters", (
            Field("LATENCY", 0, 8, "L, the grant latency in cycles"),
            Field("RECYCLE", 8, 8, "R, the recycle delay in cycles"),
            Field("TAG_BITS", 16, 4, "T"),
            Field("POOLS", 20, 4, "number of pools"),
            Field("USER_BITS", 24, 8, "U"))),
        Register("CONFIG2", 0x00C, "RO", "build parameters", (
            Field("ADDR_WIDTH", 0, 8, "A"),
            Field("LOG_DEPTH", 8, 8, "error_log_depth"),
            Field("POOL_BITS", 16, 8, "P"),
            Field("SLOT_BITS", 24, 8, "S"))),
        Register("CTRL", 0x010, "WO", "commands (full-word writes only)", (
            Field("CLEAR", 0, 1, "clear FAILS, ALLOCS, FREES, FLUSHES, OVERWRITES, ERR_COUNT, "
                                 "ERR_DROPPED" + (", GUARD_CHECKS, GUARD_REFUSED" if config.guard else "") +
                                 "; HIGH_WATER := IN_USE"),)),
        Register("STATUS", 0x014, "RO", "core status", (
            Field("READY", 0, 1, "out of reset"),
            Field("BUSY", 1, 1, "requests in flight"))),
        Register("IRQ_STATUS", 0x018, "RW1C", "interrupt causes; write 1 to clear", irq_fields(config)),
        Register("IRQ_ENABLE", 0x01C, "RW", "interrupt enables; irq = |(IRQ_STATUS & IRQ_ENABLE)",
                 irq_fields(config)),
        Register("ERR_COUNT", 0x020, "RO", "errors written to the log since reset or clear"),
        Register("ERR_DROPPED", 0x024, "RO", "errors not logged because the log was full"),
        Register("ERR_HEAD0", 0x028, "RO", "oldest log entry: what failed", ERR_HEAD0_FIELDS),
        Register("ERR_HEAD1", 0x02C, "RO", "oldest log entry: low 32 bits of the free address "
                                           "(register FREE: base + slot*slot_size), or the alloc size; "
                                           "0 for a flush"),
        Register("ERR_HEAD2", 0x030, "RO", "oldest log entry: user id (0 for register requests)"),
        Register("ERR_HEAD3", 0x034, "RO", "oldest log entry: low 32 bits of CYCLE at its handshake"),
        Register("ERR_POP", 0x038, "WO", "any full-word write drops the oldest log entry"),
        Register("CYCLE", 0x03C, "RO", "low 32 bits of a free-running cycle counter"),
    ]
    if config.guard is not None:
        from .guard import GUARD_LATENCY
        regs += [
            Register("GUARD_CTRL", 0x040, "RW", "access guard control", (
                Field("LOCK_ON_VIOLATION", 0, 1, "a refused access locks the guard: every write is "
                                                 "then refused (ACCESS_LOCKED) until unlocked"),)),
            Register("GUARD_STATUS", 0x044, "RW1C", "access guard status", (
                Field("LOCKED", 0, 1, "the guard is locked (degraded mode); write 1 to unlock"),)),
            Register("GUARD_CHECKS", 0x048, "RO", "bursts checked, AR and AW (wrapping); the guard adds "
                                                  f"{GUARD_LATENCY} cycles to AR and AW"),
            Register("GUARD_REFUSED", 0x04C, "RO", "bursts refused (wrapping)"),
        ]
    for pool in config.pools:
        base = POOL_BASE + POOL_STRIDE * pool.index
        prefix = f"POOL{pool.index}_"
        for offset, kind, access, description, fields in (
            (0x00, "ALLOC", "RO_ALLOC", f"a read allocates a slot of pool {pool.name} and "
                                        "returns a handle", HANDLE_FIELDS),
            (0x04, "FREE", "WO", "a full-word write of a handle releases it "
                                 "(SLVERR on any error, which is logged)", HANDLE_FIELDS),
            (0x08, "BASE_LO", "RO", "base [31:0]", ()),
            (0x0C, "BASE_HI", "RO", "base [63:32]", ()),
            (0x10, "SLOT_SIZE", "RO", "bytes per slot", ()),
            (0x14, "SLOTS", "RO", "number of slots", ()),
            (0x18, "IN_USE", "RO", "slots allocated now", ()),
            (0x1C, "HIGH_WATER", "RO", "most slots allocated at once since reset or clear", ()),
            (0x20, "ALLOCS", "RO", "successful grants (wrapping)", ()),
            (0x24, "FAILS", "RO", "EXHAUSTED grants", ()),
            (0x28, "FREES", "RO", "successful frees", ()),
            (0x2C, "INFO", "RO", "memory contract", (
                Field("KIND", 0, 2, "0 freelist, 1 ring"),
                Field("ACCESS_RO", 2, 1, "1 = read-only memory"),
                Field("PERSISTENT", 3, 1, "1 = persistent lifetime"))),
            (0x30, "FLUSH", "WO", "a full-word write frees every slot of the pool at once "
                                  "(OKAY; SLVERR with CONTRACT, logged, for a persistent pool)", ()),
            (0x34, "FLUSHES", "RO", "successful flushes (wrapping)", ()),
            (0x38, "OVERWRITES", "RO", "ring slots overwritten while held (0 for freelist pools)", ()),
            (0x3C, "LOW_WATER", "RW", "depletion threshold, reset 0 (off): IRQ_STATUS.LOW_WATER is "
                                      "set when a grant leaves fewer than this many slots not held "
                                      "(SLOTS - IN_USE)", (
                Field("THRESHOLD", 0, LOW_WATER_BITS, "slots"),)),
        ):
            regs.append(Register(prefix + kind, base + offset, access, description, fields,
                                 pool=pool.index, kind=kind))
    return RegisterMap(tuple(regs))


def constant_value(config, register, version):
    """The value of a constant register, or None if it is not constant."""
    from .config import RECYCLE_DELAY
    if register.name == "ID":
        return ID_VALUE
    if register.name == "VERSION":
        return version_word(version)
    if register.name == "CONFIG":
        return (config.latency | RECYCLE_DELAY << 8 | config.tag_bits << 16 |
                len(config.pools) << 20 | config.user_bits << 24)
    if register.name == "CONFIG2":
        return (config.addr_width | config.error_log_depth << 8 | config.pool_bits << 16 |
                config.slot_bits << 24)
    if register.pool is None:
        return None
    pool = config.pools[register.pool]
    return {
        "BASE_LO": pool.base & 0xFFFFFFFF,
        "BASE_HI": pool.base >> 32 & 0xFFFFFFFF,
        "SLOT_SIZE": pool.slot_size & 0xFFFFFFFF,
        "SLOTS": pool.slots,
        "INFO": ({"freelist": 0, "ring": 1}[pool.kind] | (pool.access == "ro") << 2 |
                 (pool.lifetime == "persistent") << 3),
    }.get(register.kind)
