"""AXI4-Lite slave adapter: speaks the protocol and nothing else.

On the other side is a plain register strobe bus (:func:`strobe_signature`).
The adapter never knows what a register means.

- Reads are pipelined (SPEC §6): an AR beat is accepted every cycle while
  fewer than ``depth`` reads are open, and handed to the register file in its
  own cycle. The register file says at once which in-order stream will answer
  it: fast (plain registers, an answer formed two cycles later) or slow (a
  register ALLOC, answered from the pipeline's grant). Each answer enters its
  stream's queue in the cycle it is formed; R shows the head of the queue
  whose turn it is, in request order. Every R output is a register, and R is
  held until taken: a plain read answers 3 cycles after its AR handshake, a
  register ALLOC L + 2, with a master that never stalls.
- Writes the same way: AW and W are accepted in either order or together, an
  AW+W pair handed to the register file in the cycle both are there, answered
  on a fast stream (plain registers: B 3 cycles after the later of AW and W)
  or a slow one (FREE and FLUSH: L + 2), merged in request order.

No path from a ``*ready``/``*valid`` input reaches another handshake output
(SPEC §6): ``awready`` and ``wready`` are queues' not-full registers,
``arready``, ``rvalid`` and ``bvalid`` functions of queue registers.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._rtl import RamQueue, ShiftQueue

__all__ = ["axil_members", "strobe_signature", "AxiLiteAdapter", "OKAY", "SLVERR"]

OKAY, SLVERR = 0b00, 0b10
ADDR_BITS = 12
#: Address (and data) beats waiting for their partner, at most.
WRITE_BEATS = 2


def axil_members():
    """The AXI4-Lite slave ports of SPEC §6, seen from the slave."""
    return {
        "s_axil_awvalid": In(1), "s_axil_awready": Out(1), "s_axil_awaddr": In(ADDR_BITS),
        "s_axil_awprot": In(3),
        "s_axil_wvalid": In(1), "s_axil_wready": Out(1), "s_axil_wdata": In(32),
        "s_axil_wstrb": In(4),
        "s_axil_bvalid": Out(1), "s_axil_bready": In(1), "s_axil_bresp": Out(2),
        "s_axil_arvalid": In(1), "s_axil_arready": Out(1), "s_axil_araddr": In(ADDR_BITS),
        "s_axil_arprot": In(3),
        "s_axil_rvalid": Out(1), "s_axil_rready": In(1), "s_axil_rdata": Out(32),
        "s_axil_rresp": Out(2),
    }


def strobe_signature():
    """The register bus, seen from the register file (which is its ``Out`` side)."""
    return wiring.Signature({
        "r_req": In(1), "r_addr": In(ADDR_BITS),
        # r_req's two halves, ARVALID and the adapter's room flag (r_req is
        # their AND): a decode on a carry chain takes them as two of its bits
        # rather than after the AND's LUT (place and route showed that LUT,
        # then 2.7 ns of routing into the register ALLOC's decode, on a worst
        # path of GUARDED_DMA)
        "r_req_parts": In(2),
        "r_slow": Out(1),
        "r_ack": Out(1), "r_data": Out(32), "r_err": Out(1),
        "r_slow_ack": Out(1), "r_slow_data": Out(32),
        # a write pair: its address is ``w_addr`` (the AW pins) or, with
        # ``w_addr_from_queue``, ``w_addr_queued`` (a beat that waited, a
        # register); its data and strobes the same way (given apart, so that a
        # decode can be formed from each and chosen last)
        "w_req": In(1), "w_addr": In(ADDR_BITS), "w_data": In(32), "w_strb": In(4),
        "w_addr_queued": In(ADDR_BITS), "w_addr_from_queue": In(1),
        "w_data_queued": In(32), "w_strb_queued": In(4), "w_beat_from_queue": In(1),
        "w_slow": Out(1),               # of the write requested in the last cycle
        "w_ack": Out(1), "w_err": Out(1),
        "w_slow_ack": Out(1), "w_slow_err": Out(1),
    })


def _room(m, queue, on_way, taken, pop, name):
    """Whether ``queue`` has room for one more entry than the one on its way
    (``on_way``, pushed in the next cycle), as a register: the flag of the next
    cycle, from this cycle's queue, the entry on its way, the one ``taken`` now
    (on its way in the next cycle) and the ``pop``. Place and route showed the
    flag formed from the queue in the cycle that uses it, two LUTs in front of
    the handshake that the register file's whole decode waits for, on the
    worst path of the register interface."""
    depth = queue.depth
    assert depth >= 3
    room = Signal(name=name, init=1)

    def fits(change):
        # room in the next cycle when the entries held and on their way change
        # by ``change``: no more than depth - 1 - change held now
        held_limit = depth - 1 - change
        return Const(1) if held_limit >= depth else ~queue.full[held_limit]
    m.d.sync += room.eq(Mux(pop, Mux(on_way, Mux(taken, fits(1), fits(0)), Mux(taken, fits(0), fits(-1))),
                            Mux(on_way, Mux(taken, fits(2), fits(1)), Mux(taken, fits(1), fits(0)))))
    return room


class AxiLiteAdapter(wiring.Component):
    """AXI4-Lite slave in front of a register strobe bus.

    Members
    -------
    ``s_axil_*`` : the AXI4-Lite slave ports.
    bus : the strobe bus, flipped (this side drives the requests).
    """

    def __init__(self, *, depth):
        self._depth = depth
        super().__init__(wiring.Signature({**axil_members(), "bus": In(strobe_signature())}))

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # ---- read: pipelined, answered in order --------------------------------------
        # The AR beat goes to the register file in its own cycle, which says at
        # once which of two in-order streams will answer it: fast (plain
        # registers, two cycles later) or slow (a register ALLOC, after the
        # pipeline). Each answer is queued in its stream's queue the cycle it
        # is formed, and R shows the head of the queue whose turn it is (the
        # kind queue keeps the request order): every R output is a register.
        # The kind is queued in the cycle after the AR, from a register (the
        # register file's decode of the address fanned out to every entry of
        # the kind queue set the clock after place and route), and is there
        # before any answer (two cycles after the AR at the earliest). The kind
        # queue holds one entry per open read: a read is accepted while it has
        # room for one more than the read whose kind is on its way, so no queue
        # can overflow. The two answer queues
        # keep their entries behind the head in LUT RAM (RamQueue): as shift
        # queues, their pop reached all 65 bits of every entry and set the
        # clock after place and route.
        depth = self._depth
        kinds = ShiftQueue(m, 1, depth, "r_kinds")
        fast = RamQueue(m, 33, depth, "r_fast")
        slow = RamQueue(m, 32, depth, "r_slow")
        ar_fire, r_fire = Signal(), Signal()
        ar_fired, ar_slow = Signal(), Signal()  # an AR in the last cycle, and its stream
        m.d.sync += [ar_fired.eq(ar_fire), ar_slow.eq(bus.r_slow)]
        ar_room = _room(m, kinds, ar_fired, ar_fire, r_fire, "ar_room")
        head_slow = kinds.head[0]
        # whose turn it is, and whether its answer is there, as registers of
        # their own, formed from the queues' next heads: each stream's pop is
        # then a LUT of its flag and RREADY, where place and route showed it
        # three LUTs after the queues' flags at the end of the guarded core's
        # worst path (a LUT RAM queue's pointer enable)
        fast_turn, slow_turn = Signal(name="r_fast_turn"), Signal(name="r_slow_turn")

        def after(queue, pop):
            return Mux(pop, queue.head_valid_after(True), queue.head_valid_after(False))
        (popped_valid, popped), (kept_valid, kept) = kinds.head_after(True), kinds.head_after(False)
        kind_valid, kind_slow = Mux(r_fire, popped_valid, kept_valid), Mux(r_fire, popped[0], kept[0])
        m.d.sync += [fast_turn.eq(kind_valid & ~kind_slow & after(fast, fast.pop)),
                     slow_turn.eq(kind_valid & kind_slow & after(slow, slow.pop))]
        m.d.comb += [
            self.s_axil_arready.eq(ar_room),
            ar_fire.eq(self.s_axil_arvalid & ar_room),
            bus.r_req.eq(ar_fire), bus.r_req_parts.eq(Cat(self.s_axil_arvalid, ar_room)),
            bus.r_addr.eq(self.s_axil_araddr),
            kinds.push.eq(ar_fired), kinds.w_data.eq(ar_slow),
            self.s_axil_rvalid.eq(fast_turn | slow_turn),
            self.s_axil_rdata.eq(Mux(head_slow, slow.head, fast.head[:32])),
            self.s_axil_rresp.eq(Mux(~head_slow & fast.head[32], SLVERR, OKAY)),
            # (each stream's pop a LUT of its flag and RREADY, not after RVALID:
            # the queues' next states follow it)
            r_fire.eq(fast.pop | slow.pop),
            kinds.pop.eq(r_fire),
            fast.pop.eq(fast_turn & self.s_axil_rready),
            fast.push.eq(bus.r_ack), fast.w_data.eq(Cat(bus.r_data, bus.r_err)),
            slow.pop.eq(slow_turn & self.s_axil_rready),
            slow.push.eq(bus.r_slow_ack),
            slow.w_data.eq(bus.r_slow_data),
        ]

        # ---- write: pipelined as reads are ------------------------------------------
        # AW and W beats are paired in arrival order; a beat whose partner is
        # not here yet waits in its channel's queue (``awready``/``wready`` are
        # those queues' not-full registers). A pair goes to the register file in
        # the cycle both are here, straight from the pins if they arrive then
        # (the register file chooses between pins and queue heads),
        # and the register file says in the next cycle (from a register: the
        # decode of a paired address is too deep to feed the queue at once)
        # which stream answers it: fast (plain registers and refused writes) or
        # slow (a FREE or FLUSH, from the pipeline's response). B shows the head
        # of the stream whose turn it is, in request order; every B output is a
        # register. The kind queue holds one entry per write requested and not
        # yet answered, and a pair is requested only while it has room for one
        # more than the write whose kind is on its way.
        aw_q = ShiftQueue(m, len(self.s_axil_awaddr), WRITE_BEATS, "w_addrs")
        w_q = ShiftQueue(m, 36, WRITE_BEATS, "w_datas")
        w_kinds = ShiftQueue(m, 1, depth, "w_kinds")
        w_fast = ShiftQueue(m, 1, depth, "w_fast")
        w_slow = ShiftQueue(m, 1, depth, "w_slow")
        aw_fire, w_fire, pair, b_fire = Signal(), Signal(), Signal(), Signal()
        paired = Signal()                       # a pair was requested in the last cycle
        m.d.sync += paired.eq(pair)
        room = _room(m, w_kinds, paired, pair, b_fire, "w_room")
        aw_direct, w_direct = ~aw_q.head_valid, ~w_q.head_valid
        b_head_slow = w_kinds.head[0]
        bvalid = w_kinds.head_valid & Mux(b_head_slow, w_slow.head_valid, w_fast.head_valid)
        w_pin = Cat(self.s_axil_wdata, self.s_axil_wstrb)
        m.d.comb += [
            self.s_axil_awready.eq(~aw_q.at_limit), self.s_axil_wready.eq(~w_q.at_limit),
            aw_fire.eq(self.s_axil_awvalid & ~aw_q.at_limit),
            w_fire.eq(self.s_axil_wvalid & ~w_q.at_limit),
            pair.eq((aw_q.head_valid | aw_fire) & (w_q.head_valid | w_fire) & room),
            aw_q.pop.eq(pair & ~aw_direct), aw_q.push.eq(aw_fire & ~(pair & aw_direct)),
            aw_q.w_data.eq(self.s_axil_awaddr),
            w_q.pop.eq(pair & ~w_direct), w_q.push.eq(w_fire & ~(pair & w_direct)),
            w_q.w_data.eq(w_pin),
            bus.w_req.eq(pair),
            bus.w_addr.eq(self.s_axil_awaddr), bus.w_addr_queued.eq(aw_q.head),
            bus.w_addr_from_queue.eq(aw_q.head_valid),
            bus.w_data.eq(self.s_axil_wdata), bus.w_strb.eq(self.s_axil_wstrb),
            bus.w_data_queued.eq(w_q.head[:32]), bus.w_strb_queued.eq(w_q.head[32:]),
            bus.w_beat_from_queue.eq(w_q.head_valid),
            w_kinds.push.eq(paired), w_kinds.w_data.eq(bus.w_slow),
            self.s_axil_bvalid.eq(bvalid),
            self.s_axil_bresp.eq(Mux(Mux(b_head_slow, w_slow.head[0], w_fast.head[0]), SLVERR, OKAY)),
            b_fire.eq(w_fast.pop | w_slow.pop),
            w_kinds.pop.eq(b_fire),
            w_fast.pop.eq(w_kinds.head_valid & ~b_head_slow & w_fast.head_valid & self.s_axil_bready),
            w_fast.push.eq(bus.w_ack), w_fast.w_data.eq(bus.w_err),
            w_slow.pop.eq(w_kinds.head_valid & b_head_slow & w_slow.head_valid & self.s_axil_bready),
            w_slow.push.eq(bus.w_slow_ack),
            w_slow.w_data.eq(bus.w_slow_err),
        ]
        return m
