"""The charger's hardware in agent.toml: its sockets (wiring, rating, meter) and the
External CT Clamps of agent-only mode, read into frozen settings the drivers take.

A socket's wiring says which site phase each of its lines is on (manual 6.3 phase
connection); the allocation and the master count current on those phases. A meter or
clamp kit is simulated or a Modbus device on an RS485 adapter or a Modbus TCP gateway;
bus timeouts are bounded so a read cannot stall the 1 s cycle (architecture.md). TOML has
no null: a line that is not wired is written "-".

    [connectors.1]                # 1 and/or 2 (the io7 Double's sockets)
    wiring = ["L1", "L2", "L3"]   # required: the site phase of the socket's L1, L2, L3
                                  # (manual 6.3 phase connection); ["L2"] or
                                  # ["L2", "-", "-"] = single-phase on site L2
    hard_max_a = 32               # 6-80 A: cable/breaker rating; default 32 (product.md ch. 2)
    [connectors.1.meter]
    kind = "sim"                  # sim (default) | modbus
    profile = "sdm630"            # modbus: a hw.modbus meter profile (sdm630, sdm120)
    address = 1                   # modbus: 1-247, default 1 (Eastron factory default)
    port = "/dev/ttyUSB0"         # modbus: the RS485 socket's adapter, or
    # tcp = "10.0.0.5:502"        #   a Modbus TCP gateway (exactly one of port / tcp)
    baudrate = 9600               # serial only; also parity "N"|"E"|"O", stopbits 1|2
    timeout_s = 0.5               # 0-0.5 s per read, retry included (architecture.md)
    retries = 1                   # 0 or 1

    [agent_only.ct]               # External CT Clamps on connector #1 (manual 6.3)
    enabled = true
    type = "site"                 # the only type the io7 offers
    clamps = [1, 2, 3]            # clamp n measures site phase Ln; [1] on one phase
    rated_a = 100                 # the clamps' rated value, 1-2000 A
    reversed = []                 # clamps mounted with the arrow towards the grid
    profile = "ctkit"             # plus address, port / tcp, ... as for a meter
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from agent.configtable import AgentTable
from hw.errors import DeviceConfigError
from hw.modbus.ctkit import MAX_RATED_A, ClampConfig, CtKitConfig
from hw.modbus.meter import MeterConfig
from hw.modbus.profiles import CT_KIT_PROFILES, METER_PROFILES, ct_kit_profile, meter_profile
from hw.modbus.transport import (
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    STANDARD_BAUD_RATES,
    BusSettings,
    SerialSettings,
    TcpSettings,
)
from master.allocation import Phase

HARD_MAX_RANGE_A = (6.0, 80.0)  # IEC 61851-1 Table A.7: the pilot offers 6-80 A
DEFAULT_HARD_MAX_A = 32.0  # product.md ch. 2: the io7 delivers up to 32 A per phase
_PARITY: dict[str, Literal["N", "E", "O"]] = {"N": "N", "E": "E", "O": "O"}


class MeterKind(Enum):
    SIM = "sim"
    MODBUS = "modbus"


Wiring = tuple[Phase | None, Phase | None, Phase | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSettings:
    """A socket's meter: simulated, or Modbus with its profile, address and bus."""

    kind: MeterKind = MeterKind.SIM
    profile: str = "sdm630"
    address: int = 1
    bus: BusSettings | None = None  # Modbus only

    def meter_config(self, name: str) -> MeterConfig:
        """The driver's config (`hw.modbus.meter.ModbusMeter`)."""
        return MeterConfig(profile=meter_profile(self.profile), device_id=self.address,
                           name=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSettings:
    """One socket: its id (1 or 2), wiring, hard maximum and meter."""

    connector_id: int
    wiring: Wiring
    hard_max_a: float
    meter: MeterSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class CtSettings:
    """External CT clamps of agent-only mode; clamp n measures site phase Ln."""

    clamps: tuple[int, ...]
    rated_a: float
    reversed: tuple[int, ...]
    profile: str
    address: int
    bus: BusSettings

    def kit_config(self) -> CtKitConfig:
        """The driver's config (`hw.modbus.ctkit.ModbusCtKit`)."""
        return CtKitConfig(
            clamps=tuple(ClampConfig(clamp=n, rated_a=self.rated_a, reversed=n in self.reversed)
                         for n in self.clamps),
            profile=ct_kit_profile(self.profile), device_id=self.address)


def read_connectors(t: AgentTable) -> tuple[ConnectorSettings, ...]:
    """The [connectors] table: [connectors.1] and/or [connectors.2]. ConfigError names
    the key of the first bad value."""
    out = []
    for key in sorted(t.data):
        if key not in ("1", "2"):
            raise t.error(key, "an io7 has connectors 1 and 2: use [connectors.1] and "
                          "[connectors.2]")
        c = t.table(key)
        if c is None:
            raise t.error(key, "must be a table")
        wiring = _wiring(c)
        hard_max = c.number("hard_max_a", DEFAULT_HARD_MAX_A, lo=HARD_MAX_RANGE_A[0],
                            hi=HARD_MAX_RANGE_A[1], why="cable and breaker rating")
        meter_t = c.table("meter") or AgentTable(t.file, c.key("meter"), {})
        meter = _meter(meter_t)
        meter_t.done()
        c.done()
        out.append(ConnectorSettings(connector_id=int(key), wiring=wiring, hard_max_a=hard_max,
                                     meter=meter))
    if not out:
        raise t.error("1", "is required: at least [connectors.1] with its wiring")
    return tuple(out)


def _wiring(t: AgentTable) -> Wiring:
    value = t.raw("wiring")
    hint = ('list the site phase of the socket\'s L1, L2, L3, e.g. ["L1", "L2", "L3"], '
            'or ["L2"] / ["L2", "-", "-"] for single-phase on L2')
    if not isinstance(value, list) or len(value) not in (1, 3):
        raise t.error("wiring", f"{value!r}: {hint}")
    phases: list[Phase | None] = []
    for item in [*value, "-", "-"][:3]:
        if item == "-":
            phases.append(None)
        elif isinstance(item, str) and item in Phase.__members__:
            phases.append(Phase[item])
        else:
            raise t.error("wiring", f"{item!r} is not L1, L2, L3 or \"-\"; {hint}")
    wired = [p for p in phases if p is not None]
    if phases[0] is None:
        raise t.error("wiring", "the socket's L1 must be wired (a single-phase EV uses L1)")
    if len(set(wired)) != len(wired):
        raise t.error("wiring", f"{value!r} wires two lines to one site phase")
    return phases[0], phases[1], phases[2]


def _meter(t: AgentTable) -> MeterSettings:
    kind = MeterKind(t.string("kind", "sim", allowed=tuple(k.value for k in MeterKind)))
    if kind is MeterKind.SIM:
        t.skip_rest()
        return MeterSettings()
    profile = t.string("profile", "sdm630", allowed=tuple(sorted(METER_PROFILES)))
    address = t.integer("address", 1, lo=1, hi=247)  # Modbus unicast addresses
    return MeterSettings(kind=kind, profile=profile, address=address, bus=_bus(t))


def _bus(t: AgentTable) -> BusSettings:
    port, tcp = t.raw("port", None), t.raw("tcp", None)
    if (port is None) == (tcp is None):
        raise t.error("port", "give exactly one of port = \"/dev/ttyUSB0\" (RS485) or "
                      "tcp = \"host:port\" (Modbus TCP gateway)")
    timeout = t.number("timeout_s", MAX_TIMEOUT_S, lo=0.01, hi=MAX_TIMEOUT_S, unit="s",
                       why="architecture.md: a read may not stall the 1 s cycle")
    retries = t.integer("retries", MAX_RETRIES, lo=0, hi=MAX_RETRIES)
    endpoint: SerialSettings | TcpSettings
    try:
        if tcp is not None:
            host, _, number = t.host_port("tcp").rpartition(":")
            endpoint = TcpSettings(host=host, port=int(number))
        else:
            baud = t.integer("baudrate", 9600, lo=1200, hi=115200)
            if baud not in STANDARD_BAUD_RATES:
                raise t.error("baudrate", f"{baud} is not one of {list(STANDARD_BAUD_RATES)}")
            parity = t.string("parity", "N", allowed=("N", "E", "O"))
            stopbits = t.integer("stopbits", 1, lo=1, hi=2)
            endpoint = SerialSettings(port=t.string("port"), baudrate=baud,
                                      parity=_PARITY[parity], stopbits=stopbits)
        return BusSettings(endpoint=endpoint, timeout_s=timeout, retries=retries)
    except DeviceConfigError as exc:
        raise t.error("port" if port is not None else "tcp", exc.reason) from exc


def read_ct(t: AgentTable) -> CtSettings | None:
    """[agent_only.ct]: the clamps, or None when `enabled = false`."""
    if not t.boolean("enabled", True):
        t.skip_rest()
        return None
    t.string("type", "site", allowed=("site",))
    clamps = _clamp_list(t, "clamps", [1, 2, 3])
    if not clamps:
        raise t.error("clamps", "enable at least one clamp, e.g. [1]")
    reversed_ = _clamp_list(t, "reversed", [])
    rated = t.number("rated_a", lo=1.0, hi=MAX_RATED_A, why="the clamps' rated value")
    profile = t.string("profile", "ctkit", allowed=tuple(sorted(CT_KIT_PROFILES)))
    address = t.integer("address", 1, lo=1, hi=247)
    settings = CtSettings(clamps=clamps, rated_a=rated, reversed=reversed_, profile=profile,
                          address=address, bus=_bus(t))
    t.done()
    return settings


def _clamp_list(t: AgentTable, name: str, default: list[int]) -> tuple[int, ...]:
    value = t.raw(name, default)
    if (not isinstance(value, list) or any(isinstance(n, bool) or n not in (1, 2, 3)
                                           for n in value) or len(set(value)) != len(value)):
        raise t.error(name, f"{value!r}: list distinct clamp numbers 1-3, e.g. [1, 2, 3]")
    return tuple(sorted(value))
