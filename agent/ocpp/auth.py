"""Authorisation of idTags (OCPP 1.6 section 3.5 and the manual's three modes), pure.

The shell looks the presented idTag up in the local list and the authorisation cache
(agent.ocpp.authlists), hands both entries to `authorise` with `now` and whether the CSMS is
reachable, and acts on the `AuthDecision`: ACCEPTED (start at once), ASK_CSMS (send
Authorize.req, then `on_authorize_conf`), REJECTED (show the "card not authorised" LED,
manual ch. 7). Every IdTagInfo the CSMS sends (Authorize, StartTransaction and
StopTransaction .conf) goes through `on_id_tag_info`, which says whether the cache takes
it; a StartTransaction.conf goes through `on_start_transaction_conf` too. No I/O, no clock.

Rules, in order:
 1. Mode NONE (manual 6.5 "no authorisation"): everything is accepted; a plug-in start
    uses the configured `free_id_tag` (`plug_in_id_tag`), a card or a remote start its own.
 2. Mode LOCAL_LIST (manual 6.5 "local RFID authorisation"): the local list alone decides,
    online or not; an unknown card is rejected as Invalid.
 3. Mode CSMS: a remote start is accepted as it is unless AuthorizeRemoteTxRequests.
    Online, a card is looked up locally only with LocalPreAuthorize; a valid entry starts
    at once, anything else asks the CSMS (it may have unblocked the card since).
    Offline: a card known locally as not valid is rejected whatever the keys (3.5.3:
    "MUST be rejected"); a valid one is accepted if LocalAuthorizeOffline; any other card
    only if AllowOfflineTxForUnknownId.
 4. Lookup order: the local list (if LocalAuthListEnabled) before the cache (if
    AuthorizationCacheEnabled): the list takes precedence (3.5.2).
 5. Valid means status Accepted or ConcurrentTx (3.5.2 maps both to "valid"), and an
    expiryDate in the future: an entry whose expiryDate has passed counts as Expired
    (3.5.1: "changed to expired"). From the CSMS, only Accepted (not expired) accepts.
 6. The cache takes every IdTagInfo the CSMS sends, whatever its status (so a blocked card
    stays blocked offline), unless the cache is disabled or the idTag is in the local
    list (3.5.1/3.5.2: the list is never overwritten, the cache never shadows it).
 7. A StartTransaction.conf that is not Accepted stops the transaction with reason
    DeAuthorized if StopTransactionOnInvalidId, else only stops the energy (the
    transaction stays open until it ends in another way). MaxEnergyOnInvalidId is not
    supported.
 8. A card stops a running transaction locally if it is the tag that started it, or if
    both have the same known parentIdTag (idTags are CiString20: case-insensitive).

idTags are checked (1-20 printable ASCII characters); a bad one raises ValueError.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.errors import PeerError
from hw.capabilities import LedColour, LedPattern

ID_TAG_MAX_LENGTH = 20  # OCPP 1.6 IdToken = CiString20Type
# Manual ch. 7: "red / white: card not authorised" (hw.capabilities.LedPatterns lacks it).
CARD_NOT_AUTHORISED_LED = LedPattern(colours=(LedColour.RED, LedColour.WHITE))


def check_id_tag(id_tag: str, *, what: str = "idTag") -> str:
    """Return `id_tag` if it is a valid OCPP 1.6 IdToken (1-20 printable ASCII
    characters); ValueError naming `what` otherwise."""
    if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= ID_TAG_MAX_LENGTH:
        raise ValueError(f"{what} must be 1-{ID_TAG_MAX_LENGTH} characters, got {id_tag!r}")
    if not all(" " <= ch <= "~" for ch in id_tag):
        raise ValueError(f"{what} must be printable ASCII, got {id_tag!r}")
    return id_tag


def same_id_tag(a: str, b: str) -> bool:
    """idTags compare case-insensitively (CiString20Type)."""
    return a.casefold() == b.casefold()


def _check_aware(when: datetime, what: str) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got {when!r}")


class AuthMode(enum.Enum):
    """The manual's authorisation modes (6.5)."""

    NONE = "none"
    LOCAL_LIST = "local_list"
    CSMS = "csms"


class AuthorizationStatus(enum.Enum):
    """OCPP 1.6 AuthorizationStatus."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


_LOCALLY_VALID = frozenset({AuthorizationStatus.ACCEPTED, AuthorizationStatus.CONCURRENT_TX})


@dataclass(frozen=True, slots=True, kw_only=True)
class IdTagInfo:
    """OCPP 1.6 IdTagInfo: status, optional expiry (aware datetime) and parent idTag."""

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, AuthorizationStatus):
            raise ValueError(f"status must be an AuthorizationStatus, got {self.status!r}")
        if self.expiry_date is not None:
            _check_aware(self.expiry_date, "expiryDate")
        if self.parent_id_tag is not None:
            check_id_tag(self.parent_id_tag, what="parentIdTag")

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON object of OCPP 1.6 (expiryDate in UTC with 'Z')."""
        out: dict[str, Any] = {"status": self.status.value}
        if self.expiry_date is not None:
            out["expiryDate"] = iso_utc(self.expiry_date)
        if self.parent_id_tag is not None:
            out["parentIdTag"] = self.parent_id_tag
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, peer: str = "CSMS") -> IdTagInfo:
        """Parse an idTagInfo object received from `peer`; PeerError if it is malformed."""
        try:
            status = AuthorizationStatus(data["status"])
            raw_expiry = data.get("expiryDate")
            expiry = None if raw_expiry is None else parse_iso(str(raw_expiry))
            parent = data.get("parentIdTag")
            return cls(status=status, expiry_date=expiry,
                       parent_id_tag=None if parent is None else str(parent))
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerError(peer=peer, problem=f"bad idTagInfo {dict(data)!r}: {exc}") from exc


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with 'Z' (seconds, or milliseconds when there is a fraction)."""
    _check_aware(when, "timestamp")
    utc = when.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "milliseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_iso(text: str) -> datetime:
    """Parse an OCPP date-time; ValueError if it is not ISO 8601 with a zone."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    _check_aware(when, "date-time")
    return when


def effective_status(info: IdTagInfo, now: datetime) -> AuthorizationStatus:
    """Rule 5: the status of a stored entry at `now` (an expired entry is EXPIRED)."""
    if info.expiry_date is not None and info.expiry_date <= now:
        return AuthorizationStatus.EXPIRED
    return info.status


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """The mode and the OCPP 1.6 configuration keys that decide authorisation.

    Defaults are team choices where OCPP 1.6 sets none: use the list and cache offline,
    ask the CSMS when online, refuse unknown cards offline, stop on an invalid id.
    """

    mode: AuthMode
    free_id_tag: str = ""  # mode NONE: the idTag of plug-in transactions
    local_auth_list_enabled: bool = True  # LocalAuthListEnabled
    local_authorize_offline: bool = True  # LocalAuthorizeOffline
    local_pre_authorize: bool = False  # LocalPreAuthorize
    authorization_cache_enabled: bool = True  # AuthorizationCacheEnabled
    allow_offline_tx_for_unknown_id: bool = False  # AllowOfflineTxForUnknownId
    authorize_remote_tx_requests: bool = False  # AuthorizeRemoteTxRequests
    stop_transaction_on_invalid_id: bool = True  # StopTransactionOnInvalidId

    def __post_init__(self) -> None:
        if not isinstance(self.mode, AuthMode):
            raise ValueError(f"mode must be an AuthMode, got {self.mode!r}")
        if self.mode is AuthMode.NONE:
            check_id_tag(self.free_id_tag, what="free_id_tag (needed by mode NONE)")
        elif self.free_id_tag:
            check_id_tag(self.free_id_tag, what="free_id_tag")


class Presentation(enum.Enum):
    """How an idTag arrived."""

    RFID = "rfid"  # a card at the reader
    REMOTE = "remote"  # RemoteStartTransaction.req


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # start (or continue) now
    ASK_CSMS = "ask_csms"  # send Authorize.req and decide on its answer
    REJECTED = "rejected"


class Source(enum.Enum):
    """What decided."""

    FREE = "free"  # mode NONE
    LOCAL_LIST = "local_list"
    CACHE = "cache"
    CSMS = "csms"  # an Authorize.conf, or the CSMS's own remote start
    UNKNOWN_OFFLINE = "unknown_offline"  # AllowOfflineTxForUnknownId
    NO_AUTHORITY = "no_authority"  # unknown tag, or offline with local use off: none could accept


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthDecision:
    """The answer for one idTag. `status` is ACCEPTED when accepted, the refusing status
    when rejected (OCPP has none for "offline, unknown": Invalid), None when asking.
    `led` is the pattern to show now (None: leave the LED to the connector machine)."""

    outcome: Outcome
    id_tag: str
    source: Source
    status: AuthorizationStatus | None
    parent_id_tag: str | None = None
    led: LedPattern | None = None
    why: str = ""


def _accept(id_tag: str, source: Source, why: str, parent: str | None = None) -> AuthDecision:
    return AuthDecision(outcome=Outcome.ACCEPTED, id_tag=id_tag, source=source,
                        status=AuthorizationStatus.ACCEPTED, parent_id_tag=parent, why=why)


def _reject(id_tag: str, source: Source, status: AuthorizationStatus, why: str,
            via: Presentation) -> AuthDecision:
    led = CARD_NOT_AUTHORISED_LED if via is Presentation.RFID else None
    return AuthDecision(outcome=Outcome.REJECTED, id_tag=id_tag, source=source, status=status,
                        led=led, why=why)


def _ask(id_tag: str, why: str) -> AuthDecision:
    return AuthDecision(outcome=Outcome.ASK_CSMS, id_tag=id_tag, source=Source.CSMS,
                        status=None, why=why)


def plug_in_id_tag(settings: AuthSettings) -> str | None:
    """Rule 1: the idTag a plug-in alone starts a transaction with (mode NONE), else None."""
    return settings.free_id_tag if settings.mode is AuthMode.NONE else None


def _local_hit(settings: AuthSettings, list_entry: IdTagInfo | None,
               cache_entry: IdTagInfo | None) -> tuple[Source, IdTagInfo] | None:
    """Rule 4: the entry that counts, list first."""
    if settings.local_auth_list_enabled and list_entry is not None:
        return Source.LOCAL_LIST, list_entry
    if settings.authorization_cache_enabled and cache_entry is not None:
        return Source.CACHE, cache_entry
    return None


def authorise(id_tag: str, *, via: Presentation, settings: AuthSettings, online: bool,
              now: datetime, list_entry: IdTagInfo | None,
              cache_entry: IdTagInfo | None) -> AuthDecision:
    """Rules 1-5: what to do with `id_tag` presented `via` a card or a remote start.

    `list_entry` / `cache_entry`: the tag's local list and cache entries (None when
    absent); `online`: the CSMS is connected now. ValueError for a malformed idTag or a
    naive `now`.
    """
    check_id_tag(id_tag)
    _check_aware(now, "now")
    if settings.mode is AuthMode.NONE:
        return _accept(id_tag, Source.FREE, "no authorisation configured (manual 6.5)")
    if settings.mode is AuthMode.LOCAL_LIST:
        if via is Presentation.REMOTE:
            return _accept(id_tag, Source.CSMS, "remote start: the CSMS chose the tag")
        if list_entry is None:
            return _reject(id_tag, Source.NO_AUTHORITY, AuthorizationStatus.INVALID,
                           "not on the local list", via)
        status = effective_status(list_entry, now)
        if status in _LOCALLY_VALID:
            return _accept(id_tag, Source.LOCAL_LIST, "on the local list",
                           list_entry.parent_id_tag)
        return _reject(id_tag, Source.LOCAL_LIST, status, f"local list says {status.value}", via)

    if via is Presentation.REMOTE and not settings.authorize_remote_tx_requests:
        return _accept(id_tag, Source.CSMS, "remote start, AuthorizeRemoteTxRequests off")
    hit = _local_hit(settings, list_entry, cache_entry)
    hit_status = None if hit is None else effective_status(hit[1], now)
    valid = hit_status in _LOCALLY_VALID
    if online:
        if hit is not None and valid and settings.local_pre_authorize:
            return _accept(id_tag, hit[0], f"LocalPreAuthorize: valid in {hit[0].value}",
                           hit[1].parent_id_tag)
        return _ask(id_tag, "online: the CSMS decides")
    if hit is not None and hit_status is not None and not valid:
        return _reject(id_tag, hit[0], hit_status,
                       f"offline, {hit[0].value} says {hit_status.value}", via)
    if hit is not None and settings.local_authorize_offline:
        return _accept(id_tag, hit[0], f"offline, LocalAuthorizeOffline: valid in "
                       f"{hit[0].value}", hit[1].parent_id_tag)
    if settings.allow_offline_tx_for_unknown_id:
        return _accept(id_tag, Source.UNKNOWN_OFFLINE, "offline, AllowOfflineTxForUnknownId")
    return _reject(id_tag, Source.NO_AUTHORITY, AuthorizationStatus.INVALID,
                   "offline and not authorised locally", via)


def on_authorize_conf(id_tag: str, info: IdTagInfo, *, now: datetime,
                      via: Presentation = Presentation.RFID) -> AuthDecision:
    """Rule 5 for the CSMS's answer: ACCEPTED only for Accepted and not expired at `now`;
    ConcurrentTx is a refusal here (the tag is busy elsewhere)."""
    check_id_tag(id_tag)
    _check_aware(now, "now")
    status = effective_status(info, now)
    if status is AuthorizationStatus.ACCEPTED:
        return _accept(id_tag, Source.CSMS, "Authorize.conf Accepted", info.parent_id_tag)
    return _reject(id_tag, Source.CSMS, status, f"Authorize.conf {status.value}", via)


class CacheAction(enum.Enum):
    PUT = "put"  # store `info` for the tag (insert or replace)
    SKIP = "skip"  # leave the cache alone


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheUpdate:
    action: CacheAction
    id_tag: str
    info: IdTagInfo
    why: str


def on_id_tag_info(id_tag: str, info: IdTagInfo, *, settings: AuthSettings,
                   in_local_list: bool) -> CacheUpdate:
    """Rule 6: whether an IdTagInfo received from the CSMS (in an Authorize,
    StartTransaction or StopTransaction .conf) goes into the cache."""
    check_id_tag(id_tag)
    if not settings.authorization_cache_enabled:
        return CacheUpdate(action=CacheAction.SKIP, id_tag=id_tag, info=info,
                           why="AuthorizationCacheEnabled is off")
    if in_local_list and settings.local_auth_list_enabled:
        return CacheUpdate(action=CacheAction.SKIP, id_tag=id_tag, info=info,
                           why="the tag is on the local list, which takes precedence")
    return CacheUpdate(action=CacheAction.PUT, id_tag=id_tag, info=info,
                       why=f"CSMS said {info.status.value}")


class StartConfAction(enum.Enum):
    CONTINUE = "continue"
    STOP_TRANSACTION = "stop_transaction"  # stop it with reason DeAuthorized
    SUSPEND_ENERGY = "suspend_energy"  # withdraw the authorisation's energy, keep it open


@dataclass(frozen=True, slots=True, kw_only=True)
class StartConfDecision:
    action: StartConfAction
    status: AuthorizationStatus
    why: str


def on_start_transaction_conf(info: IdTagInfo, *, settings: AuthSettings,
                              now: datetime) -> StartConfDecision:
    """Rule 7: what a StartTransaction.conf's idTagInfo means for the running transaction
    (STOP_TRANSACTION -> the shell stops it with StopReason.DE_AUTHORIZED)."""
    _check_aware(now, "now")
    status = effective_status(info, now)
    if status is AuthorizationStatus.ACCEPTED:
        return StartConfDecision(action=StartConfAction.CONTINUE, status=status,
                                 why="StartTransaction.conf Accepted")
    if settings.stop_transaction_on_invalid_id:
        return StartConfDecision(action=StartConfAction.STOP_TRANSACTION, status=status,
                                 why=f"{status.value} and StopTransactionOnInvalidId")
    return StartConfDecision(action=StartConfAction.SUSPEND_ENERGY, status=status,
                             why=f"{status.value}, StopTransactionOnInvalidId off: energy "
                             "stops, the transaction stays open")


def may_stop_locally(presented_id_tag: str, *, tx_id_tag: str,
                     presented_parent_id_tag: str | None = None,
                     tx_parent_id_tag: str | None = None) -> bool:
    """Rule 8: True if this card may stop the transaction started by `tx_id_tag` without
    asking the CSMS (the same tag, or the same known parent)."""
    check_id_tag(presented_id_tag)
    if same_id_tag(presented_id_tag, tx_id_tag):
        return True
    return (presented_parent_id_tag is not None and tx_parent_id_tag is not None
            and same_id_tag(presented_parent_id_tag, tx_parent_id_tag))
