"""The OCPP store on a real SQLite file: local list, cache, outbox FIFO with id mapping,
restarts (close and reopen, a second process-like opener, a real kill -9)."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.errors import PeerError
from agent.ocpp.auth import AuthorizationStatus, IdTagInfo
from agent.ocpp.authlists import AuthorizationData, UpdateStatus, UpdateType
from agent.ocpp.store import OcppStore, OutboxError
from agent.ocpp.transactions import OutboxAction

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ACC = IdTagInfo(status=AuthorizationStatus.ACCEPTED)
BLOCKED = IdTagInfo(status=AuthorizationStatus.BLOCKED)
FULL, DIFF = UpdateType.FULL, UpdateType.DIFFERENTIAL
REPO = Path(__file__).resolve().parents[3]


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"uid-{next(counter)}"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ocpp.db"


@pytest.fixture
def store(path: Path) -> Iterator[OcppStore]:
    with OcppStore(path, new_unique_id=ids()) as s:
        yield s


def entry(tag: str, info: IdTagInfo | None = ACC) -> AuthorizationData:
    return AuthorizationData(id_tag=tag, id_tag_info=info)


def tags(store: OcppStore) -> dict[str, str]:
    return {e.id_tag: e.id_tag_info.status.value for e in store.local_list()
            if e.id_tag_info is not None}


def start(local: int, connector: int = 1, wh: int = 1000, at: datetime = NOW) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": "CARD-1", "meterStart": wh,
            "timestamp": at.isoformat().replace("+00:00", "Z")}


def meter(local: int, wh: int) -> dict[str, Any]:
    return {"connectorId": 1, "transactionId": local, "meterValue": [
        {"timestamp": "2025-03-01T12:01:00Z", "sampledValue": [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}


def stop(local: int, wh: int, reason: str = "EVDisconnected") -> dict[str, Any]:
    return {"transactionId": local, "meterStop": wh, "timestamp": "2025-03-01T12:10:00Z",
            "reason": reason}


def queue_session(store: OcppStore, local: int, wh: int = 1000) -> None:
    store.enqueue("StartTransaction", start(local, wh=wh), local_tx_id=local)
    store.enqueue("MeterValues", meter(local, wh + 100), local_tx_id=local,
                  energy_wh=wh + 100, energy_at=NOW + timedelta(minutes=1))
    store.enqueue("StopTransaction", stop(local, wh + 200), local_tx_id=local)


def drain(store: OcppStore, csms_ids: Iterator[int]) -> list[tuple[str, dict[str, Any]]]:
    """Deliver everything like a connected CSMS that numbers transactions from csms_ids."""
    sent = []
    while (m := store.peek()) is not None:
        sent.append((m.action.value, m.payload))
        answer = ({"transactionId": next(csms_ids), "idTagInfo": {"status": "Accepted"}}
                  if m.action is OutboxAction.START_TRANSACTION else {})
        store.delivered(m.seq, answer)
    return sent


def test_wal_and_full_sync(store: OcppStore) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == "2"  # FULL
    names = {r[0] for r in sqlite3.connect(store.path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not names & {"charging_profiles", "configuration"}


# -- local list -------------------------------------------------------------------------

def test_full_list_replaces_and_reports_its_version(store: OcppStore) -> None:
    assert store.local_list_version() == 0
    assert store.send_local_list(3, FULL, [entry("A"), entry("B", BLOCKED)]) is \
        UpdateStatus.ACCEPTED
    assert store.local_list_version() == 3
    assert tags(store) == {"A": "Accepted", "B": "Blocked"}
    assert store.send_local_list(2, FULL, [entry("C")]) is UpdateStatus.ACCEPTED  # Full: any
    assert tags(store) == {"C": "Accepted"}
    assert store.send_local_list(7, FULL, []) is UpdateStatus.ACCEPTED
    assert store.local_list_version() == 0  # 5.10: 0 = the list is empty


def test_differential_adds_updates_removes(store: OcppStore) -> None:
    store.send_local_list(1, FULL, [entry("A"), entry("B")])
    expiry = NOW + timedelta(days=30)
    info = IdTagInfo(status=AuthorizationStatus.ACCEPTED, expiry_date=expiry,
                     parent_id_tag="FLEET")
    status = store.send_local_list(2, DIFF, [entry("A", BLOCKED), entry("B", None),
                                             entry("C", info)])
    assert status is UpdateStatus.ACCEPTED
    assert tags(store) == {"A": "Blocked", "C": "Accepted"}
    assert store.local_entry("c") == info  # case-insensitive, expiry and parent kept
    assert store.local_entry("B") is None
    assert store.local_list_version() == 2


@pytest.mark.parametrize("version", [1, 2], ids=["older", "same"])
def test_differential_version_mismatch_changes_nothing(store: OcppStore, version: int) -> None:
    store.send_local_list(2, FULL, [entry("A")])
    assert store.send_local_list(version, DIFF, [entry("B")]) is UpdateStatus.VERSION_MISMATCH
    assert tags(store) == {"A": "Accepted"} and store.local_list_version() == 2


@pytest.mark.parametrize(("version", "kind", "entries"), [
    (1, FULL, [entry("A", None)]),
    (1, FULL, [entry("A"), entry("a")]),
    (-1, FULL, [entry("A")]),
    (1, FULL, [entry(f"T{i}") for i in range(4)]),
    (5, DIFF, [entry("X"), entry("Y")]),
], ids=["full_without_info", "duplicate_tags", "negative_version", "request_too_long",
        "list_would_overflow"])
def test_failed_updates_change_nothing(path: Path, version: int, kind: UpdateType,
                                       entries: list[AuthorizationData]) -> None:
    with OcppStore(path, local_list_max_length=3, send_local_list_max_length=3) as s:
        s.send_local_list(2, FULL, [entry("A"), entry("B")])
        assert s.send_local_list(version, kind, entries) is UpdateStatus.FAILED
        assert tags(s) == {"A": "Accepted", "B": "Accepted"}
        assert s.local_list_version() == 2


def test_config_seed_until_the_csms_owns_the_list(path: Path) -> None:
    with OcppStore(path) as s:
        assert s.seed_local_list(["CARD-1", "CARD-2", "card-2"])
        assert tags(s) == {"CARD-1": "Accepted", "card-2": "Accepted"}
        assert s.local_list_version() == 0  # "nothing from the CSMS": it will send Full
    with OcppStore(path) as s:  # next start, config edited
        assert s.seed_local_list(["CARD-3"])
        assert tags(s) == {"CARD-3": "Accepted"}
        assert s.send_local_list(1, DIFF, [entry("CARD-4")]) is UpdateStatus.ACCEPTED
    with OcppStore(path) as s:  # the CSMS owns it now
        assert not s.seed_local_list(["CARD-9"])
        assert tags(s) == {"CARD-3": "Accepted", "CARD-4": "Accepted"}
        with pytest.raises(ValueError, match="config idTag"):
            s.seed_local_list(["X" * 21])


def test_bad_config_tag_changes_nothing(store: OcppStore) -> None:
    store.seed_local_list(["A"])
    with pytest.raises(ValueError):
        store.seed_local_list(["B", ""])
    assert tags(store) == {"A": "Accepted"}


# -- cache ------------------------------------------------------------------------------

def test_cache_put_get_clear_with_expiry(store: OcppStore) -> None:
    expiring = IdTagInfo(status=AuthorizationStatus.ACCEPTED, expiry_date=NOW)
    store.cache_put("CARD-1", expiring)
    assert store.cache_get("card-1") == expiring
    store.cache_put("card-1", BLOCKED)  # replaces, any case
    assert store.cache_get("CARD-1") == BLOCKED and store.cache_size() == 1
    store.clear_cache()
    assert store.cache_get("CARD-1") is None and store.cache_size() == 0


def test_cache_evicts_rejected_first_then_oldest(path: Path) -> None:
    with OcppStore(path, cache_max_entries=3) as s:
        s.cache_put("OLD-OK", ACC)
        s.cache_put("BAD", BLOCKED)
        s.cache_put("NEW-OK", ACC)
        s.cache_put("NEWEST", ACC)
        assert s.cache_get("BAD") is None
        s.cache_put("ONE-MORE", ACC)
        assert s.cache_get("OLD-OK") is None
        assert {t for t in ("NEW-OK", "NEWEST", "ONE-MORE") if s.cache_get(t)} == {
            "NEW-OK", "NEWEST", "ONE-MORE"}


# -- outbox -----------------------------------------------------------------------------

def test_fifo_with_transaction_id_mapping(store: OcppStore) -> None:
    queue_session(store, 1)
    queue_session(store, 2, wh=5000)
    assert store.pending_count() == 6
    sent = drain(store, iter([4242, 4343]))
    assert [a for a, _ in sent] == ["StartTransaction", "MeterValues", "StopTransaction"] * 2
    assert "transactionId" not in sent[0][1]
    assert [p["transactionId"] for _, p in sent[1:3]] == [4242, 4242]
    assert [p["transactionId"] for _, p in sent[4:6]] == [4343, 4343]
    assert store.pending_count() == 0
    assert store.local_tx_id_for(4343) == 2 and store.local_tx_id_for(1) is None
    rec = store.transaction(1)
    assert rec is not None and rec.csms_tx_id == 4242 and rec.last_energy_wh == 1100


def test_restart_keeps_order_unique_ids_and_mapping(path: Path) -> None:
    with OcppStore(path, new_unique_id=ids()) as s:
        queue_session(s, 1)
        first = s.peek()
        assert first is not None
        s.delivered(first.seq, {"transactionId": 77, "idTagInfo": {"status": "Accepted"}})
        before = s.pending()
        s.enqueue("StartTransaction", start(2), local_tx_id=2)
    with OcppStore(path, new_unique_id=ids()) as s:
        after = s.pending()
        assert [(m.seq, m.unique_id, m.action) for m in after[:2]] == [
            (m.seq, m.unique_id, m.action) for m in before]
        assert after[2].action is OutboxAction.START_TRANSACTION
        head = s.peek()
        assert head is not None and head.payload["transactionId"] == 77
        assert head.unique_id == before[0].unique_id  # a resend keeps its OCPP unique id
        assert s.next_local_tx_id() == 3
        assert [r.local_tx_id for r in s.open_transactions()] == [2]


def test_simulated_kill_second_opener_sees_every_commit(path: Path) -> None:
    """The first store is never closed (as if the process died); a second one on the same
    file, as the restarted agent would open it, sees every committed write."""
    first = OcppStore(path, new_unique_id=ids())
    queue_session(first, 1)
    first.send_local_list(4, FULL, [entry("A")])
    first.cache_put("B", BLOCKED)
    first.enqueue("StartTransaction", start(2, connector=2), local_tx_id=2)
    second = OcppStore(path, new_unique_id=lambda: "fresh")
    assert [m.action.value for m in second.pending()] == [
        "StartTransaction", "MeterValues", "StopTransaction", "StartTransaction"]
    assert second.local_list_version() == 4 and second.cache_get("B") == BLOCKED
    assert [(r.local_tx_id, r.connector_id) for r in second.open_transactions()] == [(2, 2)]
    assert drain(second, iter([10, 11]))[-1][0] == "StartTransaction"
    first.close()
    second.close()


_CHILD = """
import sys
from pathlib import Path
from agent.ocpp.store import OcppStore
store = OcppStore(Path(sys.argv[1]))
for local in range(1, 100000):
    store.enqueue("StartTransaction", {"connectorId": 1, "idTag": "K", "meterStart": local,
                  "timestamp": "2025-03-01T12:00:00Z"}, local_tx_id=local)
    print(local, flush=True)
"""


def test_kill_9_loses_nothing_committed(path: Path) -> None:
    """A real SIGKILL while the child enqueues: every message it reported as queued is in
    the file, once, in order, with distinct unique ids; the file opens cleanly."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    with OcppStore(path) as s:
        pending = s.pending()
    seen = [m.local_tx_id or 0 for m in pending]
    assert seen[:len(acknowledged)] == acknowledged
    assert seen == sorted(set(seen))  # no duplicate, no gap
    assert seen == list(range(1, len(seen) + 1))
    assert len({m.unique_id for m in pending}) == len(pending)


def test_enqueue_all_is_atomic(store: OcppStore) -> None:
    from agent.ocpp.transactions import OutgoingMessage  # noqa: PLC0415

    good = OutgoingMessage(action=OutboxAction.START_TRANSACTION, payload=start(1),
                           local_tx_id=1)
    bad = OutgoingMessage(action=OutboxAction.METER_VALUES, payload=meter(9, 1), local_tx_id=9)
    with pytest.raises(OutboxError, match="transaction 9"):
        store.enqueue_all([good, bad])
    assert store.pending_count() == 0 and store.open_transactions() == []


@pytest.mark.parametrize(("action", "payload", "local", "match"), [
    ("Heartbeat", {}, None, "not a transaction-related action"),
    ("MeterValues", meter(5, 1), 5, "not known"),
    ("StopTransaction", stop(1, 2000), 1, "was stopped"),
    ("StartTransaction", start(1), 1, "started already"),
    ("StartTransaction", start(2), None, "needs local_tx_id"),
    ("MeterValues", meter(1, 1), 2, "placeholder"),
    ("MeterValues", {**meter(1, 1), "bad": float("nan")}, 1, "not JSON"),
    ("StartTransaction", {"connectorId": 1}, 3, "required field"),
    ("StartTransaction", {**start(3), "timestamp": "noon"}, 3, "required field"),
], ids=["not_transaction_related", "unknown_tx", "second_stop", "second_start",
        "start_without_local_id", "wrong_placeholder", "nan", "missing_fields", "bad_time"])
def test_bad_enqueues_change_nothing(store: OcppStore, action: str, payload: dict[str, Any],
                                     local: int | None, match: str) -> None:
    queue_session(store, 1)
    before = store.pending()
    with pytest.raises(OutboxError, match=match):
        store.enqueue(action, payload, local_tx_id=local)
    assert store.pending() == before


def test_delivered_guards(store: OcppStore) -> None:
    queue_session(store, 1)
    head, second = store.pending()[:2]
    with pytest.raises(OutboxError, match="not the oldest"):
        store.delivered(second.seq, {})
    for bad in ({}, {"transactionId": "12"}, {"transactionId": True}):
        with pytest.raises(PeerError, match="transactionId"):
            store.delivered(head.seq, bad)
    assert store.pending_count() == 3
    rec = store.transaction(1)
    assert rec is not None and rec.csms_tx_id is None
    store.delivered(head.seq, {"transactionId": 9})
    with pytest.raises(OutboxError):
        store.delivered(head.seq, {"transactionId": 9})  # twice: not queued any more


def test_attempts_and_drop(store: OcppStore) -> None:
    queue_session(store, 1)
    head = store.peek()
    assert head is not None
    assert [store.record_attempt(head.seq) for _ in range(3)] == [1, 2, 3]
    reopened = store.peek()
    assert reopened is not None and reopened.attempts == 3
    with pytest.raises(OutboxError):
        store.record_attempt(999)
    assert store.drop(head.seq) == 3  # the start and its transaction's messages
    assert store.peek() is None


def test_messages_after_a_dropped_start_are_purged(store: OcppStore) -> None:
    store.enqueue("StartTransaction", start(1), local_tx_id=1)
    store.enqueue("StartTransaction", start(2, connector=2), local_tx_id=2)
    head = store.peek()
    assert head is not None and store.drop(head.seq) == 1
    store.enqueue("StopTransaction", stop(1, 1500), local_tx_id=1)
    nxt = store.peek()
    assert nxt is not None and nxt.local_tx_id == 2
    store.delivered(nxt.seq, {"transactionId": 5})
    assert store.peek() is None and store.pending_count() == 0


def test_drop_of_a_meter_value_keeps_the_rest(store: OcppStore) -> None:
    queue_session(store, 1)
    assert len(drain_one(store)) == 1
    mv = store.peek()
    assert mv is not None and mv.action is OutboxAction.METER_VALUES
    assert store.drop(mv.seq) == 1
    last = store.peek()
    assert last is not None and last.action is OutboxAction.STOP_TRANSACTION


def drain_one(store: OcppStore) -> list[int]:
    m = store.peek()
    assert m is not None
    store.delivered(m.seq, {"transactionId": 1} if m.action is
                    OutboxAction.START_TRANSACTION else {})
    return [m.seq]


def test_unopenable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="OCPP store"):
        OcppStore(tmp_path / "missing-dir" / "ocpp.db")
