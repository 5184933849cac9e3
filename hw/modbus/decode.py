"""Float32 words to checked values, and back (the simulators encode with the same code).

Eastron order: IEEE-754 float32, big-endian bytes, high word first. A value that is NaN,
infinite or outside its quantity's plausible range (`profiles.Kind`) is garbage: the
register is named in the error so the installer can compare with the device's display.
"""

from __future__ import annotations

import math
import struct

from hw.errors import DeviceGarbageError
from hw.modbus.profiles import FLOAT32_REGISTERS, Quantity, ReadBlock


def float32_to_registers(value: float) -> tuple[int, int]:
    """Encode `value` as Eastron float32: (high word, low word)."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return int(high), int(low)


def registers_to_float32(high: int, low: int) -> float:
    """Decode an Eastron float32 from its (high word, low word)."""
    value: float = struct.unpack(">f", struct.pack(">HH", high, low))[0]
    return value


def decode_block(*, device: str, block: ReadBlock, registers: list[int]) -> dict[Quantity, float]:
    """Decode and check every quantity of `block` from the `registers` read for it.

    Raises DeviceGarbageError for a wrong register count, a NaN or infinite value, or a
    value outside the quantity's plausible range.
    """
    if len(registers) != block.count:
        raise DeviceGarbageError(
            device=device,
            register=block.address,
            reason=f"expected {block.count} registers, got {len(registers)}",
        )
    values: dict[Quantity, float] = {}
    for quantity, offset in block.fields:
        high, low = registers[offset : offset + FLOAT32_REGISTERS]
        value = registers_to_float32(high, low)
        address = block.address + offset
        if not math.isfinite(value):
            raise DeviceGarbageError(
                device=device,
                register=address,
                reason=f"{quantity.label} is {value}: the device reports no valid number",
            )
        kind = quantity.kind
        if not kind.lowest <= value <= kind.highest:
            raise DeviceGarbageError(
                device=device,
                register=address,
                reason=f"{quantity.label} = {value:.6g} is outside the plausible "
                f"{kind.lowest:g}..{kind.highest:g}: wrong register profile or a faulty device",
            )
        values[quantity] = value
    return values
