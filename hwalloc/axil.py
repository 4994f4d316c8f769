"""AXI4-Lite slave adapter: speaks the protocol and nothing else.

On the other side is a plain register strobe bus (:func:`strobe_signature`):
a read or write request with its address, answered by an ``ack`` in the same
cycle (plain registers) or later (register ALLOC and FREE, which go through the
allocation pipeline). The adapter never knows what a register means.

- AW and W are accepted in either order or together; each is held in its own
  buffer until the other arrives.
- B and R are held until the master takes them; a new request is started only
  when its response can be presented (``~valid | ready``), so with a master that
  never stalls one read and one write complete every cycle.
- ``*ready`` outputs never depend on the same channel's ``*valid``: ``awready``
  and ``wready`` are registered, ``arready`` depends on ``rready`` and on state.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["axil_members", "strobe_signature", "AxiLiteAdapter", "OKAY", "SLVERR"]

OKAY, SLVERR = 0b00, 0b10
ADDR_BITS = 12


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
        "r_ack": Out(1), "r_data": Out(32), "r_err": Out(1),
        "w_req": In(1), "w_addr": In(ADDR_BITS), "w_data": In(32), "w_strb": In(4),
        "w_ack": Out(1), "w_err": Out(1),
    })


class AxiLiteAdapter(wiring.Component):
    """AXI4-Lite slave in front of a register strobe bus.

    Members
    -------
    ``s_axil_*`` : the AXI4-Lite slave ports.
    bus : the strobe bus, flipped (this side drives the requests).
    """

    def __init__(self):
        super().__init__(wiring.Signature({**axil_members(), "bus": In(strobe_signature())}))

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # ---- read: AR -> request -> (ack, now or later) -> R held until taken ----
        r_waiting = Signal()             # a request was made, its ack is still to come
        rvalid, rdata, rresp = Signal(), Signal(32), Signal(2)
        ar_fire = Signal()
        m.d.comb += [
            self.s_axil_arready.eq(~r_waiting & (~rvalid | self.s_axil_rready)),
            ar_fire.eq(self.s_axil_arvalid & self.s_axil_arready),
            bus.r_req.eq(ar_fire),
            bus.r_addr.eq(self.s_axil_araddr),
            self.s_axil_rvalid.eq(rvalid), self.s_axil_rdata.eq(rdata),
            self.s_axil_rresp.eq(rresp),
        ]
        with m.If(rvalid & self.s_axil_rready):
            m.d.sync += rvalid.eq(0)
        with m.If(bus.r_ack):
            m.d.sync += [rvalid.eq(1), rdata.eq(Mux(bus.r_err, 0, bus.r_data)),
                         rresp.eq(Mux(bus.r_err, SLVERR, OKAY)), r_waiting.eq(0)]
        with m.Elif(ar_fire):
            m.d.sync += r_waiting.eq(1)

        # ---- write: AW and W buffered apart; request once both are here ---------
        aw_full, aw_addr = Signal(), Signal(ADDR_BITS)
        w_full, w_data, w_strb = Signal(), Signal(32), Signal(4)
        w_waiting = Signal()
        bvalid, bresp = Signal(), Signal(2)
        have_aw = aw_full | self.s_axil_awvalid
        have_w = w_full | self.s_axil_wvalid
        w_fire = Signal()
        m.d.comb += [
            self.s_axil_awready.eq(~aw_full),
            self.s_axil_wready.eq(~w_full),
            w_fire.eq(have_aw & have_w & ~w_waiting & (~bvalid | self.s_axil_bready)),
            bus.w_req.eq(w_fire),
            bus.w_addr.eq(Mux(aw_full, aw_addr, self.s_axil_awaddr)),
            bus.w_data.eq(Mux(w_full, w_data, self.s_axil_wdata)),
            bus.w_strb.eq(Mux(w_full, w_strb, self.s_axil_wstrb)),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_bresp.eq(bresp),
        ]
        # An address or data beat that is not used this cycle waits in its buffer.
        with m.If(w_fire):
            m.d.sync += [aw_full.eq(0), w_full.eq(0)]
        with m.Else():
            with m.If(self.s_axil_awvalid & ~aw_full):
                m.d.sync += [aw_full.eq(1), aw_addr.eq(self.s_axil_awaddr)]
            with m.If(self.s_axil_wvalid & ~w_full):
                m.d.sync += [w_full.eq(1), w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb)]
        with m.If(bvalid & self.s_axil_bready):
            m.d.sync += bvalid.eq(0)
        with m.If(bus.w_ack):
            m.d.sync += [bvalid.eq(1), bresp.eq(Mux(bus.w_err, SLVERR, OKAY)), w_waiting.eq(0)]
        with m.Elif(w_fire):
            m.d.sync += w_waiting.eq(1)
        return m
