"""Reading a port's value as an integer, fast: the benches read dozens of ports
every cycle, and cocotb's ``handle.value`` builds a LogicArray for each read
(a third of a native bench's time). This asks the simulator for the bits
directly; a value with X or Z bits raises ValueError, as ``int(handle.value)`` does."""

__all__ = ["int_reader", "quiet_guard_ports"]


def int_reader(handle):
    """A function of no arguments returning ``int(handle.value)``."""
    raw = getattr(handle, "_handle", None)           # cocotb 2.1's simulator object
    if raw is None or not hasattr(raw, "get_signal_val_binstr"):
        return lambda: int(handle.value)
    binstr = raw.get_signal_val_binstr
    return lambda: int(binstr(), 2)


def quiet_guard_ports(dut, config):
    """With a guard: the AXI4 inputs of ``s_axi`` and ``m_axi`` idle (a bench
    that does not use the guard must still drive them)."""
    if config.guard is None:
        return
    for name in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
        getattr(dut, f"s_axi_{name}").value = 0
    for name in ("awready", "wready", "arready", "bvalid", "rvalid"):
        getattr(dut, f"m_axi_{name}").value = 0
