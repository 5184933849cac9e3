"""The agent's config: one TOML file, read once at start into a frozen, validated object.

Every bad value raises `ConfigError` naming the file, the dotted key and what is allowed;
unknown keys are refused too (a typo must not silently fall back to a default). Relative
paths are relative to the config file's folder. TOML has no null: a line that is not
wired is written "-".

    [charger]
    id = "io7-garage-01"          # required: letters, digits, . _ - (1-64)
    group = "garage"              # required with [master]: the master's [group] name;
                                  # agent-only mode: defaults to the charger id
    current_limit_a = 32          # required: Charger Current Limit, 6-63 A (manual 6.3)

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

    [master]                      # absent: agent-only mode (scenario A, manual 6.4.1)
    address = "10.0.0.10:50051"   # required: host:port of the group's master
    initial_failsafe_a = 0        # until the first Welcome: 0 or 6 A up to the charger limit
    max_failsafe_a = 6            # the most fail-safe current a master may set: 0 or 6 A up
                                  # to the charger limit; default 6 A (Minimise) or the
                                  # initial fail-safe when higher. More is refused (issue 10)
    min_lease_s = 1               # a master's lease must be 0.1-60 s, default 1 s ...
    max_lease_s = 10              # ... up to this, default 10 s; others are refused

    [agent_only]                  # optional, only without [master]: single-charger load
    site_limit_a = 25             # balancing (6.4.1); required: the main fuse, A per phase
    mode = "static"               # static | dynamic (dynamic needs [agent_only.ct])
    margin_a = 2.0                # dynamic: kept free below the site limit, default 2 A
    fallback_limit_a = 16         # dynamic, required: shared while the clamps are silent
    [agent_only.ct]               # External CT Clamps on connector #1 (manual 6.3)
    enabled = true
    type = "site"                 # the only type the io7 offers
    clamps = [1, 2, 3]            # clamp n measures site phase Ln; [1] on one phase
    rated_a = 100                 # the clamps' rated value, 1-2000 A
    reversed = []                 # clamps mounted with the arrow towards the grid
    profile = "ctkit"             # plus address, port / tcp, ... as for a meter

    [ocpp]                        # the back office (CSMS), OCPP 1.6J; absent: none
    enabled = true                # default false
    url = "wss://csms.example.com/ocpp"  # required: ws:// or wss://; OCPP-J appends the
                                  # charge point id to the path (--csms-url overrides)
    charge_point_id = "io7-garage-01"  # default: the [charger] id
    security_profile = 2          # 0 none | 1 HTTP Basic auth over ws:// | 2 Basic auth
                                  # over wss:// (OCPP 1.6 security whitepaper ed. 2)
    authorization_key = "..."     # profiles 1, 2: the Basic auth password, 16-40
                                  # printable ASCII characters (username = the id), random:
                                  # placeholders and guessable keys are refused
    ca_file = "csms-ca.pem"       # wss://: the CA that signed the CSMS's certificate;
                                  # default: the system's CAs
    serial_number = "..."         # optional: BootNotification chargePointSerialNumber
    auth_mode = "csms"            # none | local_list | csms (manual 6.5); default none
    free_id_tag = "io7-garage-01" # auth_mode none: the idTag of plug-in transactions,
                                  # 1-20 printable ASCII; default the first 20 characters
                                  # of charge_point_id
    local_list = ["04A1B2C3"]     # RFID whitelist (upper-case hex UIDs, 1-20 characters)
                                  # installed while the CSMS has never sent a local list
    [ocpp.uk_default]             # manual 6.6 UK default profile; absent: disabled
    enabled = false               # default false
    tz = "Europe/London"          # the no-charging periods' time zone
    no_charging_periods = [["08:00", "11:00"], ["16:00", "22:00"]]  # at most 2
    max_random_delay_s = 600      # 0-1800 s

    [board]
    kind = "sim"                  # the simulated board (default); real drivers add names
    [sim]
    seed = 1                      # optional: seeds the simulated EVs
    evs = "random"                # random (EVs come and go) | plugged (one EV per socket
                                  # from the start) | none
    [logging]
    level = "info"                # debug | info | warning | error
    [state]
    dir = "/var/lib/io7"          # SQLite store (systemd StateDirectory=io7)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from agent.bounds import MAX_LEASE_S, LinkBounds
from agent.errors import ConfigError
from agent.ocpp.auth import AuthMode, check_id_tag
from agent.ocpp.keyvalues import HOW_TO_FIX, weak_key_problem
from agent.ocpp.ukdefault import UkDefaultSettings, uk_default_from_table
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
from hw.tomltable import REQUIRED as _REQUIRED
from hw.tomltable import TomlTable
from master.allocation import GroupConfig, InvalidInputError, Mode, Phase

CHARGER_LIMIT_RANGE_A = (6.0, 63.0)  # manual 6.3: Charger Current Limit [6-63 A]
HARD_MAX_RANGE_A = (6.0, 80.0)  # IEC 61851-1 Table A.7: the pilot offers 6-80 A
DEFAULT_HARD_MAX_A = 32.0  # product.md ch. 2: the io7 delivers up to 32 A per phase
# issue 10: a master may set at most this fail-safe current (Minimise's 6 A, allocation
# model) and a lease in this range (the master's default is 3 s = 3 x 1 s cycles)
DEFAULT_MAX_FAILSAFE_A = 6.0
DEFAULT_LEASE_RANGE_S = (1.0, 10.0)
MIN_LEASE_RANGE_S = (0.1, 60.0)  # 0.1 s: the master's fastest cycle (master/config.py)
DEFAULT_STATE_DIR = Path("/var/lib/io7")  # deploy/systemd/io7-agent.service
BOARDS = ("sim",)  # board drivers this version knows
SIM_EVS = ("random", "plugged", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")
_PARITY: dict[str, Literal["N", "E", "O"]] = {"N": "N", "E": "E", "O": "O"}
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
OCPP_SECURITY_PROFILES = (0, 1, 2)  # security whitepaper ed. 2; 3 (client certs): not yet
AUTHORIZATION_KEY_CHARS = (16, 40)  # OCPP passwordString: 16-40 characters
SERIAL_NUMBER_MAX = 25  # BootNotification chargePointSerialNumber: CiString25
ID_TAG_MAX = 20  # OCPP 1.6 IdToken: CiString20


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOnlySettings:
    """Scenario A load balancing: the allocation's group settings and the optional clamps."""

    group: GroupConfig
    ct: CtSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppSettings:
    """The back office connection ([ocpp]); agent.ocpp.connection uses it."""

    url: str  # without the charge point id
    charge_point_id: str
    security_profile: int = 0
    authorization_key: str | None = None  # profiles 1, 2; a key the CSMS sets wins
    ca_file: Path | None = None  # wss://; None: the system's CAs
    serial_number: str | None = None
    auth_mode: AuthMode = AuthMode.NONE
    free_id_tag: str = "io7"  # the loader defaults it to the charge point id
    local_list: tuple[str, ...] = ()
    uk_default: UkDefaultSettings = field(default_factory=UkDefaultSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Everything the agent process needs, validated. Build with `load_agent_config`."""

    file: Path
    charger_id: str
    group: str
    charger_limit_a: float
    connectors: tuple[ConnectorSettings, ...]
    master_address: str | None = None  # None: agent-only mode
    initial_failsafe_a: float = 0.0
    max_failsafe_a: float = DEFAULT_MAX_FAILSAFE_A
    min_lease_s: float = DEFAULT_LEASE_RANGE_S[0]
    max_lease_s: float = DEFAULT_LEASE_RANGE_S[1]
    agent_only: AgentOnlySettings | None = None  # None: no site limit, only the charger's
    board: str = "sim"
    sim_seed: int | None = None
    sim_evs: str = "random"  # random | plugged | none: how the simulated board gets EVs
    log_level: str = "info"
    state_dir: Path = DEFAULT_STATE_DIR
    ocpp: OcppSettings | None = None  # None: no back office

    @property
    def agent_only_mode(self) -> bool:
        return self.master_address is None

    @property
    def link_bounds(self) -> LinkBounds:
        """What this agent accepts from a master (agent/bounds.py)."""
        return LinkBounds(max_failsafe_a=self.max_failsafe_a, min_lease_s=self.min_lease_s,
                          max_lease_s=self.max_lease_s)

    @property
    def hard_max_a(self) -> dict[int, float]:
        """Per connector id, for `agent.limits.LimitApplier`."""
        return {c.connector_id: c.hard_max_a for c in self.connectors}


class _Table(TomlTable):
    """A table of agent.toml (hw.tomltable), plus the agent's own getters."""

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(file=self.file, key=self.key(name), problem=problem)

    def required_table(self, name: str, what: str) -> _Table:
        table = self.table(name)
        if table is None:
            raise self.error(name, f"is required: the [{self.key(name)}] table ({what})")
        return table

    def number(self, name: str, default: Any = _REQUIRED, lo: float | None = None,
               hi: float | None = None, *, unit: str = "A", why: str = "") -> float:
        """hw.tomltable's number, in amperes unless `unit` says otherwise."""
        return super().number(name, default, lo, hi, unit=unit, why=why)

    def integer(self, name: str, default: Any = _REQUIRED, *, lo: int, hi: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(name, f"must be a whole number {lo}-{hi}, not {value!r}")
        return value

    def skip_rest(self) -> None:
        """A disabled table: its other keys are not read, so not called unknown."""
        self.used.update(self.data)


def load_agent_config(path: Path) -> AgentConfig:
    """Read and validate the agent's config file. Raises ConfigError (missing file,
    not TOML, or a value out of range, naming the key)."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(file=path, key="", problem="no such file: give the agent's config "
                          "with --config (example in agent/config.py)") from exc
    except OSError as exc:
        raise ConfigError(file=path, key="", problem=f"cannot read the config file "
                          f"({exc.strerror or exc}): check its permissions") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=path, key="", problem=f"not valid TOML: {exc}") from exc
    return _parse(path, data)


def _parse(path: Path, data: Mapping[str, Any]) -> AgentConfig:
    root = _Table(path, "", data)
    charger = root.required_table("charger", "id, current_limit_a, ...")
    connectors_t = root.required_table("connectors", "[connectors.1] with its wiring, ...")
    master = root.table("master")
    agent_only_t = root.table("agent_only")
    board = root.table("board") or _Table(path, "board", {})
    sim = root.table("sim") or _Table(path, "sim", {})
    logging_t = root.table("logging") or _Table(path, "logging", {})
    state = root.table("state") or _Table(path, "state", {})
    ocpp_t = root.table("ocpp") or _Table(path, "ocpp", {})
    root.done()

    charger_id = charger.string("id")
    if not _ID.fullmatch(charger_id):
        raise charger.error("id", f"{charger_id!r}: use 1-64 letters, digits, '.', '_', '-'")
    limit_a = charger.number("current_limit_a", lo=CHARGER_LIMIT_RANGE_A[0],
                             hi=CHARGER_LIMIT_RANGE_A[1], why="Charger Current Limit, manual 6.3")
    group = charger.string("group", _REQUIRED if master is not None else charger_id)
    charger.done()
    connectors = _connectors(connectors_t)

    address, failsafe = None, 0.0
    max_failsafe, (min_lease, max_lease) = DEFAULT_MAX_FAILSAFE_A, DEFAULT_LEASE_RANGE_S
    if master is not None:
        address = _host_port(master, "address", master.string("address"))
        failsafe = master.number("initial_failsafe_a", 0.0, lo=0.0, hi=limit_a,
                                 why="0 or at least 6 A, at most the charger limit")
        if 0.0 < failsafe < HARD_MAX_RANGE_A[0]:
            raise master.error("initial_failsafe_a", f"{failsafe:g} A: the pilot cannot offer "
                               "less than 6 A; use 0 or 6 A up to the charger limit")
        max_failsafe, min_lease, max_lease = _master_bounds(master, limit_a, failsafe)
        master.done()
        if agent_only_t is not None:
            raise agent_only_t.error("site_limit_a", "[agent_only] is only read without "
                                     "[master]: remove one of the two tables")
    agent_only = _agent_only(agent_only_t, group, connectors) if agent_only_t else None

    board_kind = board.string("kind", "sim", allowed=BOARDS)
    board.done()
    seed = sim.raw("seed", None)
    if seed is not None:
        seed = sim.integer("seed", lo=0, hi=2**63 - 1)
    sim_evs = sim.string("evs", "random", allowed=SIM_EVS)
    sim.done()
    level = logging_t.string("level", "info", allowed=LOG_LEVELS)
    logging_t.done()
    state_dir = Path(state.string("dir", str(DEFAULT_STATE_DIR)))
    state.done()
    ocpp = _ocpp(ocpp_t, charger_id)
    return AgentConfig(
        file=path, charger_id=charger_id, group=group, charger_limit_a=limit_a,
        connectors=connectors, master_address=address, initial_failsafe_a=failsafe,
        max_failsafe_a=max_failsafe, min_lease_s=min_lease, max_lease_s=max_lease,
        agent_only=agent_only, board=board_kind, sim_seed=seed, sim_evs=sim_evs,
        log_level=level,
        state_dir=state_dir if state_dir.is_absolute() else path.parent / state_dir,
        ocpp=ocpp,
    )


def _master_bounds(t: _Table, limit_a: float, failsafe: float) -> tuple[float, float, float]:
    """[master] max_failsafe_a, min_lease_s, max_lease_s: what a master may set."""
    top = t.number("max_failsafe_a", max(DEFAULT_MAX_FAILSAFE_A, failsafe), lo=0.0, hi=limit_a,
                   why="0 or at least 6 A, at most the charger limit")
    if 0.0 < top < HARD_MAX_RANGE_A[0]:
        raise t.error("max_failsafe_a", f"{top:g} A: the pilot cannot offer less than 6 A; "
                      "use 0 or 6 A up to the charger limit")
    if top < failsafe:
        raise t.error("max_failsafe_a", f"{top:g} A is below initial_failsafe_a = "
                      f"{failsafe:g} A: raise it or lower initial_failsafe_a")
    lo = t.number("min_lease_s", DEFAULT_LEASE_RANGE_S[0], lo=MIN_LEASE_RANGE_S[0],
                  hi=MIN_LEASE_RANGE_S[1], unit="s")
    hi = t.number("max_lease_s", max(lo, DEFAULT_LEASE_RANGE_S[1]), lo=lo, hi=MAX_LEASE_S,
                  unit="s", why="from min_lease_s")
    return top, lo, hi


def _ocpp(t: _Table, charger_id: str) -> OcppSettings | None:
    if not t.boolean("enabled", False):
        t.skip_rest()
        return None
    profile = t.integer("security_profile", 0, lo=0, hi=max(OCPP_SECURITY_PROFILES))
    url = t.string("url")
    problem = ocpp_url_problem(url, profile)
    if problem:
        raise t.error("url", problem)
    cp_id = t.string("charge_point_id", charger_id)
    if not _ID.fullmatch(cp_id):
        raise t.error("charge_point_id", f"{cp_id!r}: use 1-64 letters, digits, '.', '_', "
                      "'-' (it becomes part of the URL and the Basic auth username)")
    key = t.raw("authorization_key", None)
    lo, hi = AUTHORIZATION_KEY_CHARS
    if profile == 0 and key is not None:
        raise t.error("authorization_key", "is only sent with security_profile 1 or 2: "
                      "set the profile, or remove the key")
    if profile > 0 and not (isinstance(key, str) and lo <= len(key) <= hi
                            and all(" " <= c <= "~" for c in key)):
        raise t.error("authorization_key", f"security_profile {profile} needs the Basic "
                      f"auth password: {lo}-{hi} printable ASCII characters")
    weak = weak_key_problem(key.encode()) if isinstance(key, str) and profile > 0 else None
    if weak is not None:
        raise t.error("authorization_key", f"{weak}: {HOW_TO_FIX}")
    ca_file = None
    if t.raw("ca_file", None) is not None:
        if not url.startswith("wss://"):
            raise t.error("ca_file", "is only used with a wss:// url")
        ca_file = Path(t.string("ca_file"))
        ca_file = ca_file if ca_file.is_absolute() else t.file.parent / ca_file
        if not ca_file.is_file():
            raise t.error("ca_file", f"no such file: {ca_file}")
    serial = t.raw("serial_number", None)
    if serial is not None and not (isinstance(serial, str)
                                   and 1 <= len(serial) <= SERIAL_NUMBER_MAX):
        raise t.error("serial_number", f"must be 1-{SERIAL_NUMBER_MAX} characters, "
                      f"not {serial!r}")
    mode = AuthMode(t.string("auth_mode", AuthMode.NONE.value,
                             allowed=tuple(m.value for m in AuthMode)))
    free = t.string("free_id_tag", cp_id[:ID_TAG_MAX])
    try:
        check_id_tag(free)
    except ValueError as err:
        raise t.error("free_id_tag", str(err)) from None
    tags = t.raw("local_list", [])
    if not isinstance(tags, list):
        raise t.error("local_list", f"must be a list of idTags, not {tags!r}")
    for tag in tags:
        try:
            check_id_tag(tag)
        except ValueError as err:
            raise t.error("local_list", f"{err} (1-{ID_TAG_MAX} printable ASCII characters "
                          "each)") from None
    uk_t = t.table("uk_default")
    uk = UkDefaultSettings() if uk_t is None else uk_default_from_table(
        uk_t.data, file=t.file, prefix="ocpp.uk_default")
    if uk_t is not None:
        uk_t.skip_rest()
    t.done()
    return OcppSettings(url=url, charge_point_id=cp_id, security_profile=profile,
                        authorization_key=key, ca_file=ca_file, serial_number=serial,
                        auth_mode=mode, free_id_tag=free, local_list=tuple(tags),
                        uk_default=uk)


def ocpp_url_problem(url: str, security_profile: int) -> str | None:
    """What is wrong with a CSMS url for this security profile, None if it fits."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"{url!r}: give ws://host[:port]/path or wss://host[:port]/path"
    if parts.query or parts.fragment or parts.username or port == 0:
        return f"{url!r}: no query, fragment or user; the charge point id is appended"
    if security_profile == 1 and parts.scheme != "ws":
        return "security_profile 1 is Basic auth over ws://: use a ws:// url, or profile 2"
    if security_profile == 2 and parts.scheme != "wss":
        return "security_profile 2 is Basic auth over TLS: use a wss:// url"
    return None


def with_csms_url(config: AgentConfig, url: str) -> AgentConfig:
    """`io7-agent --csms-url`: the config with this back office url ([ocpp] enabled with
    its defaults if it was off). ConfigError if the url does not fit the profile."""
    ocpp = config.ocpp or OcppSettings(url=url, charge_point_id=config.charger_id,
                                       free_id_tag=config.charger_id[:ID_TAG_MAX])
    problem = ocpp_url_problem(url, ocpp.security_profile)
    if problem:
        raise ConfigError(file=config.file, key="ocpp.url (--csms-url)", problem=problem)
    ca_file = ocpp.ca_file if url.startswith("wss://") else None
    return replace(config, ocpp=replace(ocpp, url=url, ca_file=ca_file))


def _connectors(t: _Table) -> tuple[ConnectorSettings, ...]:
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
        meter_t = c.table("meter") or _Table(t.file, c.key("meter"), {})
        meter = _meter(meter_t)
        meter_t.done()
        c.done()
        out.append(ConnectorSettings(connector_id=int(key), wiring=wiring, hard_max_a=hard_max,
                                     meter=meter))
    if not out:
        raise t.error("1", "is required: at least [connectors.1] with its wiring")
    return tuple(out)


def _wiring(t: _Table) -> Wiring:
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


def _meter(t: _Table) -> MeterSettings:
    kind = MeterKind(t.string("kind", "sim", allowed=tuple(k.value for k in MeterKind)))
    if kind is MeterKind.SIM:
        t.skip_rest()
        return MeterSettings()
    profile = t.string("profile", "sdm630", allowed=tuple(sorted(METER_PROFILES)))
    address = t.integer("address", 1, lo=1, hi=247)  # Modbus unicast addresses
    return MeterSettings(kind=kind, profile=profile, address=address, bus=_bus(t))


def _bus(t: _Table) -> BusSettings:
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
            host, _, number = _host_port(t, "tcp", t.string("tcp")).rpartition(":")
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


def _host_port(t: _Table, name: str, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise t.error(name, f"{value!r} must be host:port with a port 1-65535 "
                      "(e.g. \"10.0.0.10:50051\", \"[fd00::10]:50051\")")
    return value


def _agent_only(t: _Table, group: str,
                connectors: tuple[ConnectorSettings, ...]) -> AgentOnlySettings:
    site_limit = t.number("site_limit_a", lo=6.0, hi=2000.0,
                          why="Site Limit, the main fuse per phase, manual 6.4.1")
    mode = Mode(t.string("mode", "static", allowed=tuple(m.value for m in Mode)))
    margin = t.number("margin_a", 2.0, lo=0.0, hi=site_limit, why="at most the site limit")
    fallback = None
    if mode is Mode.DYNAMIC:
        fallback = t.number("fallback_limit_a", lo=0.0, hi=site_limit,
                            why="dynamic mode: shared while the clamps are silent, at most "
                            "the site limit")
    ct_t = t.table("ct")
    ct = _ct(ct_t) if ct_t is not None else None
    if mode is Mode.DYNAMIC and ct is None:
        raise t.error("mode", "dynamic mode balances on the CT clamps: enable "
                      "[agent_only.ct], or set mode = \"static\"")
    t.done()
    phases = sorted({p for c in connectors for p in c.wiring if p is not None})
    try:
        config = GroupConfig(name=group, phases=tuple(phases), mode=mode, limit_a=site_limit,
                             fallback_limit_a=fallback, margin_a=margin)
    except InvalidInputError as exc:  # the engine's own checks stay the source of truth
        text = str(exc)
        key = next((k for k in ("fallback_limit_a", "margin_a") if text.startswith(k)),
                   "site_limit_a")
        raise t.error(key, text) from exc
    return AgentOnlySettings(group=config, ct=ct)


def _ct(t: _Table) -> CtSettings | None:
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


def _clamp_list(t: _Table, name: str, default: list[int]) -> tuple[int, ...]:
    value = t.raw(name, default)
    if (not isinstance(value, list) or any(isinstance(n, bool) or n not in (1, 2, 3)
                                           for n in value) or len(set(value)) != len(value)):
        raise t.error(name, f"{value!r}: list distinct clamp numbers 1-3, e.g. [1, 2, 3]")
    return tuple(sorted(value))
