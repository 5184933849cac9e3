"""Errors of the hardware layer, split by blame (style.md section 5).

Every error names the device, the register (when there is one) and why, and says what to
check, so that a log line is enough to fix the wiring or the configuration:

- `DeviceConfigError`: the configuration asks for something the device cannot do (fix the
  file or the command line). Raised by constructors, never during a control cycle.
- `DeviceTimeoutError`: the device did not answer within the configured timeout (cable,
  address, baud rate, power of the device).
- `DeviceGarbageError`: the device answered, but the answer cannot be trusted (NaN or
  infinite floats, absurd magnitudes, a wrong register count, a Modbus exception reply).
- `DeviceConnectionError`: the port or socket cannot be opened (wrong path, USB adapter
  unplugged, gateway down).

The caller decides what to do (the master falls back to its static limit, the agent to its
fail-safe current); the hardware layer never retries behind the caller's back beyond the
one retry the transport settings allow.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every hardware error: `device` says which one, `register` where, `reason` why."""

    def __init__(self, *, device: str, reason: str, register: int | None = None) -> None:
        self.device = device
        self.register = register
        self.reason = reason
        where = f" register 0x{register:04X}" if register is not None else ""
        super().__init__(f"{device}{where}: {reason}")


class DeviceConfigError(DeviceError, ValueError):
    """The configuration asks for something the device cannot honour."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """The device did not answer in time."""


class DeviceGarbageError(DeviceError):
    """The device answered with something that cannot be a valid reading."""


class DeviceConnectionError(DeviceError, ConnectionError):
    """The port or the socket to the device cannot be opened."""
