"""The charger's OCPP sessions: authorisation, transactions, meter values and smart charging
wired to their stores. The shell side of agent.ocpp's pure cores (auth, transactions,
profiles, ukdefault); the agent's step and the charge point both talk to it.

Each agent step calls `prepare` before it asks the limit applier for the offers (per
connector: is the EV authorised, does the UK default postpone it, the local limit for the
applier, the LED to show instead of the machine's) and `record` after stepping the
connector machines (which queues the transaction messages in the durable outbox). The
charge point's handlers call the command methods; its sender drains the outbox.

Rules:
 1. Authorisation per connector is a `Grant` (idTag, parent): the plug-in itself (mode
    NONE: the free idTag), a card, or a RemoteStartTransaction. A card or remote start
    with no EV plugged in waits ConnectionTimeOut s for one (the lowest connector, or the
    one the CSMS named). A card goes to the lowest plugged connector without a grant.
 2. A card that may stop a running transaction (auth rule 8: same tag or same parent)
    stops it with reason Local instead. A refused card shows "card not authorised"
    (red / white, manual ch. 7) for `REJECTED_LED_S` on its connector (all, if none).
 3. Any stop (card, RemoteStopTransaction, reset, UnlockConnector, Reboot, an invalid
    StartTransaction.conf) withdraws the grant: the connector shows Finishing until the
    EV is unplugged, in mode NONE too (no new transaction on the same plug-in).
 4. Unplugging withdraws the grant (the core stops with EVDisconnected), unless
    StopTransactionOnEVSideDisconnect is off while a transaction runs.
 5. Smart charging: each connector's composite limit (ProfileSet.limit_a, transactions
    by LOCAL id: the CSMS's ids are mapped at the boundary) is the applier's local limit
    and, with the hard max, the connector's maximum for the master; a
    ChargePointMaxProfile caps the charger as a whole. A UK default postponement holds
    the local limit at 0 A and sets the machine's `postponed` input (LED solid blue).
 6. Profiles are saved after every change; a transaction's end (and a restart, which
    ends every transaction) removes its TxProfiles. A RemoteStartTransaction's profile is
    installed when its transaction starts.
 7. The outbox's confs: every idTagInfo goes through `on_id_tag_info` into the cache; a
    StartTransaction.conf that is not Accepted stops (DeAuthorized) or suspends the
    transaction (auth rule 7).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from agent.errors import PeerError
from agent.ocpp.auth import (
    CARD_NOT_AUTHORISED_LED,
    AuthDecision,
    AuthMode,
    CacheAction,
    IdTagInfo,
    Outcome,
    Presentation,
    StartConfAction,
    authorise,
    may_stop_locally,
    on_authorize_conf,
    on_id_tag_info,
    on_start_transaction_conf,
)
from agent.ocpp.commands import SessionCommands
from agent.ocpp.configkeys import ConfigurationStore
from agent.ocpp.profiles import ChargingProfile, ProfileSet
from agent.ocpp.profilestore import ProfileStore
from agent.ocpp.store import (
    OcppStore,
    QueuedMessage,
)
from agent.ocpp.transactions import (
    ChargerSessions,
    ConnectorSample,
    Observed,
    OutboxAction,
    StopReason,
    StopRequest,
    TransactionRecord,
)
from agent.ocpp.ukdefault import Postponement, UkDefault
from hw.capabilities import LedPattern

REJECTED_LED_S = 5.0  # team choice: long enough to see at the reader
log = structlog.get_logger("agent.ocpp.sessions")


@dataclass(frozen=True, slots=True)
class Grant:
    """An authorisation held by a connector (rule 1); `suspended`: auth rule 7's
    StopTransactionOnInvalidId off: the transaction stays open, without energy."""

    id_tag: str
    parent_id_tag: str | None = None
    suspended: bool = False
    profile: ChargingProfile | None = None  # a RemoteStartTransaction's TxProfile


@dataclass(frozen=True, slots=True)
class Question:
    """An Authorize.req to send: for `connector_id` (None: the first to plug in)."""

    id_tag: str
    connector_id: int | None
    via: Presentation
    profile: ChargingProfile | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """What a connector's step takes from the OCPP side (rule 5)."""

    authorised: bool
    postponed: Postponement | None
    local_limit_a: float | None  # for the limit applier (0 while postponed)
    max_current_a: float  # min(hard max, composite limit): the master's view
    led: LedPattern | None  # shown instead of the machine's LED


class OcppSessions(SessionCommands):
    """Authorisation, transactions and profiles of one charger (module rules 1-7)."""

    def __init__(self, *, store: OcppStore, profile_store: ProfileStore,
                 keys: ConfigurationStore, hard_max_a: Mapping[int, float],
                 charger_limit_a: float, mode: AuthMode, free_id_tag: str,
                 local_list: Sequence[str], uk_default: UkDefault,
                 online: Callable[[], bool], charger_id: str) -> None:
        self.store, self.profile_store, self.keys = store, profile_store, keys
        self.mode, self.free_id_tag, self.uk_default = mode, free_id_tag, uk_default
        self.online = online
        self.log = log.bind(charger_id=charger_id)
        self.ids = tuple(sorted(hard_max_a))
        self.hard_max_a = dict(hard_max_a)
        store.seed_local_list(local_list)
        self.sessions = ChargerSessions(self.ids, next_local_tx_id=store.next_local_tx_id(),
                                        recovered=store.open_transactions())
        self.profiles = ProfileSet(hard_max_a={0: charger_limit_a, **hard_max_a})
        dropped = self.profiles.restore(profile_store.load())
        for cid in self.ids:  # rule 6: a restart ends every transaction
            self.profiles.transaction_ended(cid)
        profile_store.save_all(self.profiles.entries())
        if dropped:
            self.log.warning("stored charging profiles dropped", ids=[p.profile_id
                                                                     for _, p in dropped])
        self.grants: dict[int, Grant | None] = dict.fromkeys(self.ids)
        self.stops: dict[int, StopRequest] = {}
        self.finished: set[int] = set()
        self.plugged: dict[int, bool] = dict.fromkeys(self.ids, False)
        self.waiting: list[tuple[int | None, Grant, datetime]] = []
        self.questions: list[Question] = []
        self.rejected_led_until: dict[int, datetime] = {}
        self.observed: dict[int, Observed] = {}
        self.outbox_ready = asyncio.Event()
        self.question_ready = asyncio.Event()
        self._card: str | None = None
        self._last_now: datetime | None = None

    def id_tags(self) -> dict[int, str]:
        """Per connector, the idTag of a driver's own authorisation (a card or a remote
        start), for the master's per-card learning (agent.wire.tag_pseudonym hashes it);
        the free idTag of plug-and-charge is nobody's and is left out."""
        return {cid: g.id_tag for cid, g in self.grants.items()
                if g is not None and g.id_tag and g.id_tag != self.free_id_tag}

    # --- the agent's step ----------------------------------------------------------------
    def _clock(self, now: datetime) -> datetime:
        """Wall-clock time never goes backwards here (an NTP step would upset the core)."""
        if self._last_now is not None and now < self._last_now:
            now = self._last_now
        self._last_now = now
        return now

    def prepare(self, now: datetime, plugged: Mapping[int, bool], card: str | None
                ) -> tuple[dict[int, Prepared], float | None]:
        """Before the offers: per connector what `Prepared` says, and the charger cap
        (ChargePointMaxProfile, A) or None. `card`: the UID at the reader now."""
        now = self._clock(now)
        stop_on_unplug = self.keys.boolean("StopTransactionOnEVSideDisconnect")
        for cid in self.ids:
            self.plugged[cid] = plugged[cid]
            if not plugged[cid]:
                self.finished.discard(cid)
                if self.sessions.active(cid) is None or stop_on_unplug:
                    self.grants[cid] = None
        timeout = timedelta(seconds=self.keys.integer("ConnectionTimeOut"))
        self.waiting = [w for w in self.waiting if now - w[2] < timeout]
        for cid in self.ids:
            if plugged[cid] and self.grants[cid] is None and cid not in self.finished:
                self.grants[cid] = self._take_waiting(cid) or (
                    Grant(self.free_id_tag) if self.mode is AuthMode.NONE else None)
        if card is not None and card != self._card:
            self.present_card(card, now)
        self._card = card
        out: dict[int, Prepared] = {}
        cap: float | None = None
        for cid in self.ids:
            grant = self.grants[cid]
            authorised = grant is not None and not grant.suspended
            postponed = self.uk_default.postponed(cid, now, plugged_in=plugged[cid],
                                                  wants_to_start=authorised)
            tx = self.sessions.active(cid)
            decision = self.profiles.limit_a(
                cid, now, tx_start=None if tx is None else tx.started_at,
                tx_id=None if tx is None else tx.local_tx_id)
            limit = None if decision is None else decision.limit_a
            if decision is not None and decision.charger_max_a is not None:
                cap = decision.charger_max_a
            until = self.rejected_led_until.get(cid)
            out[cid] = Prepared(
                authorised=authorised, postponed=postponed,
                local_limit_a=0.0 if postponed is not None else limit,
                max_current_a=self.hard_max_a[cid] if limit is None
                else min(limit, self.hard_max_a[cid]),
                led=CARD_NOT_AUTHORISED_LED if until is not None and now < until else None)
        return out, cap

    def _take_waiting(self, cid: int) -> Grant | None:
        for k, (target, grant, _) in enumerate(self.waiting):
            if target in (None, cid):
                del self.waiting[k]
                self.log.info("authorisation taken by the plug-in", connector_id=cid,
                              id_tag=grant.id_tag)
                return grant
        return None

    def record(self, now: datetime, observed: Iterable[Observed]) -> None:
        """After the machines: step the transaction core and commit its messages."""
        now = self._clock(now)
        obs = {o.connector_id: o for o in observed}
        self.observed = obs
        before = {cid: self.sessions.active(cid) for cid in self.ids}
        samples = []
        for cid in self.ids:
            o, grant = obs[cid], self.grants[cid]
            samples.append(ConnectorSample(
                connector_id=cid, status=o.status, plugged=o.plugged,
                id_tag=None if grant is None else grant.id_tag, meter=o.meter,
                offered_a=o.offered_a, stop=self.stops.pop(cid, None)))
        step = self.sessions.step(now, samples, self.meter_settings())
        try:
            self.store.enqueue_all(step.messages)
        except sqlite3.Error as err:  # the disk failed: say so loudly, keep charging safely
            self.log.error("transaction messages not saved", why=str(err),
                           lost=[m.action.value for m in step.messages])
        for note in step.notes:
            self.log.info("transaction note", connector_id=note.connector_id,
                          local_tx_id=note.local_tx_id, note=note.text)
        for m in step.messages:
            if m.action is not OutboxAction.METER_VALUES:
                self.log.info("transaction message queued", action=m.action.value,
                              local_tx_id=m.local_tx_id,
                              connector_id=m.payload.get("connectorId"),
                              reason=m.payload.get("reason"))
        if step.messages:
            self.outbox_ready.set()
        for cid in self.ids:
            old, new = before[cid], self.sessions.active(cid)
            ended = old is not None and (new is None or new.local_tx_id != old.local_tx_id)
            if ended and self.profiles.transaction_ended(cid):
                self._save_profiles()
            if new is not None and (old is None or new.local_tx_id != old.local_tx_id):
                self._install_remote_profile(cid, new)

    def _install_remote_profile(self, cid: int, tx: TransactionRecord) -> None:
        grant = self.grants[cid]
        if grant is None or grant.profile is None:
            return
        result = self.profiles.install(cid, grant.profile, active_transaction_id=tx.local_tx_id)
        self._log_install(cid, grant.profile, result)
        if result.accepted:
            self._save_profiles()

    # --- authorisation -------------------------------------------------------------------
    def present_card(self, uid: str, now: datetime) -> None:
        """Rules 1-2: a card held to the reader."""
        for cid in self.ids:
            tx = self.sessions.active(cid)
            grant = self.grants[cid]
            if tx is not None and may_stop_locally(
                    uid, tx_id_tag=tx.id_tag,
                    presented_parent_id_tag=self._parent_of(uid),
                    tx_parent_id_tag=None if grant is None else grant.parent_id_tag):
                self.log.info("card stops the transaction", connector_id=cid, id_tag=uid)
                self.stop(cid, StopReason.LOCAL, by=uid)
                return
        target = next((c for c in self.ids if self.plugged[c] and self.grants[c] is None),
                      None)
        self._decide(self._authorise(uid, Presentation.RFID, now), target, now)

    def _parent_of(self, uid: str) -> str | None:
        entry = self.store.local_entry(uid) or self.store.cache_get(uid)
        return None if entry is None else entry.parent_id_tag

    def _authorise(self, id_tag: str, via: Presentation, now: datetime, *,
                   online: bool | None = None) -> AuthDecision:
        return authorise(id_tag, via=via, settings=self.auth_settings(),
                         online=self.online() if online is None else online, now=now,
                         list_entry=self.store.local_entry(id_tag),
                         cache_entry=self.store.cache_get(id_tag))

    def _decide(self, d: AuthDecision, target: int | None, now: datetime, *,
                via: Presentation = Presentation.RFID,
                profile: ChargingProfile | None = None) -> None:
        self.log.info("authorisation", id_tag=d.id_tag, connector_id=target,
                      outcome=d.outcome.value, source=d.source.value, why=d.why)
        if d.outcome is Outcome.ACCEPTED:
            self._grant(target, Grant(d.id_tag, d.parent_id_tag, profile=profile), now)
        elif d.outcome is Outcome.ASK_CSMS:
            self.questions.append(Question(d.id_tag, target, via, profile))
            self.question_ready.set()
        elif d.led is not None:
            until = now + timedelta(seconds=REJECTED_LED_S)
            for cid in (self.ids if target is None else (target,)):
                self.rejected_led_until[cid] = until

    def _grant(self, target: int | None, grant: Grant, now: datetime) -> None:
        if target is not None and self.plugged[target] and self.grants[target] is None:
            self.grants[target] = grant
            self.finished.discard(target)
        else:
            self.waiting.append((target, grant, now))

    def take_question(self) -> Question | None:
        """The next Authorize.req to send (the charge point's task), None if none."""
        if not self.questions:
            self.question_ready.clear()
            return None
        return self.questions.pop(0)

    def answer(self, q: Question, info: IdTagInfo | None, now: datetime) -> None:
        """The CSMS's Authorize.conf idTagInfo, or None when it did not answer (decided
        again as offline)."""
        if info is None:
            self._decide(self._authorise(q.id_tag, q.via, now, online=False),
                         q.connector_id, now, via=q.via, profile=q.profile)
            return
        self._cache(q.id_tag, info)
        self._decide(on_authorize_conf(q.id_tag, info, now=now, via=q.via),
                     q.connector_id, now, via=q.via, profile=q.profile)

    def _cache(self, id_tag: str, info: IdTagInfo) -> None:
        update = on_id_tag_info(id_tag, info, settings=self.auth_settings(),
                                in_local_list=self.store.local_entry(id_tag) is not None)
        if update.action is CacheAction.PUT:
            self.store.cache_put(id_tag, info)

    # --- commands --------------------------------------------------------------------------
    def stop(self, cid: int, reason: StopReason, *, by: str | None = None) -> bool:
        """Rule 3: stop the transaction on `cid` at the next step; False if none runs."""
        if self.sessions.active(cid) is None:
            return False
        self.stops[cid] = StopRequest(reason=reason, id_tag=by)
        self.grants[cid] = None
        self.finished.add(cid)
        return True

    def stop_all(self, reason: StopReason) -> list[int]:
        """Stop every running transaction (resets, shutdown); the connectors."""
        return [cid for cid in self.ids if self.stop(cid, reason)]

    def busy(self) -> set[int]:
        """Connectors with an open transaction (ChangeAvailability waits for them)."""
        return {cid for cid in self.ids if self.sessions.active(cid) is not None}

    def remote_start(self, id_tag: str, connector_id: int | None,
                     profile: ChargingProfile | None, now: datetime) -> bool:
        """RemoteStartTransaction: False (Rejected) for a busy or unknown connector."""
        if connector_id is not None and (connector_id not in self.ids
                                         or self.sessions.active(connector_id) is not None):
            return False
        target = connector_id if connector_id is not None else next(
            (c for c in self.ids if self.plugged[c] and self.grants[c] is None
             and self.sessions.active(c) is None), None)
        d = self._authorise(id_tag, Presentation.REMOTE, now)
        if d.outcome is Outcome.REJECTED:
            self.log.info("remote start refused", id_tag=id_tag, why=d.why)
            return False
        self._decide(d, target, now, via=Presentation.REMOTE, profile=profile)
        return True

    def remote_stop(self, csms_tx_id: int) -> bool:
        """RemoteStopTransaction by the CSMS's transactionId."""
        local = self.store.local_tx_id_for(csms_tx_id)
        for cid in self.ids:
            tx = self.sessions.active(cid)
            if local is not None and tx is not None and tx.local_tx_id == local:
                return self.stop(cid, StopReason.REMOTE)
        return False

    # --- the outbox's answers ----------------------------------------------------------------
    def delivered(self, m: QueuedMessage, conf: Mapping[str, Any], now: datetime) -> None:
        """Rule 7: the CSMS answered the outbox's oldest message with `conf` (camelCase).
        PeerError (nothing changes) for a StartTransaction.conf without a transactionId."""
        self.store.delivered(m.seq, conf)
        raw = conf.get("idTagInfo")
        tag = m.payload.get("idTag")
        if raw is None or not isinstance(tag, str):
            return
        try:
            info = IdTagInfo.from_json(raw)
        except PeerError as err:
            self.log.warning("idTagInfo ignored", action=m.action.value, why=str(err))
            return
        self._cache(tag, info)
        if m.action is not OutboxAction.START_TRANSACTION:
            return
        d = on_start_transaction_conf(info, settings=self.auth_settings(), now=now)
        if d.action is StartConfAction.CONTINUE:
            return
        for cid in self.ids:
            tx = self.sessions.active(cid)
            if tx is None or tx.local_tx_id != m.local_tx_id:
                continue
            self.log.warning("transaction not authorised by the CSMS", connector_id=cid,
                             local_tx_id=tx.local_tx_id, action=d.action.value, why=d.why)
            grant = self.grants[cid]
            if d.action is StartConfAction.STOP_TRANSACTION:
                self.stop(cid, StopReason.DE_AUTHORIZED)
            elif grant is not None:
                self.grants[cid] = replace(grant, suspended=True)
