"""The agent's config: one TOML file, read once at start into a frozen, validated object.

Every bad value raises `ConfigError` naming the file, the dotted key and what is allowed;
unknown keys are refused too (a typo must not silently fall back to a default). Relative
paths are relative to the config file's folder. Each table is read by the module that owns
its meaning: [connectors] and [agent_only.ct] by agent.hwsettings, [ocpp] by
agent.ocpp.settings (their docstrings list those keys); this module reads the rest and the
bounds this agent sets on any master.

    [charger]
    id = "io7-garage-01"          # required: letters, digits, . _ - (1-64)
    group = "garage"              # required with [master]: the master's [group] name;
                                  # agent-only mode: defaults to the charger id
    current_limit_a = 32          # required: Charger Current Limit, 6-63 A (manual 6.3)

    [connectors.1]                # 1 and/or 2: wiring, hard_max_a, [connectors.1.meter]
                                  # (agent/hwsettings.py)

    [master]                      # absent: agent-only mode (scenario A, manual 6.4.1)
    address = "10.0.0.10:50051"   # required: host:port of the group's master
    initial_failsafe_a = 0        # until the first Welcome: 0 or 6 A up to the charger limit
    max_failsafe_a = 6            # the most fail-safe current a master may set: 0 or 6 A up
                                  # to the charger limit; default 6 A (Minimise) or the
                                  # initial fail-safe when higher. More is refused (issue 10)
    min_lease_s = 1               # a master's lease must be 0.1-60 s, default 1 s ...
    max_lease_s = 10              # ... up to this, default 10 s; others are refused

    [tls]                         # required with [master]: one of the two forms
    dir = "/etc/io7/tls"          # this charger's folder from io7-pki (chargers/ID/): its
                                  # certificate must name this charger id; the master's
                                  # must be a charger certificate of the same site CA
    # plaintext = true            # a test bench only: no TLS, warned at every start

    [agent_only]                  # optional, only without [master]: single-charger load
    site_limit_a = 25             # balancing (6.4.1); required: the main fuse, A per phase
    mode = "static"               # static | dynamic (dynamic needs [agent_only.ct])
    margin_a = 2.0                # dynamic: kept free below the site limit, default 2 A
    fallback_limit_a = 16         # dynamic, required: shared while the clamps are silent
    [agent_only.ct]               # External CT Clamps on connector #1 (agent/hwsettings.py)

    [ocpp]                        # the back office (CSMS), OCPP 1.6J; absent: none
                                  # (agent/ocpp/settings.py)

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

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.bounds import MAX_LEASE_S, LinkBounds
from agent.configtable import ID_RE, AgentTable
from agent.errors import ConfigError
from agent.hwsettings import (
    HARD_MAX_RANGE_A,
    ConnectorSettings,
    CtSettings,
    read_connectors,
    read_ct,
)
from agent.ocpp.settings import OcppSettings, read_ocpp, with_url
from hw.tomltable import REQUIRED as _REQUIRED
from master.allocation import GroupConfig, InvalidInputError, Mode

CHARGER_LIMIT_RANGE_A = (6.0, 63.0)  # manual 6.3: Charger Current Limit [6-63 A]
# issue 10: a master may set at most this fail-safe current (Minimise's 6 A, allocation
# model) and a lease in this range (the master's default is 3 s = 3 x 1 s cycles)
DEFAULT_MAX_FAILSAFE_A = 6.0
DEFAULT_LEASE_RANGE_S = (1.0, 10.0)
MIN_LEASE_RANGE_S = (0.1, 60.0)  # 0.1 s: the master's fastest cycle (master/config.py)
DEFAULT_STATE_DIR = Path("/var/lib/io7")  # deploy/systemd/io7-agent.service
BOARDS = ("sim",)  # board drivers this version knows
SIM_EVS = ("random", "plugged", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOnlySettings:
    """Scenario A load balancing: the allocation's group settings and the optional clamps."""

    group: GroupConfig
    ct: CtSettings | None = None


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
    tls_dir: Path | None = None  # with a master: None = [tls] plaintext = true

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
    root = AgentTable(path, "", data)
    charger = root.required_table("charger", "id, current_limit_a, ...")
    connectors_t = root.required_table("connectors", "[connectors.1] with its wiring, ...")
    master = root.table("master")
    agent_only_t = root.table("agent_only")
    board = root.table("board") or AgentTable(path, "board", {})
    sim = root.table("sim") or AgentTable(path, "sim", {})
    logging_t = root.table("logging") or AgentTable(path, "logging", {})
    state = root.table("state") or AgentTable(path, "state", {})
    ocpp_t = root.table("ocpp") or AgentTable(path, "ocpp", {})
    tls_t = root.table("tls")
    root.done()

    charger_id = charger.string("id")
    if not ID_RE.fullmatch(charger_id):
        raise charger.error("id", f"{charger_id!r}: use 1-64 letters, digits, '.', '_', '-'")
    limit_a = charger.number("current_limit_a", lo=CHARGER_LIMIT_RANGE_A[0],
                             hi=CHARGER_LIMIT_RANGE_A[1], why="Charger Current Limit, manual 6.3")
    group = charger.string("group", _REQUIRED if master is not None else charger_id)
    charger.done()
    connectors = read_connectors(connectors_t)

    address, failsafe, tls_dir = None, 0.0, None
    max_failsafe, (min_lease, max_lease) = DEFAULT_MAX_FAILSAFE_A, DEFAULT_LEASE_RANGE_S
    if master is not None:
        address = master.host_port("address")
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
        tls_dir = _tls(tls_t, root)
    elif tls_t is not None:
        raise tls_t.error("dir", "[tls] is only read with [master] (the link to the "
                          "group's master): remove it in agent-only mode")
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
    ocpp = read_ocpp(ocpp_t, charger_id)
    return AgentConfig(
        file=path, charger_id=charger_id, group=group, charger_limit_a=limit_a,
        connectors=connectors, master_address=address, initial_failsafe_a=failsafe,
        max_failsafe_a=max_failsafe, min_lease_s=min_lease, max_lease_s=max_lease,
        agent_only=agent_only, board=board_kind, sim_seed=seed, sim_evs=sim_evs,
        log_level=level,
        state_dir=state_dir if state_dir.is_absolute() else path.parent / state_dir,
        ocpp=ocpp, tls_dir=tls_dir,
    )


def _tls(t: AgentTable | None, root: AgentTable) -> Path | None:
    """[tls] dir, or None for plaintext = true (the master's rule: master/tlsconfig.py)."""
    how = ("run `io7-pki issue charger ID` with this charger's id, copy chargers/ID/ here "
           "and set [tls] dir = \"/etc/io7/tls\" (deploy/PKI.md), or plaintext = true for a "
           "test bench")
    if t is None:
        raise root.error("tls", f"is required with [master]: {how}")
    if t.boolean("plaintext", False):
        if "dir" in t.data:
            raise t.error("dir", "plaintext = true turns TLS off: remove one of the two")
        t.done()
        return None
    if "dir" not in t.data:
        raise t.error("dir", f"is required: {how}")
    folder = Path(t.string("dir"))
    t.done()
    return folder if folder.is_absolute() else t.file.parent / folder


def _master_bounds(t: AgentTable, limit_a: float, failsafe: float) -> tuple[float, float, float]:
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


def with_csms_url(config: AgentConfig, url: str) -> AgentConfig:
    """`io7-agent --csms-url`: the config with this back office url ([ocpp] enabled with
    its defaults if it was off). ConfigError if the url does not fit the profile."""
    return replace(config, ocpp=with_url(config.ocpp, url, charger_id=config.charger_id,
                                         file=config.file))


def _agent_only(t: AgentTable, group: str,
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
    ct = read_ct(ct_t) if ct_t is not None else None
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
