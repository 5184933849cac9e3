"""Transactions and meter values (agent.ocpp.transactions) in virtual time: a full
session, every stop reason, meter failure, restart recovery with the real store, and an
agent killed -9 mid-session. Every payload is checked against the OCPP 1.6 JSON schemas
shipped with the ocpp library."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, FormatChecker
from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.v16 import call, enums

from agent.faults import OcppStatus
from agent.ocpp.metervalues import Measurand, MeterSettings, ReadingContext, parse_measurands
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import (
    ChargerSessions,
    ConnectorSample,
    OutboxAction,
    OutgoingMessage,
    StopReason,
    StopRequest,
    TransactionRecord,
)
from hw.capabilities import MeterReading

T0 = datetime(2025, 3, 1, 12, 8, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
SETTINGS = MeterSettings(sample_interval_s=60, clock_aligned_interval_s=900)
POWER_W = 3 * 230.0 * 16.0  # 11.04 kW: three phases at 16 A


def validate(msg: OutgoingMessage) -> None:
    """The payload fits the OCPP 1.6 JSON schema, and survives the ocpp library's call
    dataclass (how the shell sends it: call.X(**camel_to_snake_case(payload)))."""
    payload = dict(msg.payload)
    obj = getattr(call, msg.action.value)(**camel_to_snake_case(payload))
    assert snake_to_camel_case(remove_nones(asdict(obj))) == payload
    schema = json.loads((resources.files("ocpp.v16") / "schemas" /
                         f"{msg.action.value}.json").read_text())
    Draft4Validator(schema, format_checker=FormatChecker()).validate(dict(msg.payload))
    for ts in _timestamps(msg.payload):
        assert ts.endswith("Z"), ts


def _timestamps(obj: Any) -> Iterable[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "timestamp":
                yield v
            else:
                yield from _timestamps(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _timestamps(v)


def reading(energy_wh: float, *, amps: float = 16.0, phases: int = 3) -> MeterReading:
    return MeterReading(phase_voltages_v=(230.0,) * phases, phase_currents_a=(amps,) * phases,
                        phase_powers_w=(230.0 * amps,) * phases,
                        total_power_w=230.0 * amps * phases, frequency_hz=50.0,
                        import_energy_wh=energy_wh)


def sample(cid: int = 1, *, plugged: bool = True, tag: str | None = "CARD-1",
           meter: MeterReading | None = None, status: OcppStatus = OcppStatus.CHARGING,
           stop: StopRequest | None = None, offered_a: float = 16.0) -> ConnectorSample:
    return ConnectorSample(connector_id=cid, status=status, plugged=plugged, id_tag=tag,
                           meter=meter, offered_a=offered_a, stop=stop)


IDLE2 = sample(2, plugged=False, tag=None, meter=reading(500.0, amps=0.0),
               status=OcppStatus.AVAILABLE, offered_a=0.0)


@dataclass
class Run:
    """Drives ChargerSessions in virtual time and keeps every message (schema-checked)."""

    sessions: ChargerSessions = field(default_factory=lambda: ChargerSessions(
        (1, 2), next_local_tx_id=1))
    settings: MeterSettings = SETTINGS
    messages: list[OutgoingMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def step(self, now: datetime, *samples: ConnectorSample) -> list[OutgoingMessage]:
        if len(samples) == 1:
            samples = (samples[0], IDLE2)
        out = self.sessions.step(now, samples, self.settings)
        for m in out.messages:
            validate(m)
        self.messages.extend(out.messages)
        self.notes.extend(n.text for n in out.notes)
        return list(out.messages)

    def of(self, action: OutboxAction, context: ReadingContext | None = None
           ) -> list[OutgoingMessage]:
        found = [m for m in self.messages if m.action is action]
        if context is not None:
            found = [m for m in found if m.payload["meterValue"][0]["sampledValue"][0][
                "context"] == context.value]
        return found


def energy_at(s: float) -> float:
    return 1000.0 + POWER_W * s / 3600.0


def test_full_session() -> None:
    """Plug and authorise at 12:08, charge 10 virtual minutes at 11 kW with
    MeterValueSampleInterval 60 and ClockAlignedDataInterval 900, unplug."""
    run = Run()
    for s in range(601):
        run.step(T0 + timedelta(seconds=s), sample(meter=reading(energy_at(s))))
    [stop] = run.step(T0 + timedelta(seconds=601), sample(plugged=False, tag=None,
                                                          meter=reading(energy_at(601))))

    [start] = run.of(OutboxAction.START_TRANSACTION)
    assert start.payload == {"connectorId": 1, "idTag": "CARD-1", "meterStart": 1000,
                             "timestamp": "2025-03-01T12:08:00Z"}
    assert start.local_tx_id == 1
    sampled = run.of(OutboxAction.METER_VALUES, ReadingContext.SAMPLE_PERIODIC)
    assert len(sampled) == 10
    assert [m.payload["meterValue"][0]["timestamp"] for m in sampled] == [
        f"2025-03-01T12:{9 + i:02d}:00Z" for i in range(10)]
    assert all(m.payload["transactionId"] == 1 and m.local_tx_id == 1 for m in sampled)
    values = sampled[0].payload["meterValue"][0]["sampledValue"]
    assert [(v["measurand"], v.get("phase"), v["unit"], v["value"]) for v in values] == [
        ("Energy.Active.Import.Register", None, "Wh", str(int(energy_at(60)))),
        ("Current.Import", "L1", "A", "16.0"), ("Current.Import", "L2", "A", "16.0"),
        ("Current.Import", "L3", "A", "16.0"), ("Current.Offered", None, "A", "16.0"),
        ("Power.Active.Import", None, "W", "11040"),
        ("Voltage", "L1-N", "V", "230.0"), ("Voltage", "L2-N", "V", "230.0"),
        ("Voltage", "L3-N", "V", "230.0")]
    assert {v["location"] for v in values} == {"Outlet"}

    aligned = run.of(OutboxAction.METER_VALUES, ReadingContext.SAMPLE_CLOCK)
    assert [(m.payload["connectorId"], m.payload.get("transactionId"),
             m.payload["meterValue"][0]["timestamp"]) for m in aligned] == [
        (1, 1, "2025-03-01T12:15:00Z"), (2, None, "2025-03-01T12:15:00Z")]
    assert aligned[1].local_tx_id is None

    assert stop.action is OutboxAction.STOP_TRANSACTION
    assert stop.payload["reason"] == "EVDisconnected"
    assert stop.payload["meterStop"] == int(energy_at(601)) == 2843
    assert stop.payload["transactionId"] == 1 and "idTag" not in stop.payload
    begin, end = stop.payload["transactionData"]
    assert begin["sampledValue"][0] == {"value": "1000", "context": "Transaction.Begin",
                                        "measurand": "Energy.Active.Import.Register",
                                        "unit": "Wh", "location": "Outlet"}
    assert end["sampledValue"][0]["value"] == "2843"
    assert end["timestamp"] == "2025-03-01T12:18:01Z"
    assert run.sessions.active(1) is None and run.notes == []


def test_clock_aligned_grid_over_an_hour_and_a_late_step() -> None:
    run = Run(settings=MeterSettings(sample_interval_s=0, clock_aligned_interval_s=900))
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for s in range(0, 3601, 10):
        run.step(start + timedelta(seconds=s), sample(meter=reading(energy_at(s))))
    stamps = [m.payload["meterValue"][0]["timestamp"]
              for m in run.of(OutboxAction.METER_VALUES) if m.payload["connectorId"] == 1]
    assert stamps == ["2025-03-01T12:15:00Z", "2025-03-01T12:30:00Z",
                      "2025-03-01T12:45:00Z", "2025-03-01T13:00:00Z"]
    late = run.step(start + timedelta(minutes=91), sample(meter=reading(energy_at(5460))))
    assert len([m for m in late if m.payload["connectorId"] == 1]) == 1  # 13:15 and 13:30


def test_clock_aligned_grid_restarts_at_midnight() -> None:
    """7 h does not divide the day: slots at 00, 07, 14, 21 h, then midnight again."""
    run = Run(settings=MeterSettings(sample_interval_s=0, clock_aligned_interval_s=7 * 3600))
    day = datetime(2025, 3, 1, tzinfo=UTC)
    for h in (20, 21, 22, 23, 24, 25):
        run.step(day + timedelta(hours=h, seconds=1), sample(plugged=False, tag=None,
                                                            meter=reading(1.0)))
    stamps = [m.payload["meterValue"][0]["timestamp"][:13]
              for m in run.of(OutboxAction.METER_VALUES) if m.payload["connectorId"] == 1]
    assert stamps == ["2025-03-01T21", "2025-03-02T00"]


def started_run(**settings: Any) -> Run:
    run = Run(settings=MeterSettings(**{"sample_interval_s": 60,
                                        "clock_aligned_interval_s": 0, **settings}))
    run.step(T0, sample(meter=reading(1000.0)))
    assert run.sessions.active(1) is not None
    return run


@pytest.mark.parametrize(("reason", "by"), [
    (StopReason.LOCAL, "card-1"), (StopReason.REMOTE, None), (StopReason.SOFT_RESET, None),
    (StopReason.HARD_RESET, None), (StopReason.UNLOCK_COMMAND, None),
    (StopReason.EMERGENCY_STOP, None), (StopReason.REBOOT, None), (StopReason.OTHER, None),
    (StopReason.DE_AUTHORIZED, None),
], ids=lambda v: v.value if isinstance(v, StopReason) else str(v))
def test_explicit_stop_reasons(reason: StopReason, by: str | None) -> None:
    run = started_run()
    [stop] = run.step(T0 + timedelta(seconds=30), sample(
        meter=reading(1100.0), stop=StopRequest(reason=reason, id_tag=by)))
    assert stop.payload["reason"] == reason.value
    assert stop.payload["meterStop"] == 1100
    assert stop.payload.get("idTag") == by


def test_deauthorised_and_unplugged_without_a_request() -> None:
    run = started_run()
    [stop] = run.step(T0 + timedelta(seconds=5), sample(tag=None, meter=reading(1010.0)))
    assert stop.payload["reason"] == "DeAuthorized"
    run = started_run()
    [stop] = run.step(T0 + timedelta(seconds=5), sample(plugged=False, meter=reading(1010.0)))
    assert stop.payload["reason"] == "EVDisconnected"


def test_unplug_keeps_the_transaction_without_stop_on_ev_side_disconnect() -> None:
    run = started_run(stop_on_ev_side_disconnect=False)
    assert run.step(T0 + timedelta(seconds=5), sample(plugged=False, meter=reading(1010.0))) == []
    assert run.sessions.active(1) is not None
    run.step(T0 + timedelta(seconds=10), sample(meter=reading(1020.0)))  # plugged again
    [stop] = run.step(T0 + timedelta(seconds=15), sample(
        meter=reading(1030.0), stop=StopRequest(reason=StopReason.REMOTE)))
    assert stop.payload["reason"] == "Remote"
    assert len(run.of(OutboxAction.START_TRANSACTION)) == 1


def test_same_authorisation_does_not_start_twice() -> None:
    run = started_run()
    run.step(T0 + timedelta(seconds=1), sample(meter=reading(1001.0),
                                               stop=StopRequest(reason=StopReason.REMOTE)))
    for s in range(2, 10):  # still plugged, the tag still given: no new transaction
        assert run.step(T0 + timedelta(seconds=s), sample(meter=reading(1001.0))) == []
    run.step(T0 + timedelta(seconds=10), sample(tag=None, meter=reading(1001.0)))
    [start] = run.step(T0 + timedelta(seconds=11), sample(tag="CARD-2", meter=reading(1001.0)))
    assert start.local_tx_id == 2 and start.payload["idTag"] == "CARD-2"


@pytest.mark.parametrize("status", [OcppStatus.FAULTED, OcppStatus.UNAVAILABLE])
def test_no_start_on_a_faulted_or_unavailable_connector(status: OcppStatus) -> None:
    run = Run()
    assert run.step(T0, sample(meter=reading(1000.0), status=status)) == []


def test_start_waits_for_a_real_meter_reading() -> None:
    run = Run()
    assert run.step(T0, sample(meter=None)) == []
    assert run.step(T0 + timedelta(seconds=1), sample(meter=None)) == []
    assert run.notes == ["transaction start waits for a meter reading (meterStart must be real)"]
    [start] = run.step(T0 + timedelta(seconds=2), sample(meter=reading(1234.9)))
    assert start.payload["meterStart"] == 1234  # floored: never ahead of the register


def test_meter_failure_omits_values_and_stops_on_the_last_good_reading() -> None:
    run = started_run()
    run.step(T0 + timedelta(seconds=59), sample(meter=reading(1180.0)))
    [mv] = run.step(T0 + timedelta(seconds=60), sample(meter=None))
    assert [v["measurand"] for v in mv.payload["meterValue"][0]["sampledValue"]] == [
        "Current.Offered"]  # measured values omitted, no fake zeros
    assert mv.energy_wh is None
    [stop] = run.step(T0 + timedelta(seconds=70), sample(plugged=False, meter=None))
    assert stop.payload["meterStop"] == 1180
    assert stop.payload["transactionData"][1]["timestamp"] == "2025-03-01T12:08:59Z"
    assert any("last good reading" in n and "1180 Wh" in n for n in run.notes)


def test_meter_failure_without_unmeasured_values_sends_nothing() -> None:
    run = started_run(sampled_measurands=(Measurand.ENERGY_ACTIVE_IMPORT_REGISTER,))
    assert run.step(T0 + timedelta(seconds=60), sample(meter=None)) == []
    assert run.notes[-1].endswith("not sent")


def test_single_phase_meter_and_frequency() -> None:
    run = Run(settings=MeterSettings(sample_interval_s=60, clock_aligned_interval_s=0,
                                     sampled_measurands=parse_measurands(
                                         "Current.Import, Voltage,Frequency,Voltage")))
    run.step(T0, sample(meter=reading(1000.0, phases=1)))
    [mv] = run.step(T0 + timedelta(seconds=60), sample(meter=reading(1010.0, phases=1)))
    values = mv.payload["meterValue"][0]["sampledValue"]
    assert [(v["measurand"], v.get("phase"), v.get("unit")) for v in values] == [
        ("Current.Import", "L1", "A"), ("Voltage", "L1-N", "V"), ("Frequency", None, None)]
    assert values[2]["value"] == "50.00"


def test_settings_and_measurand_validation() -> None:
    with pytest.raises(ValueError, match="SoC"):
        parse_measurands("Energy.Active.Import.Register,SoC")
    with pytest.raises(ValueError, match="sample_interval_s"):
        MeterSettings(sample_interval_s=-1)
    with pytest.raises(ValueError, match="clock_aligned_interval_s"):
        MeterSettings(clock_aligned_interval_s=86_401)
    with pytest.raises(ValueError, match="distinct"):
        MeterSettings(sampled_measurands=(Measurand.VOLTAGE, Measurand.VOLTAGE))


def test_bad_steps_change_nothing() -> None:
    run = started_run()
    before = run.sessions.active(1)
    with pytest.raises(ValueError, match="one sample per connector"):
        run.sessions.step(T0 + timedelta(seconds=1), [sample(meter=reading(1.0))], SETTINGS)
    with pytest.raises(ValueError, match="backwards"):
        run.step(T0 - timedelta(seconds=1), sample(meter=reading(1000.0)))
    with pytest.raises(ValueError, match="timezone"):
        run.step(datetime(2025, 3, 1, 12, 9), sample(meter=reading(1000.0)))
    with pytest.raises(ValueError, match="idTag"):
        sample(tag="")
    assert run.sessions.active(1) == before


def test_enums_match_the_ocpp_library() -> None:
    assert {r.value for r in StopReason} == {r.value for r in enums.Reason}
    assert {m.value for m in Measurand} <= {m.value for m in enums.Measurand}
    assert {c.value for c in ReadingContext} <= {c.value for c in enums.ReadingContext}


# -- restart recovery with the real store ---------------------------------------------

def record(path: Path, *, last_wh: int = 1500) -> None:
    with OcppStore(path) as store:
        store.enqueue("StartTransaction", {"connectorId": 1, "idTag": "FREE",
                                           "meterStart": 1000,
                                           "timestamp": "2025-03-01T11:00:00Z"}, local_tx_id=1)
        store.enqueue("MeterValues", {"connectorId": 1, "transactionId": 1, "meterValue": [
            {"timestamp": "2025-03-01T11:30:00Z", "sampledValue": [{"value": str(last_wh)}]}]},
            local_tx_id=1, energy_wh=last_wh, energy_at=datetime(2025, 3, 1, 11, 30, tzinfo=UTC))


def recovered_run(path: Path) -> tuple[Run, OcppStore]:
    store = OcppStore(path)
    sessions = ChargerSessions((1, 2), next_local_tx_id=store.next_local_tx_id(),
                               recovered=store.open_transactions())
    return Run(sessions=sessions, settings=MeterSettings(clock_aligned_interval_s=0)), store


def test_restart_stops_with_power_loss_and_starts_anew(tmp_path: Path) -> None:
    path = tmp_path / "ocpp.db"
    record(path)
    run, store = recovered_run(path)
    out = run.step(T0, sample(tag="FREE", meter=reading(1600.0)))
    assert [(m.action, m.local_tx_id) for m in out] == [
        (OutboxAction.STOP_TRANSACTION, 1), (OutboxAction.START_TRANSACTION, 2)]
    assert out[0].payload["reason"] == "PowerLoss" and out[0].payload["meterStop"] == 1600
    assert out[1].payload["meterStart"] == 1600
    store.enqueue_all(out)
    assert [r.local_tx_id for r in store.open_transactions()] == [2]
    store.close()


def test_restart_with_a_dead_meter_uses_the_persisted_reading(tmp_path: Path) -> None:
    path = tmp_path / "ocpp.db"
    record(path, last_wh=1500)
    run, store = recovered_run(path)
    [stop] = run.step(T0, sample(plugged=False, tag=None, meter=None))
    assert stop.payload["meterStop"] == 1500
    assert stop.payload["transactionData"][1]["timestamp"] == "2025-03-01T11:30:00Z"
    assert any("1500 Wh" in n for n in run.notes)
    store.close()


def test_recovery_validation() -> None:
    rec = TransactionRecord(local_tx_id=5, connector_id=1, id_tag="A", meter_start_wh=1,
                            started_at=T0, last_energy_wh=1, last_energy_at=T0)
    with pytest.raises(ValueError, match="must exceed"):
        ChargerSessions((1,), next_local_tx_id=5, recovered=[rec])
    with pytest.raises(ValueError, match="unknown"):
        ChargerSessions((2,), next_local_tx_id=6, recovered=[rec])


_AGENT = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from agent.faults import OcppStatus
from agent.ocpp.metervalues import MeterSettings
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import ChargerSessions, ConnectorSample
from hw.capabilities import MeterReading

store = OcppStore(Path(sys.argv[1]))
sessions = ChargerSessions((1,), next_local_tx_id=store.next_local_tx_id(),
                           recovered=store.open_transactions())
settings = MeterSettings(sample_interval_s=1, clock_aligned_interval_s=0)
t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
for s in range(100000):
    m = MeterReading(phase_voltages_v=(230.0,), phase_currents_a=(32.0,),
                     phase_powers_w=(7360.0,), total_power_w=7360.0, frequency_hz=50.0,
                     import_energy_wh=1000.0 + 2.0 * s)
    out = sessions.step(t0 + timedelta(seconds=s), [ConnectorSample(
        connector_id=1, status=OcppStatus.CHARGING, plugged=True, id_tag="FREE", meter=m,
        offered_a=32.0)], settings)
    store.enqueue_all(out.messages)
    print(s, flush=True)
"""


def test_agent_killed_mid_session_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    """A real agent loop (sessions + store, virtual time, 1 s samples) is SIGKILLed
    mid-session; the restarted one stops the transaction with PowerLoss. In the outbox:
    one StartTransaction, one MeterValues per second without gap or repeat, one
    StopTransaction; delivered, all carry the CSMS's transactionId."""
    path = tmp_path / "ocpp.db"
    child = subprocess.Popen([sys.executable, "-c", _AGENT, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(25)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)

    store = OcppStore(path)
    [open_tx] = store.open_transactions()
    sessions = ChargerSessions((1,), next_local_tx_id=store.next_local_tx_id(),
                               recovered=[open_tx])
    restart_at = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
    out = sessions.step(restart_at, [sample(plugged=False, tag=None, meter=reading(
        open_tx.last_energy_wh + 50.0, phases=1))], MeterSettings(clock_aligned_interval_s=0))
    store.enqueue_all(out.messages)

    queued = store.pending()
    actions = [m.action for m in queued]
    assert actions.count(OutboxAction.START_TRANSACTION) == 1
    assert actions.count(OutboxAction.STOP_TRANSACTION) == 1
    assert actions[0] is OutboxAction.START_TRANSACTION
    assert actions[-1] is OutboxAction.STOP_TRANSACTION
    stamps = [m.payload["meterValue"][0]["timestamp"] for m in queued
              if m.action is OutboxAction.METER_VALUES]
    expected = [f"2025-03-01T12:{s // 60:02d}:{s % 60:02d}Z" for s in range(1, len(stamps) + 1)]
    assert stamps == expected  # no gap, no repeat
    assert len(stamps) >= acknowledged[-1]  # every acknowledged step's sample is there
    assert queued[-1].payload["reason"] == "PowerLoss"
    assert queued[-1].payload["meterStop"] == open_tx.last_energy_wh + 50

    while (m := store.peek()) is not None:
        validate(OutgoingMessage(action=m.action, payload=m.payload, local_tx_id=None))
        if m.action is not OutboxAction.START_TRANSACTION:
            assert m.payload["transactionId"] == 31337
        store.delivered(m.seq, {"transactionId": 31337, "idTagInfo": {"status": "Accepted"}}
                        if m.action is OutboxAction.START_TRANSACTION else {})
    store.close()
