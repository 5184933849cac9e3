"""A building energy manager's limit on the group, over Modbus TCP (issue 12 §4).

The master serves (pymodbus, `[ems]` in master.toml, off by default) a small register
map modelled on Alfen's SCN registers (a per-phase maximum current as float32 and a
validity in seconds that the EMS must renew): holding registers the EMS writes, input
registers it reads. The map is in the README ("External limits"). Any unit id answers.

 1. Holding 0-5: maximum current L1, L2, L3, float32 (IEEE 754, big-endian, high word
    first), A per site phase, 0 to the installed limit. Holding 6: validity, uint16 s,
    0 = withdraw now. At start the currents hold the installed limit (not limited) and
    the validity `[ems] validity_s`.
 2. Every accepted write (FC06 or FC16, any part of 0-6) arms the three currents as they
    then stand for `validity` seconds from that write: the EMS rewrites before it runs
    out, or the group goes back to its own limit. The registers keep their values after
    expiry (read them back with FC03).
 3. A value out of range (NaN, infinite, negative, above the installed limit) is refused
    with ILLEGAL DATA VALUE and nothing changes, registers included; a write that covers
    half of a float32 is refused with ILLEGAL DATA ADDRESS, as is any address outside
    the map.
 4. Input registers (FC04), refreshed from the last cycle's status at each read: see
    INPUT_MAP. Phases outside the group read 0 (the CT: NaN).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from master.errors import ConfigError
from master.externalconfig import EmsSettings
from master.externallimits import ExternalLimit, ExternalLimitError
from master.mqttsetpoint import SOURCE as MQTT_SOURCE
from master.sitelimits import EMS, SiteLimits
from protos.io7.cluster.v1 import cluster_pb2 as pb

SOURCE = "energy manager (Modbus TCP)"
HOLDING_COUNT = 7  # rule 1
VALIDITY = 6
WRITE_CODES = (6, 16)  # write single register, write multiple registers
INPUT_MAP = (  # rule 4: (first address, what, type); float32 take two registers
    (0, "limit in force L1, L2, L3 (A)", "3 x float32"),
    (6, "CT reading L1, L2, L3 (A, signed; NaN: none)", "3 x float32"),
    (12, "allocated L1, L2, L3 (A)", "3 x float32"),
    (18, "available L1, L2, L3 (A)", "3 x float32"),
    (24, "installed limit (A per phase)", "float32"),
    (26, "configured limit (A per phase; io7ctl set-limit)", "float32"),
    (28, "this energy manager's limit: seconds left (0: none in force)", "uint16"),
    (29, "connectors charging", "uint16"),
    (30, "connectors paused for lack of room", "uint16"),
    (31, "members online", "uint16"),
    (32, "members", "uint16"),
    (33, "CT status: 0 not used, 1 ok, 2 stale, 3 lost", "uint16"),
    (34, "what sets L1, L2, L3: 0 the group's own limit, 1 back office, 2 this EMS, "
     "3 the MQTT setpoint",
     "3 x uint16"),
    (37, "cycle number (mod 65536): a heartbeat", "uint16"),
)
INPUT_COUNT = 38
_PAUSED = {pb.LIMIT_REASON_PAUSED_NO_ROOM, pb.LIMIT_REASON_PAUSED_ROTATION,
           pb.LIMIT_REASON_PAUSED_MIN_PAUSE}
_CT = {pb.CT_STATUS_NOT_USED: 0, pb.CT_STATUS_OK: 1, pb.CT_STATUS_STALE: 2,
       pb.CT_STATUS_LOST: 3}
log = structlog.get_logger("master.ems")


def f32(value: float) -> list[int]:
    """A float32 as two registers, high word first."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def from_f32(hi: int, lo: int) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", hi, lo))[0]
    return value


@dataclass(frozen=True, slots=True)
class Written:
    """A write's outcome: `refused` ("" when accepted) with the Modbus exception to send,
    else the limit it arms (None: withdrawn)."""

    refused: str = ""
    code: ExcCodes = ExcCodes.ILLEGAL_VALUE
    limit: ExternalLimit | None = None


class EmsRegisters:
    """The register map's rules 1-4, without the network."""

    def __init__(self, *, installed_limit_a: float, validity_s: int) -> None:
        self.installed_limit_a = installed_limit_a
        self.holding = [*f32(installed_limit_a) * 3, validity_s]

    def write(self, address: int, values: list[int], now_unix_s: float) -> Written:
        """Rules 2-3 for a write of `values` at `address`; the registers change only when
        it is accepted."""
        end = address + len(values)
        if address < 0 or end > HOLDING_COUNT:
            return Written(f"registers {address}-{end - 1} are outside 0-6",
                           ExcCodes.ILLEGAL_ADDRESS)
        if (address < VALIDITY and address % 2) or (end <= VALIDITY and end % 2):
            return Written(f"registers {address}-{end - 1} split a float32: write each "
                           "current's two registers together (FC16)", ExcCodes.ILLEGAL_ADDRESS)
        regs = list(self.holding)
        regs[address:end] = values
        amps = tuple(from_f32(regs[2 * k], regs[2 * k + 1]) for k in range(3))
        bad = next((k for k, a in enumerate(amps)
                    if not (math.isfinite(a) and 0.0 <= a <= self.installed_limit_a)), None)
        if bad is not None:
            return Written(f"L{bad + 1} = {amps[bad]!r} A is outside 0 to the installed "
                           f"limit {self.installed_limit_a:g} A")
        validity = regs[VALIDITY]
        limit = None
        if validity:
            try:
                limit = ExternalLimit(source=SOURCE, limit_a=(amps[0], amps[1], amps[2]),
                                      valid_until_unix_s=now_unix_s + validity)
            except ExternalLimitError as err:  # the range above is narrower: a safety net
                return Written(str(err))
        self.holding = regs
        return Written(limit=limit)

    def inputs(self, status: pb.GroupStatus, ems: ExternalLimit | None,
               now_unix_s: float) -> list[int]:
        """Rule 4: the input registers for `status`."""
        regs = [0] * INPUT_COUNT
        nan = f32(math.nan)
        for k in range(3):
            regs[6 + 2 * k:8 + 2 * k] = nan
        for p in status.phases:
            k = p.phase - pb.PHASE_L1
            if not 0 <= k < 3:
                continue
            regs[2 * k:2 * k + 2] = f32(p.limit_a)
            if p.HasField("ct_a"):
                regs[6 + 2 * k:8 + 2 * k] = f32(p.ct_a)
            regs[12 + 2 * k:14 + 2 * k] = f32(p.allocated_a)
            regs[18 + 2 * k:20 + 2 * k] = f32(p.available_a)
            regs[34 + k] = (1 if p.limit_source.startswith("back office")
                            else 2 if p.limit_source.startswith(SOURCE)
                            else 3 if p.limit_source.startswith(MQTT_SOURCE) else 0)
            regs[26:28] = f32(p.configured_limit_a)
        regs[24:26] = f32(self.installed_limit_a)
        if ems is not None and ems.valid_until_unix_s is not None:
            regs[28] = min(65535, max(0, math.ceil(ems.valid_until_unix_s - now_unix_s)))
        conns = [c for m in status.members for c in m.connectors]
        regs[29] = sum(c.status == pb.CONNECTOR_STATUS_CHARGING for c in conns)
        regs[30] = sum(c.reason in _PAUSED for c in conns)
        regs[31] = sum(m.online for m in status.members)
        regs[32] = len(status.members)
        regs[33] = _CT.get(status.ct_status, 0)
        regs[37] = status.cycle % 65536
        return regs


class EmsServer:
    """The Modbus TCP server of rules 1-4, bound to `[ems] listen`."""

    def __init__(self, settings: EmsSettings, *, site: SiteLimits, installed_limit_a: float,
                 status: Callable[[], pb.GroupStatus]) -> None:
        self.settings, self.site, self.status = settings, site, status
        self.registers = EmsRegisters(installed_limit_a=installed_limit_a,
                                      validity_s=settings.validity_s)
        self._server: ModbusTcpServer | None = None
        self._refused = ""

    async def start(self) -> int:
        """Serve; returns the bound port. OSError when the address cannot be bound."""
        device = SimDevice(id=0, action=self._on_request, simdata=(
            [SimData(address=0, values=False, datatype=DataType.BITS, readonly=True)],
            [SimData(address=0, values=False, datatype=DataType.BITS, readonly=True)],
            [SimData(address=0, values=list(self.registers.holding),
                     datatype=DataType.REGISTERS)],
            [SimData(address=0, count=INPUT_COUNT, values=0, datatype=DataType.REGISTERS,
                     readonly=True)]))
        server = ModbusTcpServer([device], address=(self.settings.host, self.settings.port))
        await server.serve_forever(background=True)
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise OSError(f"cannot listen on {self.settings.listen}")
        self._server = server
        port: int = sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def _on_request(self, function_code: int, start_address: int, address: int,
                          count: int, registers: list[int],
                          values: list[int] | list[bool] | None) -> ExcCodes | None:
        """pymodbus calls this before it answers (and before it stores a write)."""
        if function_code == 4:
            regs = self.registers.inputs(self.status(), self.site.limits.get(EMS),
                                         self.site.wall())
            registers[:INPUT_COUNT] = regs
            return None
        if function_code not in WRITE_CODES or values is None:
            return None
        done = self.registers.write(address, [int(v) for v in values], self.site.wall())
        if done.refused:
            if done.refused != self._refused:
                self._refused = done.refused
                log.warning("energy manager write refused: nothing changed",
                            why=done.refused, code=done.code.name)
            return done.code
        self.site.set_ems(done.limit)
        return None


async def start_ems(settings: EmsSettings | None, *, file: Path, site: SiteLimits,
                    installed_limit_a: float,
                    status: Callable[[], pb.GroupStatus]) -> EmsServer | None:
    """The energy manager's server when `[ems]` is enabled, serving; None when not.
    Raises ConfigError (key ems.listen) when its address cannot be bound."""
    if settings is None:
        return None
    server = EmsServer(settings, site=site, installed_limit_a=installed_limit_a, status=status)
    try:
        port = await server.start()
    except OSError as exc:
        raise ConfigError(file=file, key="ems.listen", problem=f"cannot listen on "
                          f"{settings.listen}: {exc.strerror or exc}") from None
    log.info("energy manager server listening (Modbus TCP)", address=f"{settings.host}:{port}",
             validity_s=settings.validity_s)
    return server
