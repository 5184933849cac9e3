"""The master's config: one TOML file, read once at start into a frozen, validated object.

Every bad value raises `ConfigError` naming the file, the dotted key and what is allowed;
unknown keys are refused too (a typo must not silently fall back to a default). The
allocation settings end up in a `master.allocation.GroupConfig`, whose own checks are the
single source of the ranges of its fields; their messages are re-labelled with the TOML
key. Relative paths are relative to the config file's folder.

    [master]
    id = "garage-master"          # default: the host name
    listen = "0.0.0.0:50051"      # gRPC address; port 0 = any free port (tests)
    state_db = "/var/lib/io7/master.sqlite3"
    cycle_ms = 1000               # control cycle (architecture: 1 s)
    lease_cycles = 3              # Limits stay valid this many cycles

    [group]                       # manual 6.4.2
    name = "garage"
    phases = ["L1", "L2", "L3"]   # scenario C: one phase, e.g. ["L2"]
    mode = "dynamic"              # static | dynamic
    limit_a = 100                 # Total Group Limit (static) / Site Limit (dynamic), per phase
    fallback_limit_a = 40         # dynamic only, required: shared while the CT kit is silent
    ct_placement = "grid"         # grid | other_loads
    margin_a = 2.0
    offline_strategy = "maximise" # zero | minimise | maximise
    closed = true                 # refuse chargers nobody admitted (io7ctl admit ID);
                                  # default true with TLS, false with plaintext
    local_controller = "io7-01"   # its ChargePointMaxProfile bounds the group (optional)

    [ems]                         # energy manager over Modbus TCP (master/externalconfig.py)
    enabled = false

    [tls]                         # required: dir (+ crl) or plaintext = true
    dir = "/etc/io7/tls"          # (master/tlsconfig.py)

    [group.tuning]                # optional; GroupConfig field names and defaults
    ramp_up_a = 8.0

    [priorities]                  # optional: class 0-9 per charger or "charger/connector"
    "io7-01" = 2                  #   (master/priorityconfig.py)

    [ct]                          # the Sense CT kit, Modbus RTU (or TCP via a gateway)
    enabled = true
    rated_a = 100                 # every clamp's rated value (manual 6.3)
    reversed = [2]                # clamps mounted with the arrow towards the grid
    address = 1                   # Modbus address of the kit
    profile = "ctkit"
    timeout_s = 0.5               # per read, retry included (architecture: <= 0.5 s)
    retries = 1
    stale_after_s = 2.5           # no increases on an older reading
    lost_after_s = 10.0           # fall back to fallback_limit_a
    frozen_after_s = 60.0         # identical readings this long while the chargers' draw
    frozen_draw_change_a = 3.0    #   moved more than this (CT on the grid): frozen = lost
    [ct.clamps]                   # clamp number -> site phase. Default: scenario B as here;
    1 = "L1"                      # scenario C (one phase): 1 = the group's phase
    2 = "L2"
    3 = "L3"
    [ct.serial]                   # or [ct.tcp] host = "10.0.0.5", port = 502
    port = "/dev/ttyUSB0"
    baudrate = 9600
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from hw.capabilities import ClampReading
from hw.errors import DeviceConfigError
from hw.modbus.ctkit import ClampConfig, CtKitConfig
from hw.modbus.profiles import CT_KIT_PROFILES, ct_kit_profile
from hw.modbus.transport import (
    MAX_RETRIES,
    STANDARD_BAUD_RATES,
    BusSettings,
    SerialSettings,
    TcpSettings,
)
from hw.tomltable import TomlTable
from master.allocation import (
    CtPlacement,
    GroupConfig,
    InfeasibleGroupError,
    InvalidInputError,
    Mode,
    OfflineStrategy,
    Phase,
    Snapshot,
)
from master.ctwatch import DEFAULT_FROZEN_AFTER_S, DEFAULT_MIN_DRAW_CHANGE_A, FreezeSettings
from master.errors import ConfigError
from master.externalconfig import EmsSettings, read_ems, read_local_controller
from master.grouplimit import with_limit
from master.membership import Member
from master.priorityconfig import read_priorities
from master.tlsconfig import TlsSettings, read_tls

DEFAULT_LISTEN = "0.0.0.0:50051"
DEFAULT_STATE_DB = Path("/var/lib/io7/master.sqlite3")
DEFAULT_CYCLE_MS = 1000  # architecture.md, time and rates: 1 s cycle
DEFAULT_LEASE_CYCLES = 3  # architecture.md: lease = 3 cycles
CYCLE_MS_RANGE = (100, 10_000)  # faster floods the LAN; slower cannot follow a CT
LEASE_CYCLES_RANGE = (2, 30)  # >= 2: one lost Limits message must not drop an agent

# GroupConfig fields settable in [group.tuning].
TUNING_FIELDS = (
    "rotation_period_s", "min_run_s", "min_pause_s", "resume_hysteresis_a", "ramp_up_a",
    "settle_s", "demand_cap_after_s", "demand_cap_threshold_a", "demand_cap_headroom_a",
    "demand_probe_every_s", "share_by_power", "priority_max_starve_s",
)
# GroupConfig field -> the TOML key it comes from, to label GroupConfig's own messages.
_FIELD_KEYS = {
    "limit_a": "group.limit_a",
    "fallback_limit_a": "group.fallback_limit_a",
    "margin_a": "group.margin_a",
    "lease_s": "master.lease_cycles",
    "ct_stale_after_s": "ct.stale_after_s",
    "ct_timeout_s": "ct.lost_after_s",
    **{name: f"group.tuning.{name}" for name in TUNING_FIELDS},
}

E = TypeVar("E", bound=Enum)


class _Table(TomlTable):
    """A table of master.toml (hw.tomltable), plus the master's own getters."""

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(file=self.file, key=self.key(name), problem=problem)

    def integer(self, name: str, default: Any, lo: int, hi: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be a whole number, not {value!r}")
        if not lo <= value <= hi:
            raise self.error(name, f"{value} is outside the allowed range [{lo}, {hi}]")
        return value

    def choice(self, name: str, kind: type[E], default: E) -> E:
        value = self.raw(name, default.value)
        allowed = [m.value for m in kind]
        if value not in allowed:
            raise self.error(name, f"{value!r} is not one of {allowed}")
        return kind(value)

    def phase(self, name: str, value: Any) -> Phase:
        if not isinstance(value, str) or value not in Phase.__members__:
            raise self.error(name, f"{value!r} is not a phase: one of L1, L2, L3")
        return Phase[value]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClampSetting:
    """One enabled clamp of the Sense CT kit and the site phase it is clamped around."""

    clamp: int
    phase: Phase
    reversed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CtSettings:
    """The Sense CT kit: clamps, rating, Modbus bus. Only present when enabled."""

    clamps: tuple[ClampSetting, ...]
    rated_a: float
    address: int
    profile: str
    bus: BusSettings
    freeze: FreezeSettings = field(default_factory=FreezeSettings)  # frozen kit: ctwatch

    def kit_config(self) -> CtKitConfig:
        """The driver's config (`hw.modbus.ctkit.ModbusCtKit`)."""
        return CtKitConfig(
            clamps=tuple(ClampConfig(clamp=c.clamp, rated_a=self.rated_a, reversed=c.reversed)
                         for c in self.clamps),
            profile=ct_kit_profile(self.profile), device_id=self.address,
        )

    def site_currents(self, readings: Iterable[ClampReading]) -> dict[Phase, float]:
        """Clamp readings (signed, A) keyed by the site phase each clamp measures."""
        phase_of = {c.clamp: c.phase for c in self.clamps}
        return {phase_of[r.clamp]: r.current_a for r in readings if r.clamp in phase_of}


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterConfig:
    """Everything the master process needs, validated. Build with `load_master_config`."""

    file: Path
    master_id: str
    listen: str
    state_db: Path
    group: GroupConfig
    closed: bool = False
    cycle_ms: int = DEFAULT_CYCLE_MS
    lease_cycles: int = DEFAULT_LEASE_CYCLES
    ct: CtSettings | None = None
    tls: TlsSettings | None = None  # None: plaintext ([tls] plaintext = true)
    local_controller: str | None = None  # master.externalconfig
    ems: EmsSettings | None = None  # None: no energy manager server

    @property
    def cycle_s(self) -> float:
        return self.cycle_ms / 1000.0

    @property
    def lease_ms(self) -> int:
        return self.cycle_ms * self.lease_cycles

    def group_config(self, limit_override: float | None = None) -> GroupConfig:
        """The group's allocation settings, with the per-phase limit replaced by
        `limit_override` (SetGroupLimit) when given. See `with_limit`."""
        if limit_override is None:
            return self.group
        return with_limit(self.group, limit_override, self.group.fallback_limit_a)

    def check_members(self, members: Iterable[Member],
                      limit_override: float | None = None) -> None:
        """Check that the group can honour these members (call it at join time with the
        members plus the newcomer): their wiring lies within the group's phases, and
        with Minimise every connector fits at 6 A (`master.allocation.check_minimise`).

        Raises ConfigError (key group.phases or group.offline_strategy) saying what to
        change; the service refuses the joining charger with its message.
        """
        group = self.group_config(limit_override)
        try:
            Snapshot(now_s=0.0, group=group,
                     chargers=tuple(m.charger_input() for m in members))
        except InfeasibleGroupError as exc:
            raise ConfigError(file=self.file, key="group.offline_strategy",
                              problem=str(exc)) from exc
        except InvalidInputError as exc:
            raise ConfigError(file=self.file, key="group.phases", problem=str(exc)) from exc


def load_master_config(path: Path) -> MasterConfig:
    """Read and validate the master's config file. Raises ConfigError."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(file=path, key="", problem=f"cannot read the config file "
                          f"({exc.strerror or exc}): check the path given to the master") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=path, key="", problem=f"not valid TOML: {exc}") from exc
    return _parse(path, data)


def _parse(path: Path, data: Mapping[str, Any], *, kit_elsewhere: bool = False) -> MasterConfig:
    """`kit_elsewhere` (io7d): a dynamic group whose CT kit is wired to another member;
    without [ct] this master candidate runs in CT-lost mode (the fallback limit)."""
    root = _Table(path, "", data)
    master = root.table("master") or _Table(path, "master", {})
    group_t = root.table("group")
    if group_t is None:
        raise root.error("group", "is required: the [group] table (name, limit_a, ...)")
    ct_t = root.table("ct") or _Table(path, "ct", {})
    tls = read_tls(root.table("tls"), root)
    ems = read_ems(root.table("ems"))
    priorities = read_priorities(root.table("priorities"))
    root.done()

    master_id = master.string("id", socket.gethostname() or "io7-master")
    listen = _listen(master, master.string("listen", DEFAULT_LISTEN))
    state_db = Path(master.string("state_db", str(DEFAULT_STATE_DB)))
    if not state_db.is_absolute():
        state_db = path.parent / state_db
    cycle_ms = master.integer("cycle_ms", DEFAULT_CYCLE_MS, *CYCLE_MS_RANGE)
    lease_cycles = master.integer("lease_cycles", DEFAULT_LEASE_CYCLES, *LEASE_CYCLES_RANGE)
    master.done()

    name = group_t.string("name")
    phases_raw = group_t.raw("phases", ["L1", "L2", "L3"])
    if not isinstance(phases_raw, list) or not 1 <= len(phases_raw) <= 3:
        raise group_t.error("phases", f"must list 1 to 3 of L1, L2, L3, not {phases_raw!r}")
    phases = tuple(group_t.phase("phases", p) for p in phases_raw)
    if len(set(phases)) != len(phases):
        raise group_t.error("phases", f"{phases_raw} names a phase twice")
    mode = group_t.choice("mode", Mode, Mode.STATIC)
    kw: dict[str, Any] = {
        "name": name, "phases": phases, "mode": mode,
        "limit_a": group_t.number("limit_a"),
        "ct_placement": group_t.choice("ct_placement", CtPlacement, CtPlacement.GRID),
        "offline_strategy": group_t.choice("offline_strategy", OfflineStrategy,
                                           OfflineStrategy.MAXIMISE),
        "lease_s": cycle_ms * lease_cycles / 1000.0,
        "priorities": priorities,
    }
    fallback = group_t.raw("fallback_limit_a", None)
    if fallback is None and mode is Mode.DYNAMIC:
        raise group_t.error("fallback_limit_a", "is required in dynamic mode: the per-phase "
                            "current the group may share safely while the CT kit is silent")
    if fallback is not None:
        kw["fallback_limit_a"] = group_t.number("fallback_limit_a")
    if "margin_a" in group_t.data:
        kw["margin_a"] = group_t.number("margin_a")
    closed = group_t.boolean("closed", tls is not None)  # closed by default with TLS
    local_controller = read_local_controller(group_t)
    tuning = group_t.table("tuning")
    if tuning is not None:
        for field_name in TUNING_FIELDS:
            if field_name in tuning.data:
                kw[field_name] = tuning.number(field_name)
        tuning.done()
    group_t.done()

    ct = _ct_settings(ct_t, phases, Mode.STATIC if kit_elsewhere else mode, kw)
    ct_t.done()
    return MasterConfig(file=path, master_id=master_id, listen=listen, state_db=state_db,
                        group=_group_config(path, kw), closed=closed, cycle_ms=cycle_ms,
                        lease_cycles=lease_cycles, ct=ct, tls=tls,
                        local_controller=local_controller, ems=ems)


def _group_config(path: Path, kw: dict[str, Any]) -> GroupConfig:
    """Build the GroupConfig, labelling its range errors with the TOML key."""
    try:
        return GroupConfig(**kw)
    except InvalidInputError as exc:
        text = str(exc)
        key = next((k for f, k in _FIELD_KEYS.items()
                    if text.startswith((f"{f}=", f"{f} "))), "group")
        raise ConfigError(file=path, key=key, problem=text) from exc


def _listen(t: _Table, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise t.error("listen", f"{value!r} must be host:port with a port in 0..65535 "
                      "(e.g. \"0.0.0.0:50051\", \"[::]:50051\")")
    return value


def _ct_settings(t: _Table, phases: tuple[Phase, ...], mode: Mode,
                 kw: dict[str, Any]) -> CtSettings | None:
    if "stale_after_s" in t.data:
        kw["ct_stale_after_s"] = t.number("stale_after_s")
    if "lost_after_s" in t.data:
        kw["ct_timeout_s"] = t.number("lost_after_s")
    enabled = t.boolean("enabled", False)
    if not enabled:
        if mode is Mode.DYNAMIC:
            raise t.error("enabled", "dynamic mode balances on the Sense CT kit: set "
                          "ct.enabled = true, or group.mode = \"static\"")
        # The remaining keys of a disabled kit are not read; do not call them unknown.
        t.used.update(t.data)
        return None
    rated_a = t.number("rated_a", lo=1.0, hi=2000.0)  # hw.modbus.ctkit.MAX_RATED_A
    address = t.integer("address", 1, 1, 247)  # Modbus unicast addresses
    profile = t.string("profile", "ctkit")
    if profile not in CT_KIT_PROFILES:
        raise t.error("profile", f"{profile!r} is not one of {sorted(CT_KIT_PROFILES)}")
    reversed_raw = t.raw("reversed", [])
    if not isinstance(reversed_raw, list) or any(
            isinstance(n, bool) or n not in (1, 2, 3) for n in reversed_raw):
        raise t.error("reversed", f"must list clamp numbers 1-3, not {reversed_raw!r}")

    clamps_t = t.table("clamps")
    if clamps_t is None:  # scenario B: clamp n on L(n); scenario C: clamp 1 on the phase
        by_clamp = {n + 1: p for n, p in enumerate(phases)}
    else:
        by_clamp = {}
        for key, value in clamps_t.data.items():
            if key not in ("1", "2", "3"):
                raise clamps_t.error(key, "the Sense CT kit has clamps 1, 2 and 3")
            by_clamp[int(key)] = clamps_t.phase(key, value)
            clamps_t.used.add(key)
            if by_clamp[int(key)] not in phases:
                raise clamps_t.error(key, f"{value} is not one of the group's phases "
                                     f"{[p.name for p in phases]}")
        if not by_clamp:
            raise t.error("clamps", "enable at least one clamp, e.g. 1 = \"L1\"")
    seen = list(by_clamp.values())
    if len(set(seen)) != len(seen):
        raise t.error("clamps", "two clamps on one phase")
    missing = [p.name for p in phases if p not in seen]
    if missing:
        raise t.error("clamps", f"no clamp measures {missing}: every phase of the group "
                      "needs one (scenario B: 1 = \"L1\", 2 = \"L2\", 3 = \"L3\"; "
                      "scenario C: 1 = the group's phase)")
    unclamped = [n for n in reversed_raw if n not in by_clamp]
    if unclamped:
        raise t.error("reversed", f"clamps {unclamped} are not enabled in ct.clamps")
    clamps = tuple(ClampSetting(clamp=n, phase=by_clamp[n], reversed=n in reversed_raw)
                   for n in sorted(by_clamp))
    bus = _bus(t)
    # A few cycles at least, at most an hour; a step below meter noise, at most one 32 A car.
    freeze = FreezeSettings(
        frozen_after_s=t.number("frozen_after_s", DEFAULT_FROZEN_AFTER_S, lo=10.0, hi=3600.0),
        min_draw_change_a=t.number("frozen_draw_change_a", DEFAULT_MIN_DRAW_CHANGE_A,
                                   lo=1.0, hi=32.0))
    settings = CtSettings(clamps=clamps, rated_a=rated_a, address=address, profile=profile,
                          bus=bus, freeze=freeze)
    try:
        settings.kit_config()
    except DeviceConfigError as exc:
        raise t.error("clamps", exc.reason) from exc
    return settings


def _bus(t: _Table) -> BusSettings:
    serial_t, tcp_t = t.table("serial"), t.table("tcp")
    if (serial_t is None) == (tcp_t is None):
        raise t.error("serial", "give exactly one bus: [ct.serial] port = \"/dev/ttyUSB0\" "
                      "or [ct.tcp] host = \"10.0.0.5\"")
    timeout_s = t.number("timeout_s", 0.5, lo=0.01, hi=0.5)  # architecture: <= 0.5 s
    retries = t.integer("retries", MAX_RETRIES, 0, MAX_RETRIES)
    endpoint: SerialSettings | TcpSettings
    try:
        if serial_t is not None:
            table = serial_t
            parity = serial_t.string("parity", "N")
            if parity not in ("N", "E", "O"):
                raise serial_t.error("parity", f"{parity!r} is not one of N, E, O")
            baudrate = serial_t.integer("baudrate", 9600, 1, max(STANDARD_BAUD_RATES))
            if baudrate not in STANDARD_BAUD_RATES:
                raise serial_t.error("baudrate", f"{baudrate} is not one of {STANDARD_BAUD_RATES}")
            endpoint = SerialSettings(
                port=serial_t.string("port"),
                baudrate=baudrate,
                parity=cast(Literal["N", "E", "O"], parity),
                stopbits=serial_t.integer("stopbits", 1, 1, 2),
                bytesize=serial_t.integer("bytesize", 8, 7, 8),
            )
        else:
            assert tcp_t is not None
            table = tcp_t
            endpoint = TcpSettings(host=tcp_t.string("host"),
                                   port=tcp_t.integer("port", 502, 1, 65535))
    except DeviceConfigError as exc:
        raise ConfigError(file=t.file, key=table.prefix, problem=exc.reason) from exc
    table.done()
    return BusSettings(endpoint=endpoint, timeout_s=timeout_s, retries=retries)
