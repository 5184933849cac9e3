"""What the charge point reports (agent.ocpp.reports' StatusReport and StatusBoard), and
the OCPP-J 1.6 CallError a malformed payload gets (chargepoint.payload_error): pure."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.connector import Connector, ConnectorInputs
from agent.faults import FAULTS, Fault, OcppErrorCode, OcppStatus
from agent.ocpp.chargepoint import iso, payload_error
from agent.ocpp.reports import FAULT_TEXT, BootIdentity, StatusBoard, StatusReport
from hw.pilot import PilotState

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_every_fault_has_the_manuals_words_within_50_characters() -> None:
    assert set(FAULT_TEXT) == set(Fault)
    assert all(0 < len(t) <= 50 for t in FAULT_TEXT.values())
    assert all(len(i.vendor_code) <= 50 for i in FAULTS.values())


@pytest.mark.parametrize(("name", "faults", "operative", "status", "code", "vendor"), [
    ("all well", set(), True, "Available", "NoError", ""),
    ("made inoperative", set(), False, "Unavailable", "NoError", ""),
    ("open PEN", {Fault.OPEN_PEN}, True, "Faulted", "GroundFailure", "OpenPEN"),
    ("fault beats inoperative", {Fault.TILT}, False, "Faulted", "OtherError", "Tilt"),
    ("first fault by priority", {Fault.TILT, Fault.OPEN_PEN}, True, "Faulted",
     "GroundFailure", "OpenPEN"),
    ("over-temperature", {Fault.OVER_TEMPERATURE}, True, "Faulted", "HighTemperature",
     "OverTemperature"),
    ("reader failure does not stop charging", {Fault.READER_FAILURE}, True, "Available",
     "ReaderFailure", "ReaderFailure"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
def test_connector_zero_reports_the_chargers_state(
        name: str, faults: set[Fault], operative: bool, status: str, code: str,
        vendor: str) -> None:
    report = StatusReport.for_charger(faults, operative=operative, at=T0)
    assert (report.connector_id, report.status.value, report.error_code.value,
            report.vendor_error_code) == (0, status, code, vendor)
    assert bool(report.info) == bool(faults)


def test_a_sockets_report_comes_from_its_machines_step() -> None:
    machine = Connector(1)
    out = machine.step(ConnectorInputs(now_s=0.0, pilot=PilotState.A,
                                       contactor_feedback_closed=False,
                                       faults=frozenset({Fault.METER_TIMEOUT})))
    report = StatusReport.from_output(out, at=T0)
    assert (report.status, report.error_code, report.vendor_error_code, report.info) == (
        OcppStatus.FAULTED, OcppErrorCode.POWER_METER_FAILURE, "MeterTimeout",
        "meter read timeout")


def test_reports_refuse_what_ocpp_cannot_carry() -> None:
    with pytest.raises(ValueError, match="connector_id"):
        StatusReport(connector_id=-1, status=OcppStatus.AVAILABLE, at=T0)
    with pytest.raises(ValueError, match="timezone"):
        StatusReport(connector_id=1, status=OcppStatus.AVAILABLE, at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="50"):
        StatusReport(connector_id=1, status=OcppStatus.FAULTED, at=T0, info="x" * 51)
    with pytest.raises(ValueError, match="serial_number"):
        BootIdentity(serial_number="x" * 26)
    assert iso(T0 + timedelta(microseconds=1500)) == "2025-01-01T12:00:00.001Z"


def _report(cid: int, status: OcppStatus, seconds: float = 0.0) -> StatusReport:
    return StatusReport(connector_id=cid, status=status, at=T0 + timedelta(seconds=seconds))


async def test_board_keeps_changes_only_and_queues_them_while_live() -> None:
    board = StatusBoard(backlog=3)
    assert board.publish(_report(1, OcppStatus.AVAILABLE))
    assert not board.publish(_report(1, OcppStatus.AVAILABLE, 5))  # same status, later
    assert board.publish(_report(0, OcppStatus.AVAILABLE))
    board.go_live()  # the current status of every connector first, by id
    assert [(await board.next()).connector_id for _ in range(2)] == [0, 1]
    board.publish(_report(1, OcppStatus.PREPARING, 1))
    board.publish(_report(1, OcppStatus.CHARGING, 2))
    got = [await board.next(), await board.next()]
    assert [r.status for r in got] == [OcppStatus.PREPARING, OcppStatus.CHARGING]
    assert got[0].at == T0 + timedelta(seconds=1)  # stamped when it was seen
    board.go_offline()
    board.publish(_report(1, OcppStatus.FINISHING, 3))  # offline: kept, not queued
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(board.next(), 0.05)
    assert board.current(1)[0].status is OcppStatus.FINISHING


async def test_board_resends_the_latest_when_the_backlog_overflows() -> None:
    board = StatusBoard(backlog=2)
    board.go_live()
    for k, status in enumerate((OcppStatus.PREPARING, OcppStatus.CHARGING,
                                OcppStatus.SUSPENDED_EV, OcppStatus.FINISHING)):
        board.publish(_report(1, status, k))
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append((await asyncio.wait_for(board.next(), 0.05)).status)
    assert got == [OcppStatus.SUSPENDED_EV, OcppStatus.FINISHING]  # the rest was dropped


@pytest.mark.parametrize(("action", "payload", "code"), [
    ("Reset", {"type": "Soft"}, None),
    ("Reset", {}, "ProtocolError"),
    ("Reset", {"type": 1}, "TypeConstraintViolation"),
    ("Reset", {"type": "Warm"}, "PropertyConstraintViolation"),
    ("Reset", {"type": "Soft", "now": True}, "FormationViolation"),
    ("GetConfiguration", {"key": ["a" * 51]}, "TypeConstraintViolation"),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 21.4}]}}}, None),  # 21.4 is a multiple of 0.1
    ("NoSuchAction", {}, None),  # no schema: the charge point answers NotImplemented
], ids=lambda v: v if isinstance(v, str) else "")
def test_payload_errors_use_the_16_names(action: str, payload: dict[str, Any],
                                         code: str | None) -> None:
    error = payload_error(action, payload)
    assert (error.code if error is not None else None) == code
