"""AXI4-Lite slave adapter: speaks the protocol and nothing else.

On the other side is a plain register strobe bus (:func:`strobe_signature`):
a read or write request, a one-cycle pulse with its fields, answered by an
``ack`` pulse some cycles later with its data, from registers. The adapter
presents an answer in the cycle of its ``ack`` and, while the master stalls,
from its own copy. The adapter never knows what a register means.

Every output and every bus request comes from a register, so no path from an
input port reaches deep into the core (SPEC 6: nothing combinational from a
``*ready``/``*valid`` input to another handshake output).

- One read and one write are in flight at a time. ``arready`` is high while no
  read is; the address is registered into the bus request at the handshake.
- AW and W are accepted in either order or together, each into its own buffer
  (``awready``/``wready`` are high while that buffer is empty); the write is
  requested the cycle both are there.
- R and B are held until the master takes them. The next request of that
  channel is accepted the cycle after its response is taken: a plain register
  read or write takes four cycles from handshake to handshake.
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

        # ---- read: AR -> request -> ack -> R held until taken ----------------------
        r_busy = Signal()                # from the AR handshake to the R handshake
        r_held = Signal()                # the answer was presented and not yet taken
        r_data, r_err = Signal(32), Signal()     # ... and this is what it was
        ar_fire, r_fire = Signal(), Signal()
        rvalid = Signal()
        m.d.comb += [
            self.s_axil_arready.eq(~r_busy),
            ar_fire.eq(self.s_axil_arvalid & ~r_busy),
            rvalid.eq(r_held | bus.r_ack),
            r_fire.eq(rvalid & self.s_axil_rready),
            self.s_axil_rvalid.eq(rvalid),
            # a held answer comes from the adapter's own copy, whatever the bus does
            self.s_axil_rdata.eq(Mux(r_held, r_data, bus.r_data)),
            self.s_axil_rresp.eq(Mux(Mux(r_held, r_err, bus.r_err), SLVERR, OKAY)),
        ]
        m.d.sync += [bus.r_req.eq(ar_fire), r_held.eq(rvalid & ~self.s_axil_rready)]
        with m.If(~r_held):
            m.d.sync += [r_data.eq(bus.r_data), r_err.eq(bus.r_err)]
        with m.If(ar_fire):
            m.d.sync += [r_busy.eq(1), bus.r_addr.eq(self.s_axil_araddr)]
        with m.If(r_fire):
            m.d.sync += r_busy.eq(0)

        # ---- write: AW and W buffered apart; request once both are here ------------
        aw_full, w_full = Signal(), Signal()
        w_busy, b_held, b_err = Signal(), Signal(), Signal()
        aw_fire, w_fire, b_fire = Signal(), Signal(), Signal()
        bvalid = Signal()
        have_aw, have_w = aw_full | aw_fire, w_full | w_fire
        m.d.comb += [
            self.s_axil_awready.eq(~aw_full),
            self.s_axil_wready.eq(~w_full),
            aw_fire.eq(self.s_axil_awvalid & ~aw_full),
            w_fire.eq(self.s_axil_wvalid & ~w_full),
            bvalid.eq(b_held | bus.w_ack),
            b_fire.eq(bvalid & self.s_axil_bready),
            self.s_axil_bvalid.eq(bvalid),
            self.s_axil_bresp.eq(Mux(Mux(b_held, b_err, bus.w_err), SLVERR, OKAY)),
        ]
        m.d.sync += [bus.w_req.eq(have_aw & have_w & ~w_busy), b_held.eq(bvalid & ~self.s_axil_bready)]
        with m.If(~b_held):
            m.d.sync += b_err.eq(bus.w_err)
        with m.If(aw_fire):
            m.d.sync += [aw_full.eq(1), bus.w_addr.eq(self.s_axil_awaddr)]
        with m.If(w_fire):
            m.d.sync += [w_full.eq(1), bus.w_data.eq(self.s_axil_wdata), bus.w_strb.eq(self.s_axil_wstrb)]
        with m.If(have_aw & have_w):
            m.d.sync += w_busy.eq(1)
        with m.If(b_fire):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), w_busy.eq(0)]
        return m
