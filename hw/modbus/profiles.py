"""Register maps as data: which Modbus register holds which quantity, for each device.

Eastron meters keep every measurement as an IEEE-754 float32 in two input registers, high
word first (big-endian words and bytes). A profile lists the quantities a device has; the
driver turns that list into as few reads as possible (`RegisterProfile.read_plan`), and the
simulators serve the same map, so both ends agree by construction.

Addresses are the protocol addresses (0-based), as in Eastron's "Modbus protocol" sheets:
SDM630 V L1/L2/L3 0x0000/0x0002/0x0004, I L1/L2/L3 0x0006/0x0008/0x000A, W L1/L2/L3
0x000C/0x000E/0x0010, total W 0x0034, frequency 0x0046, import kWh 0x0048, total kWh
0x0156 (import + export, "30343", what third-party tools read). The SDM120 has the same
layout for the single phase it measures, total active energy at 0x0156 too. Measurements
are input registers only (function 0x04); Eastron's holding registers hold settings.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from hw.errors import DeviceConfigError

FLOAT32_REGISTERS = 2  # an IEEE-754 float32 spans two 16-bit registers
EASTRON_MAX_REGISTERS_PER_READ = 80  # Eastron: at most 40 float parameters per request
MODBUS_MAX_REGISTERS_PER_READ = 125  # Modbus spec: FC 3/4 return at most 125 registers


class RegisterTable(enum.Enum):
    """Which Modbus table holds the values, by its read function code."""

    HOLDING = 3
    INPUT = 4


class Kind(enum.Enum):
    """What a quantity measures, with the range outside which a reading is garbage."""

    VOLTAGE_V = (0.0, 500.0)  # 400 V networks: a phase voltage above 500 V is not real
    CURRENT_A = (-1000.0, 1000.0)  # no io7 site connection comes near 1000 A
    POWER_W = (-700_000.0, 700_000.0)  # 1000 A x 230 V x 3 phases, rounded up
    FREQUENCY_HZ = (0.0, 70.0)  # 50 Hz +-5 % (product.md ch. 2); 0 = no voltage
    ENERGY_KWH = (0.0, 1.0e9)  # an Eastron counter rolls over long before 1 TWh

    @property
    def lowest(self) -> float:
        """Lowest plausible value."""
        return self.value[0]

    @property
    def highest(self) -> float:
        """Highest plausible value."""
        return self.value[1]


class Quantity(enum.Enum):
    """A measured quantity; the value is (name, kind, phase or 0 for a total)."""

    VOLTAGE_L1_V = ("voltage L1", Kind.VOLTAGE_V, 1)
    VOLTAGE_L2_V = ("voltage L2", Kind.VOLTAGE_V, 2)
    VOLTAGE_L3_V = ("voltage L3", Kind.VOLTAGE_V, 3)
    CURRENT_L1_A = ("current L1", Kind.CURRENT_A, 1)
    CURRENT_L2_A = ("current L2", Kind.CURRENT_A, 2)
    CURRENT_L3_A = ("current L3", Kind.CURRENT_A, 3)
    POWER_L1_W = ("active power L1", Kind.POWER_W, 1)
    POWER_L2_W = ("active power L2", Kind.POWER_W, 2)
    POWER_L3_W = ("active power L3", Kind.POWER_W, 3)
    POWER_TOTAL_W = ("total active power", Kind.POWER_W, 0)
    FREQUENCY_HZ = ("frequency", Kind.FREQUENCY_HZ, 0)
    IMPORT_ENERGY_KWH = ("import active energy", Kind.ENERGY_KWH, 0)
    TOTAL_ENERGY_KWH = ("total active energy", Kind.ENERGY_KWH, 0)  # import + export

    @property
    def label(self) -> str:
        """Human name, for messages."""
        return self.value[0]

    @property
    def kind(self) -> Kind:
        """What it measures, with its plausible range."""
        return self.value[1]

    @property
    def phase(self) -> int:
        """1-3 for a per-phase quantity, 0 for a total."""
        return self.value[2]


VOLTAGES = (Quantity.VOLTAGE_L1_V, Quantity.VOLTAGE_L2_V, Quantity.VOLTAGE_L3_V)
CURRENTS = (Quantity.CURRENT_L1_A, Quantity.CURRENT_L2_A, Quantity.CURRENT_L3_A)
POWERS = (Quantity.POWER_L1_W, Quantity.POWER_L2_W, Quantity.POWER_L3_W)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadBlock:
    """One Modbus read: `count` registers from `address`, holding `fields` at offsets."""

    address: int
    count: int
    fields: tuple[tuple[Quantity, int], ...]  # (quantity, register offset in the block)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterProfile:
    """Where a device keeps its float32 quantities."""

    name: str
    table: RegisterTable
    registers: tuple[tuple[Quantity, int], ...]  # (quantity, address of its high word)
    max_registers_per_read: int = EASTRON_MAX_REGISTERS_PER_READ

    def __post_init__(self) -> None:
        quantities = [q for q, _ in self.registers]
        if len(set(quantities)) != len(quantities):
            raise DeviceConfigError(device=self.name, reason="a quantity is mapped twice")
        spans = sorted((address, address + FLOAT32_REGISTERS) for _, address in self.registers)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise DeviceConfigError(
                    device=self.name, register=start, reason="two quantities overlap"
                )
        for _, address in self.registers:
            if not 0 <= address <= 0xFFFF - FLOAT32_REGISTERS + 1:
                raise DeviceConfigError(
                    device=self.name, register=address, reason="address outside 0..0xFFFE"
                )
        if not FLOAT32_REGISTERS <= self.max_registers_per_read <= MODBUS_MAX_REGISTERS_PER_READ:
            raise DeviceConfigError(
                device=self.name,
                reason=f"max registers per read must be 2..{MODBUS_MAX_REGISTERS_PER_READ}",
            )

    def has(self, quantity: Quantity) -> bool:
        """True if the device has `quantity`."""
        return any(q is quantity for q, _ in self.registers)

    def address_of(self, quantity: Quantity) -> int:
        """The address of `quantity`'s high word; DeviceConfigError if the device lacks it."""
        for q, address in self.registers:
            if q is quantity:
                return address
        raise DeviceConfigError(
            device=self.name, reason=f"the {self.name} profile has no {quantity.label}"
        )

    @property
    def phases(self) -> int:
        """How many phase currents the device measures."""
        return sum(1 for q in CURRENTS if self.has(q))

    def read_plan(self, quantities: Iterable[Quantity]) -> tuple[ReadBlock, ...]:
        """Group `quantities` into the fewest reads of contiguous registers.

        Only registers that hold a wanted quantity are read: a gap starts a new block, so
        the plan never touches an address the device may not implement.
        """
        wanted = sorted({(self.address_of(q), q) for q in quantities}, key=lambda x: x[0])
        blocks: list[ReadBlock] = []
        start = -1
        fields: list[tuple[Quantity, int]] = []
        for address, quantity in wanted:
            end = start + len(fields) * FLOAT32_REGISTERS
            fits = address + FLOAT32_REGISTERS - start <= self.max_registers_per_read
            if fields and address == end and fits:
                fields.append((quantity, address - start))
                continue
            if fields:
                blocks.append(_block(start, fields))
            start, fields = address, [(quantity, 0)]
        if fields:
            blocks.append(_block(start, fields))
        return tuple(blocks)


def _block(start: int, fields: list[tuple[Quantity, int]]) -> ReadBlock:
    return ReadBlock(address=start, count=len(fields) * FLOAT32_REGISTERS, fields=tuple(fields))


SDM630 = RegisterProfile(
    name="sdm630",
    table=RegisterTable.INPUT,
    registers=(
        (Quantity.VOLTAGE_L1_V, 0x0000),
        (Quantity.VOLTAGE_L2_V, 0x0002),
        (Quantity.VOLTAGE_L3_V, 0x0004),
        (Quantity.CURRENT_L1_A, 0x0006),
        (Quantity.CURRENT_L2_A, 0x0008),
        (Quantity.CURRENT_L3_A, 0x000A),
        (Quantity.POWER_L1_W, 0x000C),
        (Quantity.POWER_L2_W, 0x000E),
        (Quantity.POWER_L3_W, 0x0010),
        (Quantity.POWER_TOTAL_W, 0x0034),
        (Quantity.FREQUENCY_HZ, 0x0046),
        (Quantity.IMPORT_ENERGY_KWH, 0x0048),
        (Quantity.TOTAL_ENERGY_KWH, 0x0156),
    ),
)

SDM120 = RegisterProfile(
    name="sdm120",
    table=RegisterTable.INPUT,
    registers=(
        (Quantity.VOLTAGE_L1_V, 0x0000),
        (Quantity.CURRENT_L1_A, 0x0006),
        (Quantity.POWER_L1_W, 0x000C),
        (Quantity.FREQUENCY_HZ, 0x0046),
        (Quantity.IMPORT_ENERGY_KWH, 0x0048),
        (Quantity.TOTAL_ENERGY_KWH, 0x0156),
    ),
)

# The Sense CT kit's default map: clamp #n's current where an SDM630 keeps I Ln.
CT_KIT_SDM630_STYLE = RegisterProfile(
    name="ctkit",
    table=RegisterTable.INPUT,
    registers=(
        (Quantity.CURRENT_L1_A, 0x0006),
        (Quantity.CURRENT_L2_A, 0x0008),
        (Quantity.CURRENT_L3_A, 0x000A),
    ),
)

METER_PROFILES = {p.name: p for p in (SDM630, SDM120)}
CT_KIT_PROFILES = {"ctkit": CT_KIT_SDM630_STYLE, "sdm630": SDM630}


def meter_profile(name: str) -> RegisterProfile:
    """The meter profile called `name`; DeviceConfigError naming the known ones if unknown."""
    try:
        return METER_PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(METER_PROFILES))
        raise DeviceConfigError(
            device=name, reason=f"unknown meter profile; known: {known}"
        ) from None


def ct_kit_profile(name: str) -> RegisterProfile:
    """The CT-kit profile called `name`; DeviceConfigError naming the known ones if unknown."""
    try:
        return CT_KIT_PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(CT_KIT_PROFILES))
        raise DeviceConfigError(
            device=name, reason=f"unknown CT kit profile; known: {known}"
        ) from None
