"""Set-up the web and MQTT tests share, written once: an io7.toml for a lone or grouped
io7d, a lone charger's real Agent and Station (not stepping), and what an io7d prints on
stdout (its UI's URL, its password file). Processes, ports and the site PKI come from
tests/e2e/harness.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from agent.service import Agent
from master.io7dconfig import Io7Config, load_io7_config
from master.web.station import Station, build_station
from tests.e2e.harness import Cluster, Proc, wait_for

ALL_PHASES = '["L1", "L2", "L3"]'
LONE = '"io7-01" = "127.0.0.1:40001"'  # the lone member's address: nobody dials it
STATIC_48 = 'mode = "static"\nlimit_a = 48'
ELECTION = "cycle_ms = 250\nlease_cycles = 8"  # [master]: quick terms on loopback
QUICK_TUNING = "settle_s = 0.5\nramp_up_a = 80.0"  # [group.tuning]: offers follow in ~1 s
WEB_PLAIN = '[web]\nlisten = "127.0.0.1:0"\nplaintext = true\n'  # any free port, no TLS
SIM_PLUGGED = '[sim]\nevs = "plugged"\n'  # a simulated EV on every connector


def table(rows: Mapping[str, object]) -> str:
    """A TOML table's lines of quoted keys and strings ([group.members], [web.members])."""
    return "\n".join(f'"{k}" = "{v}"' for k, v in rows.items())


def charger_part(cid: str = "io7-01", limit_note: str = "",
                 wiring: tuple[str, ...] = (ALL_PHASES, ALL_PHASES)) -> str:
    """[charger] (32 A) and [connectors.N], as an agent's or an io7d's file opens."""
    connectors = "".join(f"[connectors.{n}]\nwiring = {w}\n" for n, w in enumerate(wiring, 1))
    return f'[charger]\nid = "{cid}"\ncurrent_limit_a = 32{limit_note}\n{connectors}'


def io7_toml(*, state: Path | str, cid: str = "io7-01", members: str = LONE, head: str = "",
             limit_note: str = "", wiring: tuple[str, ...] = (ALL_PHASES, ALL_PHASES),
             tls: str = "plaintext = true", master: str = "", group: str = STATIC_48,
             tuning: str = "", more: str = "") -> str:
    """An io7.toml: charger `cid` in group "garage" (static, 48 A by default) with
    `members`; `more` holds whole sections ([web], [sim], [mqtt], ...) and `head` the
    file's leading comment. Empty [master] and [group.tuning] are left out."""
    return (head + charger_part(cid, limit_note, wiring)
            + f"[tls]\n{tls}\n" + (f"[master]\n{master}\n" if master else "")
            + f'[group]\nname = "garage"\n{group}\n'
            + (f"[group.tuning]\n{tuning}\n" if tuning else "")
            + f'[group.members]\n{members}\n{more}[state]\ndir = "{state}"\n')


@contextlib.contextmanager
def lone_agent(tmp: Path, text: str) -> Iterator[tuple[Io7Config, Agent]]:
    """io7.toml `text` written in `tmp`, loaded, and its charger's real Agent (no master
    address: it dials nobody), its audit log closed after."""
    path = tmp / "io7.toml"
    path.write_text(text)
    config = load_io7_config(path)
    agent = Agent(config.agent, master_address=lambda: None)
    try:
        yield config, agent
    finally:
        agent.audit.close()


@contextlib.contextmanager
def station_of(tmp: Path, text: str) -> Iterator[Station]:
    """io7d's own Station (build_station) over `lone_agent`."""
    with lone_agent(tmp, text) as (config, agent):
        yield build_station(config, agent)


def spawn_io7d(c: Cluster, cid: str, path: Path, text: str) -> Proc:
    """`text` written to `path`, and a real io7d started on it."""
    path.write_text(text)
    return c.spawn(cid, "-m", "master.io7d", "--config", str(path))


def printed(p: Proc, key: str) -> Any:
    """`key` of the first JSON line on p's stdout that has it; None while there is none
    (and p still runs)."""
    text = p.out.read_text() if p.out.exists() else ""
    for line in text.splitlines():
        if line.startswith("{") and key in (found := json.loads(line)):
            return found[key]
    assert p.popen.poll() is None, f"{p.name} exited: {p.err.read_text()[-2000:]}"
    return None


def wait_printed(p: Proc, key: str, timeout_s: float) -> Any:
    """`printed` once p has printed `key`."""
    wait_for(lambda: printed(p, key) is not None, f"{p.name} prints {key}", timeout_s)
    return printed(p, key)


def ui_of(p: Proc, timeout_s: float) -> tuple[str, Path]:
    """The URL of p's web UI and its installer's password file, as io7d prints them."""
    return str(wait_printed(p, "web", timeout_s)), Path(wait_printed(p, "web_password_file",
                                                                      timeout_s))
