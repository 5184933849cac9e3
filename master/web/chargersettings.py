"""This charger's own settings as the web UI edits them (issue 14 §1), pure.

A setting is named by its dotted key in io7.toml ("charger.current_limit_a"), so the key
a client sends is the key an error names. Rules:
 1. Only the keys of `SETTINGS` may be changed here; others are edited in the file.
 2. A change is checked by the loader itself: the file's text with the change applied
    (master.web.tomlwrite.edited, comments kept) is parsed by master.io7dconfig.parse,
    exactly as io7d would read it at its next start, so a refusal is the loader's
    ConfigError word for word (file, key, allowed range) and nothing is written.
    While [ocpp] is off the loader skips the table; its authorisation and smart
    charging keys are then checked by the same readers (agent.ocpp.settings
    read_authorisation, read_uk_default), so they cannot wait there broken.
 3. Live where safe: only the Charger Current Limit (the agent's limit applier takes it
    at once: a decrease applies at its next step, an increase is paced as any; its
    Hello tells the master). Everything else is read at start (the OCPP connection, the
    sessions' authorisation and UK default profile, the wiring the master counts, the
    CT kit's poller): `restart_reason` says why.
 4. Secrets (the OCPP AuthorizationKey) are written, never shown: `shown` masks them.
Nothing here reads a file or a clock: the caller passes the text and the running config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import CHARGER_LIMIT_RANGE_A
from agent.configtable import AgentTable
from agent.errors import ConfigError as AgentConfigError
from agent.hwsettings import HARD_MAX_RANGE_A
from agent.ocpp.auth import AuthMode
from agent.ocpp.settings import OCPP_SECURITY_PROFILES, read_authorisation, read_uk_default
from agent.ocpp.ukdefault import MAX_RANDOM_DELAY_S, UkDefaultSettings
from master.errors import ConfigError
from master.io7dconfig import Io7Config, parse
from master.web.tomlwrite import edited

SECRET_SHOWN = "********"
_AT_START = "read at start: restart io7d to apply it"


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One editable key: its page (manual ch. 6), label, unit, range or choices, and
    whether it applies live (rule 3) or why it needs a restart."""

    key: str
    page: str  # general | installer | authorisation | smart_charging | csms
    label: str
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] = ()
    live: bool = False
    restart_why: str = _AT_START
    secret: bool = False
    listed: bool = True  # False: edited through its own endpoint only (the RFID list)


def _connector(n: int) -> tuple[Setting, ...]:
    return (
        Setting(key=f"connectors.{n}.wiring", page="installer",
                label=f"Phase connection of connector {n} (site phase of its L1, L2, L3)",
                choices=("L1", "L2", "L3", "-"),
                restart_why="the master counts the wiring its Hello gave at start: restart "
                "io7d (with the power off while rewiring)"),
        Setting(key=f"connectors.{n}.hard_max_a", page="installer",
                label=f"Cable and breaker rating of connector {n}", unit="A",
                lo=HARD_MAX_RANGE_A[0], hi=HARD_MAX_RANGE_A[1]),
    )


SETTINGS: tuple[Setting, ...] = (
    Setting(key="charger.current_limit_a", page="installer", label="Charger Current Limit",
            unit="A", lo=CHARGER_LIMIT_RANGE_A[0], hi=CHARGER_LIMIT_RANGE_A[1], live=True),
    *_connector(1), *_connector(2),
    Setting(key="ct.enabled", page="installer", label="External CT clamps (the Sense CT kit "
            "wired to this charger)", choices=(True, False),
            restart_why="the CT kit is polled by the group's master, set up at its start: "
            "restart io7d"),
    Setting(key="ct.rated_a", page="installer", label="CT clamps' rated value", unit="A",
            lo=1.0, hi=2000.0, restart_why="the CT kit is polled by the group's master, set "
            "up at its start: restart io7d"),
    Setting(key="ocpp.auth_mode", page="authorisation", label="Authorisation mode",
            choices=tuple(m.value for m in AuthMode),
            restart_why="authorisation is set up when the OCPP side starts: restart io7d"),
    Setting(key="ocpp.free_id_tag", page="authorisation",
            label="idTag of plug-in transactions (mode none)",
            restart_why="authorisation is set up when the OCPP side starts: restart io7d"),
    Setting(key="ocpp.local_list", page="authorisation", label="Local RFID list",
            restart_why="read at start; /api/charger/rfid applies it at once",
            listed=False),
    Setting(key="ocpp.uk_default.enabled", page="smart_charging",
            label="UK default profile", choices=(True, False)),
    Setting(key="ocpp.uk_default.tz", page="smart_charging", label="Time zone of the periods"),
    Setting(key="ocpp.uk_default.no_charging_periods", page="smart_charging",
            label="No-charging periods, at most 2 [[\"HH:MM\", \"HH:MM\"], ...]"),
    Setting(key="ocpp.uk_default.max_random_delay_s", page="smart_charging",
            label="Maximum random delay", unit="s", lo=0, hi=MAX_RANDOM_DELAY_S),
    Setting(key="ocpp.enabled", page="csms", label="Back office (CSMS) connection",
            choices=(True, False)),
    Setting(key="ocpp.url", page="csms", label="CSMS URL (ws:// or wss://)"),
    Setting(key="ocpp.charge_point_id", page="csms", label="Charge point id"),
    Setting(key="ocpp.security_profile", page="csms", label="Security profile",
            choices=OCPP_SECURITY_PROFILES),
    Setting(key="ocpp.authorization_key", page="csms",
            label="Basic auth password (profiles 1 and 2)", secret=True),
)
BY_KEY = {s.key: s for s in SETTINGS}
_OCPP_OFF_WHY = ("kept for when the back office is on (ocpp.enabled = true): "
                 "authorisation and smart charging run with OCPP, from io7d's next start")


class SettingsError(ValueError):
    """A change names a key this API does not edit (rule 1) or a value TOML cannot hold;
    `key` names it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A checked change: the new file text and what it does (rules 2-3)."""

    text: str
    config: Io7Config
    before: Mapping[str, Any]  # `configured` values of the file before ...
    after: Mapping[str, Any]  # ... and after the change
    changed: tuple[str, ...]  # keys whose configured value changes (or, live, differs
                              # from the value in force)
    live: tuple[str, ...]  # of those, applied now
    restart: Mapping[str, str]  # of those, key -> why it needs a restart


def running(config: Io7Config, charger_limit_a: float) -> dict[str, Any]:
    """The values in force: `config` as io7d read it at start, with the live Charger
    Current Limit; while [ocpp] is off, only ocpp.enabled of its keys."""
    return {**_from_config(config), "charger.current_limit_a": charger_limit_a}


def configured(path: Path, data: Mapping[str, Any], config: Io7Config) -> dict[str, Any]:
    """Every setting's value as io7d reads it from `data` (defaults filled in); `config`
    is `parse(path, data)`. With [ocpp] off its keys come from `data` through the same
    readers (rule 2). Secrets included: show them through `shown`."""
    out = _from_config(config)
    if config.agent.ocpp is not None:
        return out
    raw = data.get("ocpp")
    table: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    t = AgentTable(path, "ocpp", table)
    cp_id = table.get("charge_point_id") or config.charger_id
    try:
        mode, free, tags = read_authorisation(t, str(cp_id))
        uk = read_uk_default(t)
    except AgentConfigError as exc:
        raise ConfigError(file=exc.file, key=exc.key, problem=exc.problem) from None
    out.update({"ocpp.url": table.get("url"), "ocpp.charge_point_id": cp_id,
                "ocpp.security_profile": table.get("security_profile", 0),
                "ocpp.authorization_key": table.get("authorization_key"),
                "ocpp.auth_mode": mode.value, "ocpp.free_id_tag": free,
                "ocpp.local_list": list(tags), **_uk(uk)})
    return out


def check_id_tags(path: Path, tags: list[Any]) -> None:
    """The loader's check of [ocpp] local_list (agent.ocpp.settings.read_authorisation)
    for these tags alone: ConfigError naming ocpp.local_list, as loading would."""
    try:
        read_authorisation(AgentTable(path, "ocpp", {"local_list": tags}), "io7")
    except AgentConfigError as exc:
        raise ConfigError(file=exc.file, key=exc.key, problem=exc.problem) from None


def _from_config(config: Io7Config) -> dict[str, Any]:
    agent = config.agent
    out: dict[str, Any] = {"charger.current_limit_a": agent.charger_limit_a}
    for c in agent.connectors:
        out[f"connectors.{c.connector_id}.wiring"] = [
            "-" if p is None else p.name for p in c.wiring]
        out[f"connectors.{c.connector_id}.hard_max_a"] = c.hard_max_a
    ct = config.master.ct
    out["ct.enabled"] = ct is not None
    out["ct.rated_a"] = None if ct is None else ct.rated_a
    o = agent.ocpp
    out["ocpp.enabled"] = o is not None
    if o is not None:
        out.update({"ocpp.url": o.url, "ocpp.charge_point_id": o.charge_point_id,
                    "ocpp.security_profile": o.security_profile,
                    "ocpp.authorization_key": o.authorization_key,
                    "ocpp.auth_mode": o.auth_mode.value, "ocpp.free_id_tag": o.free_id_tag,
                    "ocpp.local_list": list(o.local_list), **_uk(o.uk_default)})
    return out


def _uk(uk: UkDefaultSettings) -> dict[str, Any]:
    return {"ocpp.uk_default.enabled": uk.enabled, "ocpp.uk_default.tz": uk.tz,
            "ocpp.uk_default.no_charging_periods": [
                [f"{p.start:%H:%M}", f"{p.end:%H:%M}"] for p in uk.periods],
            "ocpp.uk_default.max_random_delay_s": uk.max_random_delay_s}


def shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with secrets masked (rule 4): SECRET_SHOWN when set, None when not."""
    return {k: (SECRET_SHOWN if v else None) if k in BY_KEY and BY_KEY[k].secret else v
            for k, v in values.items()}


def load(path: Path, text: str) -> tuple[Io7Config, dict[str, Any]]:
    """The file's config and its settings' values (`configured`). Raises ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=path, key="", problem=f"not valid TOML: {exc}") from exc
    config = parse(path, data)
    return config, configured(path, data, config)


def plan_change(path: Path, text: str, changes: Mapping[str, Any],
                now: Mapping[str, Any] | None = None, *, unlisted: bool = False) -> Plan:
    """Check `changes` (dotted key -> value, None = back to the default) against the file
    `path` whose text is `text` (rules 1-3); `now`: the values in force (`running`), so a
    live key set to what the file holds but not what runs is applied too. Raises
    SettingsError (rule 1, a value TOML cannot hold) or ConfigError: the loader's own
    message, nothing is written. `unlisted`: keys with their own endpoint allowed too."""
    for key, value in changes.items():
        if key not in BY_KEY:
            raise SettingsError(key, f"not a setting of this page; the settings are "
                                f"{sorted(k for k, s in BY_KEY.items() if s.listed)} "
                                f"(others: edit {path.name})")
        if not (BY_KEY[key].listed or unlisted):
            raise SettingsError(key, "has its own endpoint: /api/charger/rfid")
        if value is not None and not _tomlable(value):
            raise SettingsError(key, f"{value!r} cannot be written to TOML (no null "
                                "inside a list or table)")
    _, before = load(path, text)
    new_text = edited(text, changes)
    config, after = load(path, new_text)
    now = now or {}
    changed = tuple(k for k in BY_KEY if before.get(k) != after.get(k) or (
        BY_KEY[k].live and k in changes and k in now and now[k] != after.get(k)))
    live = tuple(k for k in changed if BY_KEY[k].live)
    restart = {k: restart_reason(k, config) for k in changed if not BY_KEY[k].live}
    return Plan(text=new_text, config=config, before=before, after=after, changed=changed,
                live=live, restart=restart)


def restart_reason(key: str, config: Io7Config) -> str:
    """Why a change of `key` waits for a restart (rule 3)."""
    if (key.startswith("ocpp.") and key != "ocpp.enabled" and config.agent.ocpp is None):
        return _OCPP_OFF_WHY
    return BY_KEY[key].restart_why


def pending(values: Mapping[str, Any], now: Mapping[str, Any],
            config: Io7Config) -> dict[str, str]:
    """Keys configured (`values`) differently from what runs (`now`, from `running`):
    a restart not yet made -> why. `config` is the configured one."""
    return {k: restart_reason(k, config) for k in BY_KEY
            if k in values and k in now and values[k] != now[k]}


def _tomlable(value: Any) -> bool:
    if isinstance(value, list):
        return all(v is not None and _tomlable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and v is not None and _tomlable(v)
                   for k, v in value.items())
    return isinstance(value, str | int | float | bool)
