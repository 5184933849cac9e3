"""The charge point's persisted settings: its OCPP 1.6 configuration keys (availability:
agent.ocpp.availability).

They live in `<state_dir>/ocpp.db` (WAL, synchronous=FULL: a setting the CSMS was told is
changed survives a power cut), next to the other agent.ocpp tables.

Rules:
 1. `KEYS` lists every standard key this project supports (OCPP 1.6 ch. 9, security
    whitepaper ed. 2 for AuthorizationKey, SecurityProfile and the certificate store)
    with its type, range, read-only flag and default. A key not listed is unknown:
    ChangeConfiguration answers NotSupported, GetConfiguration lists it under unknownKey.
 2. Keys are CiString50 (case-insensitive); answers use the spelling of `KEYS`.
 3. A new value is checked against its spec before anything is stored: a read-only key or
    a bad value is Rejected and changes nothing. Values are stored normalised (booleans
    "true"/"false", integers without sign or zeros).
 4. Only changed values are stored (table `configuration`); a key never changed has the
    value the agent gives it (`given`, e.g. NumberOfConnectors) or its default.
 5. AuthorizationKey is write-only: stored, used by the connection, never returned (its
    KeyValue has no value).
 6. Listeners hear of every accepted change after it is committed (the shell re-arms its
    heartbeat on a new HeartbeatInterval).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import structlog

from agent.ocpp.certstore import MAX_CHAIN_CHARS, MAX_ROOTS
from agent.ocpp.durable import connect_durable
from agent.ocpp.keyvalues import HOW_TO_FIX, rotation_problem, weak_key_problem

DB_FILE = "ocpp.db"
log = structlog.get_logger("agent.ocpp.configkeys")

# The io7's measurands (product.md ch. 2: per-socket meter with V, A, W, Wh and Hz; the
# pilot gives the offer). OCPP 1.6 section 7.31 names.
MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
              "Current.Offered", "Voltage", "Frequency")
# = agent.ocpp.metervalues.DEFAULT_MEASURANDS
DEFAULT_MEASURANDS = ("Energy.Active.Import.Register,Current.Import,Current.Offered,"
                      "Power.Active.Import,Voltage")
# Feature profiles in place (OCPP 1.6 section 3.1); Reservation and FirmwareManagement
# are not built.
FEATURE_PROFILES = ("Core", "LocalAuthListManagement", "SmartCharging", "RemoteTrigger")
MAX_CONNECTORS = 2  # io7 Double: sockets 1 and 2 (0 = the charger's grid connection)
DAY_S = 86_400


class Kind(enum.Enum):
    INT = "int"
    BOOL = "bool"
    CSL = "csl"  # comma separated list of `members`
    HEX = "hex"  # hexBinary of `lo`-`hi` bytes


class Effect(enum.Enum):
    """When a change takes effect."""

    NOW = "now"
    RECONNECT = "reconnect"  # the shell reconnects once the answer is out
    REBOOT = "reboot"  # ChangeConfiguration answers RebootRequired


class InvalidValueError(ValueError):
    """A value that does not fit its key's spec; the message says what is allowed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """One configuration key. `lo`/`hi`: the integer range (HEX: bytes); `members`: what
    a CSL may list (empty: anything); `max_items`: at most this many in a CSL (None: no
    limit); `vet`: what else is wrong with a parsed value (agent.ocpp.keyvalues)."""

    name: str
    kind: Kind
    default: str | None
    readonly: bool = False
    write_only: bool = False
    lo: int = 0
    hi: int = 0
    members: tuple[str, ...] = ()
    max_items: int | None = None
    effect: Effect = Effect.NOW
    vet: Callable[[str], str | None] | None = None

    def __post_init__(self) -> None:
        if self.readonly and self.write_only:
            raise ValueError(f"{self.name}: a key cannot be read-only and write-only")
        if self.kind in (Kind.INT, Kind.HEX) and self.lo > self.hi:
            raise ValueError(f"{self.name}: range {self.lo}-{self.hi} is empty")
        if self.default is not None:
            self.parse(self.default)

    def parse(self, value: str) -> str:
        """`value` normalised; InvalidValueError saying what is allowed."""
        clean = self._parse(value)
        problem = None if self.vet is None else self.vet(clean)
        if problem is not None:
            raise InvalidValueError(f"{self.name} {problem}")
        return clean

    def _parse(self, value: str) -> str:
        text = value.strip()
        if self.kind is Kind.INT:
            if not (text.isascii() and text.isdigit()) or not self.lo <= int(text) <= self.hi:
                raise InvalidValueError(f"{self.name} must be a whole number "
                                        f"{self.lo}-{self.hi}, not {value!r}")
            return str(int(text))
        if self.kind is Kind.BOOL:
            if text.lower() not in ("true", "false"):
                raise InvalidValueError(f"{self.name} must be true or false, not {value!r}")
            return text.lower()
        if self.kind is Kind.HEX:
            hex_ok = text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)
            if not hex_ok or len(text) % 2 or not self.lo <= len(text) // 2 <= self.hi:
                raise InvalidValueError(f"{self.name} must be {self.lo}-{self.hi} bytes "
                                        "written as hexadecimal")
            return text.lower()
        items = [i.strip() for i in text.split(",")] if text else []
        unknown = [i for i in items if self.members and i not in self.members]
        if unknown or len(set(items)) != len(items) or "" in items:
            raise InvalidValueError(f"{self.name}: list distinct items of "
                                    f"{list(self.members)}, not {value!r}")
        if self.max_items is not None and len(items) > self.max_items:
            raise InvalidValueError(f"{self.name}: at most {self.max_items} items")
        return ",".join(items)


def _int(name: str, default: int, lo: int, hi: int, *, readonly: bool = False,
         effect: Effect = Effect.NOW) -> KeySpec:
    return KeySpec(name=name, kind=Kind.INT, default=str(default), lo=lo, hi=hi,
                   readonly=readonly, effect=effect)


def _bool(name: str, default: bool) -> KeySpec:
    return KeySpec(name=name, kind=Kind.BOOL, default=str(default).lower())


def _csl(name: str, default: str, members: tuple[str, ...], *, readonly: bool = False,
         max_items: int | None = None, vet: Callable[[str], str | None] | None = None
         ) -> KeySpec:
    return KeySpec(name=name, kind=Kind.CSL, default=default, members=members,
                   readonly=readonly, max_items=max_items, vet=vet)


def _rotation(value: str) -> str | None:
    problem = rotation_problem(value, MAX_CONNECTORS)
    return None if problem is None else f": {problem}"


def _strong(value: str) -> str | None:
    problem = weak_key_problem(bytes.fromhex(value))
    return None if problem is None else f"{problem}: {HOW_TO_FIX}"


_SPECS = (
    # Core (OCPP 1.6 section 9.1). Intervals in s; 0 switches the feature off.
    _int("HeartbeatInterval", 300, 0, DAY_S),  # team default until the CSMS sets one
    _int("ConnectionTimeOut", 60, 0, 3600),
    _int("MeterValueSampleInterval", 60, 0, DAY_S),
    _int("ClockAlignedDataInterval", 0, 0, DAY_S),
    _csl("MeterValuesSampledData", DEFAULT_MEASURANDS, MEASURANDS, max_items=6),
    _csl("MeterValuesAlignedData", DEFAULT_MEASURANDS, MEASURANDS, max_items=6),
    _int("MeterValuesSampledDataMaxLength", 6, 6, 6, readonly=True),
    _int("MeterValuesAlignedDataMaxLength", 6, 6, 6, readonly=True),
    # StopTransaction.transactionData carries the energy register at Transaction.Begin
    # and .End only (agent.ocpp.transactions): no measurand can be added, MaxLength 0.
    _csl("StopTxnSampledData", "", MEASURANDS, max_items=0),
    _csl("StopTxnAlignedData", "", MEASURANDS, max_items=0),
    _int("StopTxnSampledDataMaxLength", 0, 0, 0, readonly=True),
    _int("StopTxnAlignedDataMaxLength", 0, 0, 0, readonly=True),
    # Reported to the CSMS (agent.ocpp.keyvalues rule 1); the agent's wiring in its
    # config file is what the allocation uses, a CSMS's change does not rewire it.
    _csl("ConnectorPhaseRotation", "", (), vet=_rotation),
    _int("ConnectorPhaseRotationMaxLength", MAX_CONNECTORS + 1, 0, MAX_CONNECTORS + 1,
         readonly=True),
    _bool("StopTransactionOnEVSideDisconnect", True),
    _bool("StopTransactionOnInvalidId", True),
    _bool("LocalAuthorizeOffline", True),
    _bool("LocalPreAuthorize", False),
    _bool("AuthorizationCacheEnabled", True),
    _bool("AllowOfflineTxForUnknownId", False),
    _bool("AuthorizeRemoteTxRequests", False),
    _int("ResetRetries", 1, 0, 10),
    _int("TransactionMessageAttempts", 3, 1, 100),
    _int("TransactionMessageRetryInterval", 60, 1, 3600),
    _bool("UnlockConnectorOnEVSideDisconnect", True),
    # websockets takes its ping interval when it connects: a soft Reset applies it.
    _int("WebSocketPingInterval", 60, 0, 3600, effect=Effect.REBOOT),
    _int("NumberOfConnectors", 2, 1, 2, readonly=True),  # io7 Double: two sockets
    _csl("SupportedFeatureProfiles", ",".join(FEATURE_PROFILES), (), readonly=True),
    _int("GetConfigurationMaxKeys", 50, 1, 1000, readonly=True),  # team choice
    # Local auth list (section 9.2) and smart charging (9.4): the limits the other
    # agent.ocpp parts were built with (store.OcppStore, profiles.MAX_*).
    _bool("LocalAuthListEnabled", True),
    _int("LocalAuthListMaxLength", 1000, 0, 100_000, readonly=True),
    _int("SendLocalListMaxLength", 100, 0, 100_000, readonly=True),
    _int("ChargeProfileMaxStackLevel", 8, 0, 100, readonly=True),
    # The pilot offers a current; schedules in W become A (agent.ocpp.profiles rule 6).
    _csl("ChargingScheduleAllowedChargingRateUnit", "Current,Power", ("Current", "Power"),
         readonly=True),
    _int("ChargingScheduleMaxPeriods", 24, 1, 1000, readonly=True),
    _int("MaxChargingProfilesInstalled", 10, 1, 1000, readonly=True),
    # Security whitepaper (ed. 4 A00.FR.205): the Basic auth password, 16-20 bytes sent
    # as hex; a guessable one is Rejected (keyvalues rule 2); the charge point
    # reconnects with a new one at once.
    KeySpec(name="AuthorizationKey", kind=Kind.HEX, default=None, write_only=True, lo=16,
            hi=20, effect=Effect.RECONNECT, vet=_strong),
    # Security whitepaper ed. 2: the profile in force (the agent gives the file's; a
    # change goes through agent.ocpp.security rule 3 first, and reconnects), and the
    # certificate store's limits (agent.ocpp.certstore).
    _int("SecurityProfile", 0, 0, 3, effect=Effect.RECONNECT),
    _int("CertificateSignedMaxChainSize", MAX_CHAIN_CHARS, 0, MAX_CHAIN_CHARS,
         readonly=True),
    _int("CertificateStoreMaxLength", MAX_ROOTS, 0, MAX_ROOTS, readonly=True),
)
KEYS: Mapping[str, KeySpec] = MappingProxyType({s.name.lower(): s for s in _SPECS})


def key_spec(key: str) -> KeySpec | None:
    """The spec of `key` (any case), None for a key this charge point does not know."""
    return KEYS.get(key.strip().lower())


def open_db(state_dir: Path) -> sqlite3.Connection:
    """The agent's OCPP database `<state_dir>/ocpp.db` (made if missing), WAL and
    synchronous=FULL. Raises OSError or sqlite3.Error when the folder is not writable."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return connect_durable(state_dir / DB_FILE, autocommit=False)


class ChangeStatus(enum.Enum):
    """ChangeConfiguration.conf status (values = OCPP 1.6 ConfigurationStatus)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeOutcome:
    status: ChangeStatus
    key: str  # the canonical spelling, or the key as given when unknown
    why: str = ""  # for the log when not accepted
    effect: Effect = Effect.NOW


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyReading:
    """One GetConfiguration.conf KeyValue."""

    key: str
    readonly: bool
    value: str | None


Listener = Callable[[str, str], None]  # (canonical key, new value)


class ConfigurationStore:
    """The configuration keys, read from and written to table `configuration`."""

    def __init__(self, db: sqlite3.Connection, *, given: Mapping[str, str] | None = None
                 ) -> None:
        """`given`: values the agent's own config fixes (read-only ones too).
        ValueError for an unknown key or a bad value there."""
        self.db = db
        self._given: dict[str, str] = {}
        for key, value in (given or {}).items():
            spec = key_spec(key)
            if spec is None:
                raise ValueError(f"{key} is not a configuration key")
            self._given[spec.name] = spec.parse(value)
        self._listeners: list[Listener] = []
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS configuration "
                       "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._stored: dict[str, str] = {}
        for key, value in db.execute("SELECT key, value FROM configuration"):
            spec = key_spec(key)
            try:
                if spec is None or spec.readonly:
                    raise InvalidValueError(f"{key} is not a writable key")
                self._stored[spec.name] = spec.parse(value)
            except InvalidValueError as err:  # a key this version dropped or narrowed
                log.warning("stored configuration value ignored", key=key, why=str(err))

    def give(self, key: str, value: str) -> None:
        """Like `given` at construction: the value `key` has until the CSMS changes it.
        ValueError for an unknown key or a bad value."""
        spec = key_spec(key)
        if spec is None:
            raise ValueError(f"{key} is not a configuration key")
        self._given[spec.name] = spec.parse(value)

    def value(self, key: str) -> str | None:
        """The key's value (write-only ones too: the shell needs them), None if unset.
        KeyError for an unknown key (a bug in the caller)."""
        spec = key_spec(key)
        if spec is None:
            raise KeyError(key)
        return self._stored.get(spec.name, self._given.get(spec.name, spec.default))

    def integer(self, key: str) -> int:
        value = self.value(key)
        return 0 if value is None else int(value)

    def boolean(self, key: str) -> bool:
        return self.value(key) == "true"

    def get(self, keys: Sequence[str] = ()) -> tuple[list[KeyReading], list[str]]:
        """GetConfiguration: the readings of `keys` (all keys when empty) and the keys
        this charge point does not know, as given."""
        wanted: Iterable[str] = keys or [s.name for s in _SPECS]
        known: list[KeyReading] = []
        unknown: list[str] = []
        for key in wanted:
            spec = key_spec(key)
            if spec is None:
                unknown.append(key)
                continue
            value = None if spec.write_only else self.value(spec.name)
            known.append(KeyReading(key=spec.name, readonly=spec.readonly, value=value))
        return known, unknown

    def change(self, key: str, value: str) -> ChangeOutcome:
        """ChangeConfiguration: check, store and tell the listeners. sqlite3.Error when the
        database cannot be written (nothing is changed then)."""
        spec = key_spec(key)
        if spec is None:
            return ChangeOutcome(status=ChangeStatus.NOT_SUPPORTED, key=key,
                                 why="unknown key")
        if spec.readonly:
            return ChangeOutcome(status=ChangeStatus.REJECTED, key=spec.name,
                                 why="read-only")
        try:
            clean = spec.parse(value)
        except InvalidValueError as err:
            return ChangeOutcome(status=ChangeStatus.REJECTED, key=spec.name, why=str(err))
        with self.db:
            self.db.execute("INSERT INTO configuration (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            (spec.name, clean))
        self._stored[spec.name] = clean
        for listener in list(self._listeners):
            listener(spec.name, clean)
        status = ChangeStatus.REBOOT_REQUIRED if spec.effect is Effect.REBOOT \
            else ChangeStatus.ACCEPTED
        return ChangeOutcome(status=status, key=spec.name, effect=spec.effect)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every accepted change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
