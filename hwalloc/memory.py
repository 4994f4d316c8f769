"""Per-slot memories as the core needs them: one write port, registered
read ports, block RAM from a depth on, cut into banks past a depth.

Every read lands in a register straight from the RAM (its output register)
before any logic sees it, and a deep memory's writes come from registers beside
its RAMs: place and route showed that a block RAM read into logic, or logic
into a chip-wide RAM write, sets the clock of a large pool (see
:mod:`hwalloc.pnr`).
"""

from types import SimpleNamespace

from amaranth import Array, Cat, Const, Mux, Shape, Signal, Value
from amaranth.lib.memory import Memory

from ._rtl import equal, or_all

__all__ = ["memory", "banked", "far", "LUTRAM_DEPTH", "BANK_DEPTH", "BRAM_SHAPES", "FLOP_DEPTH",
           "GROUP_DEPTH"]

#: The deepest per-slot memory left to synthesis' choice (LUT RAM, 4 RAM64 and
#: one LUT of output multiplexer); deeper ones are asked to be block RAM.
LUTRAM_DEPTH = 256
#: The deepest memory built in flip-flops when its writer gives the rows one-hot
#: (``write_rows``): synthesis builds memories this small in flip-flops anyway
#: when they have many read ports, and then decodes the write address after
#: the write enable, levels deep.
FLOP_DEPTH = 16
#: The rows of the smallest LUT RAM (an ECP5 DPR16X4; a Xilinx RAM32X1D holds
#: twice as many): a memory deeper than FLOP_DEPTH whose writer gives the rows
#: (``write_rows``) is built of memories this deep, a group of rows each.
GROUP_DEPTH = 16
#: The most rows a block RAM bank has (deeper memories are cut into banks).
BANK_DEPTH = 16384
#: Block RAM aspect ratios (depth, width) that need no depth cascade on either
#: family: the narrower of a Xilinx RAMB36 and a Lattice ECP5 DP16KD at each
#: depth. A cascade puts a multiplexer between the RAMs and their output
#: register, which then cannot be the RAM's own.
BRAM_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def banked(depth):
    """A memory of ``depth`` rows is cut into banks (read as BANK_DEPTH is now:
    tests make banks shallow)."""
    return depth > BANK_DEPTH


def far(depth):
    """A memory of ``depth`` rows fills a bank or more: one block RAM a bit at
    least (16384 rows of a DP16KD), 31 and up for a pool's memories, which lie
    across the chip. Its reads that feed logic take three edges (``late``):
    place and route put a pool of 16384 slots, two edges, at 171.5-204.8 MHz,
    its worst path from a RAM's output register (0.7 ns) over 3.2-3.4 ns of
    routing into the free check's chain (read as BANK_DEPTH is now: tests make
    banks shallow)."""
    return depth >= BANK_DEPTH


def memory(m, name, shape, depth, *, reads, registered_write=False, stored=None, write_rows=False,
           late=(), forward=()):
    """A memory of ``depth`` entries with one write port (a namespace of ``addr``,
    ``en`` and ``data``) and ``reads`` registered, non-transparent read ports (a
    namespace of ``addr`` and ``data`` each).

    With ``registered_write``, what the write port is given at one edge is
    written at the next: the helper registers it, per bank, next to the RAMs,
    each bank's copy loaded only when the address is in that bank (so the copies
    differ and synthesis keeps them apart; a memory of one bank: when written).
    A deep memory's RAMs lie across the chip; its address, data and enable then
    come from registers, never from logic or from one register that also feeds
    logic elsewhere.

    A read takes two edges: the address is taken at edge e, and at edge e+1 the
    RAM's output is loaded straight into a register, with no logic in front of
    it (on Xilinx the block RAM's own output register; on ECP5 the DP16KD's, see
    :mod:`hwalloc.pnr`). ``data`` is that register's content: the memory as
    written before edge e. ``stored``, if given, maps what the write port is
    given to what the memory holds (a small function, such as an increment of
    a field), applied behind the write's registers, between them and the RAMs,
    where it delays no logic in front of them. Read ports are always enabled:
    a read enable would cost a hold multiplexer between the RAM and that
    register.

    Up to LUTRAM_DEPTH entries it is one memory, left to synthesis. Deeper, it is
    block RAM, sliced into memories as wide as one block RAM is at that depth on
    both Xilinx and ECP5 (4096 entries: 4 bits), so that synthesis needs no
    multiplexer of block RAM outputs, which would stand between a RAM and its
    output register. Deeper
    than BANK_DEPTH it is also cut into banks of BANK_DEPTH rows (the deepest a
    single ECP5 DP16KD or a RAMB36 pair is without a cascade), each with its own
    output registers; ``data`` then selects the bank after the registers (one
    LUT level, in the stage that reads it). ``parts`` lists ``(select, data)``
    of each bank (one, selected by 1, if the memory is not banked), for a
    reader that folds the choice of the bank into a choice of its own.

    Read ports listed in ``late`` take three edges: each bank's output
    register (the one Lattice's flow moves into the DP16KD, see
    :mod:`hwalloc.pnr`), then one more beside it, then (banked) the choice of
    the bank. A memory whose RAMs lie across the chip (a pool of a bank or
    more, :func:`far`) needs it: the RAM's clock-to-out and the route to the
    logic that reads it do not fit one cycle, nor share two. Every read port's
    ``edges`` says how many it takes (2 or 3): a caller gives a late port its
    address an edge earlier.

    A late port listed in ``forward`` also returns the row written at the edge
    that takes its address, where a RAM may return either value: that write and
    the address, both registered at that edge, are compared after it, and the
    data is carried beside the RAM's, one more of ``parts``. Such a
    port has a ``gate`` as well, which the caller drives in the cycle before the
    data lands (after edge e+1); its ``parts`` are all unselected (``data`` is
    0) where the gate was 0, so that a reader choosing among several memories
    needs no select of its own.

    With ``write_rows``, a memory of up to FLOP_DEPTH entries is built here in
    flip-flops, and the write port has ``rows`` as well: the write address's
    row, one-hot, which the writer drives from a register of its own (loaded
    with the address's one-hot as the address is), so that each row's enable
    is the write enable and one bit. A read registers its address at edge e and
    its row's content at e+1 (the row written at edge e reads either value, as
    a RAM's). Deeper than GROUP_DEPTH, up to LUTRAM_DEPTH, it is built of LUT
    RAMs of GROUP_DEPTH rows, and ``rows`` is the one-hot of the address's group of
    rows (``rows_of`` says how many rows a bit stands for: 1 in flip-flops):
    left to synthesis, each LUT RAM's write enable was the write enable decoded
    with the address, levels of logic that place and route showed on
    SIZE_CLASSES' worst path. Each group's read lands in a register of its
    own at edge e, and the group is chosen into ``data`` at e+1 (the choice
    between the registers, not between a LUT RAM and its register). ``rows``
    is None if the memory is not built in either way."""
    width = Shape.cast(shape).width
    write = SimpleNamespace(addr=Signal(range(depth), name=f"{name}_waddr"), en=Signal(name=f"{name}_wen"),
                            data=Signal(shape, name=f"{name}_wdata"), rows=None, rows_of=None)
    read = [SimpleNamespace(addr=Signal(range(depth), name=f"{name}_addr"),
                            data=Signal(shape, name=f"{name}_data")) for _ in range(reads)]
    if write_rows and depth <= FLOP_DEPTH and not registered_write and stored is None:
        # (late ports only in a pool of a bank or more, which is built in
        # flip-flops only with banks made shallow, as tests do)
        # (forward: a read of flip-flops registers the row after the edge that
        # takes its address, with that edge's write)
        _flops(m, name, shape, depth, write, read, late)
        return write, read
    if (write_rows and GROUP_DEPTH < depth <= LUTRAM_DEPTH and not registered_write and stored is None
            and not late):
        _groups(m, name, shape, depth, write, read)
        return write, read
    # no_rw_check: a read of the row written at the same edge may return either
    # value. The core never uses such a read (the forwarding of alloc t-3 and
    # free t-3 covers it; a queue read at its commit never reads the row it
    # writes, a deep queue's forwards it: ``forward``), so synthesis need not
    # emulate read-old-data with a multiplexer after the RAM.
    if depth <= LUTRAM_DEPTH:
        slices, attrs = [(0, width)], {"no_rw_check": 1}
    else:
        slice_width = next((w for d, w in BRAM_SHAPES if min(depth, BANK_DEPTH) <= d), 1)
        slices = [(lo, min(lo + slice_width, width)) for lo in range(0, width, slice_width)]
        attrs = {"ram_style": "block", "no_rw_check": 1}
    banks = -(-depth // BANK_DEPTH)             # the last one may be shorter
    row_bits = max(1, (min(depth, BANK_DEPTH) - 1).bit_length())
    # per read port: each bank's output registers, and which bank the read was of
    outputs = [[Signal(shape, name=f"{name}_r{j}_b{b}", reset_less=True) for b in range(banks)]
               for j in range(reads)]
    for b in range(banks):
        bank_en = write.en if banks == 1 else write.en & (write.addr[row_bits:] == b)
        bank_addr, bank_data = write.addr[:row_bits], Value.cast(write.data)
        if registered_write:
            tag = f"{name}_w" + (f"_b{b}" if banks > 1 else "")
            en_q = Signal(name=f"{tag}_en")
            addr_q = Signal(row_bits, name=f"{tag}_addr", reset_less=True)
            data_q = Signal(len(bank_data), name=f"{tag}_data", reset_less=True)
            m.d.sync += en_q.eq(bank_en)
            # (a bank's copies are loaded whenever the address is in the bank,
            # written or not: not by the enable, which place and route showed
            # on a deep pool's worst path, from the free's decision into every
            # bank's registers across the chip)
            with m.If(bank_en if banks == 1 else write.addr[row_bits:] == b):
                m.d.sync += [addr_q.eq(bank_addr), data_q.eq(bank_data)]
            bank_en, bank_addr, bank_data = en_q, addr_q, data_q
        if stored is not None:
            bank_data = Value.cast(stored(bank_data))
        bank_rows = min(BANK_DEPTH, depth - b * BANK_DEPTH)
        for i, (lo, hi) in enumerate(slices):
            memory = Memory(shape=hi - lo, depth=bank_rows, init=[], attrs=attrs)
            suffix = (f"_{i}" if len(slices) > 1 else "") + (f"_bank{b}" if banks > 1 else "")
            m.submodules[name + suffix] = memory
            w = memory.write_port()
            m.d.comb += [w.addr.eq(bank_addr), w.en.eq(bank_en), w.data.eq(bank_data[lo:hi])]
            for ours, out in zip(read, outputs, strict=True):
                r = memory.read_port()
                m.d.comb += r.addr.eq(ours.addr[:row_bits] if banks > 1 else ours.addr)
                m.d.sync += Value.cast(out[b])[lo:hi].eq(r.data)
    if forward:
        # the write the RAMs take at edge e (with ``registered_write`` given at
        # e-1, so registered once here first), registered at e as stored
        taken_w = (write.en, write.addr, Value.cast(write.data))
        if registered_write:
            given = (Signal(name=f"{name}_wfwd_en_given"),
                     Signal(range(depth), name=f"{name}_wfwd_addr_given", reset_less=True),
                     Signal(width, name=f"{name}_wfwd_data_given", reset_less=True))
            m.d.sync += [reg.eq(value) for reg, value in zip(given, taken_w, strict=True)]
            taken_w = given
        fwd_en = Signal(name=f"{name}_wfwd_en")
        fwd_addr = Signal(range(depth), name=f"{name}_wfwd_addr", reset_less=True)
        fwd_data = Signal(width, name=f"{name}_wfwd_data", reset_less=True)
        m.d.sync += [reg.eq(value) for reg, value in zip((fwd_en, fwd_addr, fwd_data), taken_w, strict=True)]
        fwd_stored = Value.cast(stored(fwd_data)) if stored is not None else fwd_data
    for j, (ours, out) in enumerate(zip(read, outputs, strict=True)):
        ours.edges = 2
        if banks == 1 and j not in late:
            m.d.comb += ours.data.eq(out[0])
            ours.parts = [(Const(1), out[0])]
            continue
        if banks == 1:
            chosen = Const(1, 1)
        else:
            # the bank of the address taken at edge e, one-hot, registered at e and e+1
            taken, chosen = (Signal(banks, name=f"{name}_r{j}_bank_taken", reset_less=True),
                             Signal(banks, name=f"{name}_r{j}_bank", reset_less=True))
            m.d.sync += [taken.eq(Cat(ours.addr[row_bits:] == b for b in range(banks))), chosen.eq(taken)]
        forwarded = []      # the forwarding read's part, if any
        if j in late:
            # one more register a bank, and the bank's select with it (at e+2)
            ours.edges = 3
            later = [Signal(shape, name=f"{name}_r{j}_late" + (f"_b{b}" if banks > 1 else ""),
                            reset_less=True) for b in range(banks)]
            chosen_late = (Signal(banks, name=f"{name}_r{j}_bank_late", reset_less=True)
                           if banks > 1 or j in forward else chosen)
            m.d.sync += [late_out.eq(early_out) for late_out, early_out in zip(later, out, strict=True)]
            if j in forward:
                # the row written at edge e: its write and the read's address,
                # both registered at e, compared after it, the data carried
                # beside the RAM's read; the caller's gate (driven before e+2)
                # selects both or neither
                ours.gate = Signal(init=1, name=f"{name}_r{j}_gate")
                addr_taken = Signal.like(ours.addr, name=f"{name}_r{j}_fwd_addr", reset_less=True)
                hit = [Signal(name=f"{name}_r{j}_fwd_hit{k}") for k in (1, 2)]
                data = [Signal(shape, name=f"{name}_r{j}_fwd_data{k}", reset_less=True) for k in (1, 2)]
                m.d.sync += [addr_taken.eq(ours.addr),
                             hit[0].eq(fwd_en & equal(fwd_addr, addr_taken)),
                             Value.cast(data[0]).eq(fwd_stored),
                             hit[1].eq(hit[0] & ours.gate), Value.cast(data[1]).eq(data[0]),
                             chosen_late.eq(Mux(hit[0] | ~ours.gate, 0, chosen))]
                forwarded.append((hit[1], data[1]))
            elif banks > 1:
                m.d.sync += chosen_late.eq(chosen)
            out, chosen = later, chosen_late
        parts = [(chosen[b], out[b]) for b in range(banks)] + forwarded
        if len(parts) == 1 and banks == 1:
            m.d.comb += ours.data.eq(out[0])
        else:
            m.d.comb += Value.cast(ours.data).eq(or_all(Mux(select, value, 0) for select, value in parts))
        ours.parts = parts
    return write, read


def _groups(m, name, shape, depth, write, read):
    # memory()'s build in LUT RAMs of GROUP_DEPTH rows: each written where
    # the one-hot groups say, each read registered, then the read's group
    # (its address registered at edge e) chosen into the output at e+1
    groups = -(-depth // GROUP_DEPTH)
    row_bits = (GROUP_DEPTH - 1).bit_length()
    write.rows, write.rows_of = Signal(groups, name=f"{name}_wgroups"), GROUP_DEPTH
    outputs = [[] for _ in read]
    for g in range(groups):
        # (a last group of one row is built of two: its address a bit wide)
        memory = Memory(shape=shape, depth=max(2, min(GROUP_DEPTH, depth - g * GROUP_DEPTH)), init=[],
                        attrs={"no_rw_check": 1})
        m.submodules[f"{name}_g{g}"] = memory
        w = memory.write_port()
        m.d.comb += [w.addr.eq(write.addr[:row_bits]), w.en.eq(write.en & write.rows[g]),
                     w.data.eq(write.data)]
        for ours, outs in zip(read, outputs, strict=True):
            r = memory.read_port()
            m.d.comb += r.addr.eq(ours.addr[:row_bits])
            outs.append(r.data)
    for j, (ours, outs) in enumerate(zip(read, outputs, strict=True)):
        ours.edges = 2
        taken = Signal(range(groups), name=f"{name}_r{j}_group", reset_less=True)
        out = Signal(shape, name=f"{name}_r{j}", reset_less=True)
        m.d.sync += [taken.eq(ours.addr[row_bits:]), out.eq(Array(outs)[taken])]
        m.d.comb += ours.data.eq(out)
        ours.parts = [(Const(1), out)]


def _flops(m, name, shape, depth, write, read, late):
    # memory()'s flip-flop build: a register a row, written where the one-hot
    # rows say; each read's address registered, then its row into the output
    write.rows, write.rows_of = Signal(depth, name=f"{name}_wrows"), 1
    cells = Array(Signal(shape, name=f"{name}_row{r}", reset_less=True) for r in range(depth))
    for r in range(depth):
        with m.If(write.en & write.rows[r]):
            m.d.sync += cells[r].eq(write.data)
    for j, ours in enumerate(read):
        ours.edges = 2
        taken = Signal.like(ours.addr, name=f"{name}_r{j}_addr", reset_less=True)
        out = Signal(shape, name=f"{name}_r{j}", reset_less=True)
        m.d.sync += [taken.eq(ours.addr), out.eq(cells[taken])]
        if j in late:
            ours.edges = 3
            later = Signal(shape, name=f"{name}_r{j}_late", reset_less=True)
            m.d.sync += later.eq(out)
            out = later
        m.d.comb += ours.data.eq(out)
        ours.parts = [(Const(1), out)]
