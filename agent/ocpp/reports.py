"""What the charge point tells the CSMS about the charger outside transactions: who it is
(`BootIdentity`, for BootNotification) and how its connectors are (`StatusReport`, one
StatusNotification; `StatusBoard`, the latest of each). Both outlive the websocket
connections (agent.ocpp.connection makes them, each agent.ocpp.chargepoint sends them).

Rules:
 1. The agent's step publishes each connector's status; only changes are kept, stamped
    with the time they were seen, and queued for the ChargePoint while a registered
    session runs (chargepoint rule 2). Past `backlog` unsent changes, the latest status
    of each connector replaces the queue.
 2. Faults carry the OCPP error code of agent.faults.FAULTS, the vendor code, and the
    manual's words (ch. 7) as info.
 3. Connector 0 is the charger: Faulted on a charger-wide fault that stops charging,
    else Unavailable when made inoperative, else Available; the first fault's codes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from agent.connector import ConnectorOutput
from agent.faults import FAULTS, Fault, OcppErrorCode, OcppStatus

VENDOR = "Ratio"  # BootNotification chargePointVendor, DataTransfer vendorId
MODEL = "io7"
TEXT_MAX = 50  # StatusNotification info and vendorErrorCode are CiString50

# Manual ch. 7's words for each fault: StatusNotification info.
FAULT_TEXT = {
    Fault.WELDED_CONTACTOR: "AC safety fault: welded contactor",
    Fault.RESIDUAL_CURRENT: "residual current (leakage) fault",
    Fault.OPEN_PEN: "AC safety fault: open PEN",
    Fault.OVER_VOLTAGE: "over/under-voltage fault: over-voltage",
    Fault.UNDER_VOLTAGE: "over/under-voltage fault: under-voltage",
    Fault.OVER_TEMPERATURE: "over-temperature fault",
    Fault.TILT: "bump (tilt/impact) detected",
    Fault.PILOT_VOLTAGE: "control pilot voltage fault",
    Fault.DIODE: "diode fault (control pilot diode check)",
    Fault.CONTACTOR_STUCK_OPEN: "AC safety fault: contactor stuck open",
    Fault.METER_TIMEOUT: "meter read timeout",
    Fault.EEPROM_CORRUPT: "EEPROM corrupt",
    Fault.READER_FAILURE: "reader (RFID) failure",
}
_BY_VENDOR_CODE = {info.vendor_code: fault for fault, info in FAULTS.items()}


def _firmware() -> str:
    try:
        return f"io7-cluster {version('io7-cluster')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "io7-cluster (source)"


@dataclass(frozen=True, slots=True, kw_only=True)
class BootIdentity:
    """What BootNotification says about the charger (CiString20/25/50 limits)."""

    vendor: str = VENDOR
    model: str = MODEL
    serial_number: str | None = None
    firmware_version: str = field(default_factory=_firmware)

    def __post_init__(self) -> None:
        for name, limit in (("vendor", 20), ("model", 20), ("serial_number", 25),
                            ("firmware_version", 50)):
            value = getattr(self, name)
            if value is not None and not 1 <= len(value) <= limit:
                raise ValueError(f"{name} must be 1-{limit} characters, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """One StatusNotification: a connector's status (0 = the charger) since `at`."""

    connector_id: int
    status: OcppStatus
    at: datetime
    error_code: OcppErrorCode = OcppErrorCode.NO_ERROR
    vendor_error_code: str = ""
    info: str = ""

    def __post_init__(self) -> None:
        if self.connector_id < 0:
            raise ValueError(f"connector_id must be >= 0, got {self.connector_id}")
        if self.at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, got {self.at!r}")
        if len(self.vendor_error_code) > TEXT_MAX or len(self.info) > TEXT_MAX:
            raise ValueError(f"vendor_error_code and info take at most {TEXT_MAX} characters")

    def same_as(self, other: StatusReport | None) -> bool:
        """The same status (whenever it was seen)."""
        return other is not None and (self.connector_id, self.status, self.error_code,
                                      self.vendor_error_code, self.info) == (
            other.connector_id, other.status, other.error_code, other.vendor_error_code,
            other.info)

    @classmethod
    def from_output(cls, out: ConnectorOutput, *, at: datetime) -> StatusReport:
        """A socket's status from its state machine's step."""
        fault = _BY_VENDOR_CODE.get(out.vendor_error_code)
        return cls(connector_id=out.connector_id, status=out.status, at=at,
                   error_code=out.error_code, vendor_error_code=out.vendor_error_code,
                   info=FAULT_TEXT[fault] if fault else "")

    @classmethod
    def for_charger(cls, faults: Iterable[Fault], *, operative: bool, at: datetime
                    ) -> StatusReport:
        """Connector 0: Faulted on a charger-wide fault that stops charging, else
        Unavailable when made inoperative, else Available; the first fault's code."""
        present = set(faults)
        shown = next((f for f in Fault if f in present), None)
        if shown is None:
            return cls(connector_id=0, at=at,
                       status=OcppStatus.AVAILABLE if operative else OcppStatus.UNAVAILABLE)
        info = FAULTS[shown]
        status = (OcppStatus.FAULTED if any(FAULTS[f].stops_charging for f in present)
                  else OcppStatus.AVAILABLE if operative else OcppStatus.UNAVAILABLE)
        return cls(connector_id=0, status=status, at=at, error_code=info.error_code,
                   vendor_error_code=info.vendor_code, info=FAULT_TEXT[shown])


class StatusBoard:
    """The latest status of every connector, and while a session is registered the
    changes it still has to send (rule 1). Outlives the connections."""

    def __init__(self, *, backlog: int = 64) -> None:
        self.latest: dict[int, StatusReport] = {}
        self._queue: deque[StatusReport] = deque()
        self._backlog = backlog  # more unsent changes than this: resend the latest only
        self._live = False
        self._wake = asyncio.Event()

    def publish(self, report: StatusReport) -> bool:
        """Record a connector's status; True if it changed (and is queued when live)."""
        if report.same_as(self.latest.get(report.connector_id)):
            return False
        self.latest[report.connector_id] = report
        if self._live:
            if len(self._queue) >= self._backlog:
                self._queue = deque(self.current())
            else:
                self._queue.append(report)
            self._wake.set()
        return True

    def current(self, connector_id: int | None = None) -> list[StatusReport]:
        """The latest report of one connector, or of all of them by id."""
        ids = sorted(self.latest) if connector_id is None else [connector_id]
        return [self.latest[c] for c in ids if c in self.latest]

    def go_live(self) -> None:
        """Registered: queue every connector's current status, then every change."""
        self._queue = deque(self.current())
        self._live = True
        self._wake.set()

    def go_offline(self) -> None:
        self._live = False
        self._queue.clear()

    async def next(self) -> StatusReport:
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()
