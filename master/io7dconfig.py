"""io7d's config: one TOML per charger, its agent's and its master candidate's settings.

The charger's own tables are the agent's (agent/config.py: [charger], [connectors.N],
[ocpp], [board], [sim], [logging], [state], [tls]); the group's are the master's
(master/config.py: [group] with [group.tuning], [priorities], [ems], and [ct] only on the
charger wired to the Sense CT kit). What io7d adds:

    [group.members]               # required: every member, this charger included
    "io7-01" = "10.0.0.11:50051"  # charger id -> LAN host:port of its master candidate's
    "io7-02" = "10.0.0.12:50051"  #   gRPC service; its Raft peer port is the next one
    "io7-03" = "10.0.0.13:50051"  #   (50052): open both between the chargers

    [group]
    ct_charger = "io7-01"         # dynamic mode: the member wired to the Sense CT kit; it
                                  # alone has [ct], and it is preferred as the master

    [link]                        # optional: the bounds this agent sets on any master
    initial_failsafe_a = 0        #   (agent/config.py [master] without address)
    max_failsafe_a = 6
    min_lease_s = 1
    max_lease_s = 10

    [master]                      # optional: the master candidate (master/config.py)
    cycle_ms = 1000
    lease_cycles = 3
    state_db = "master.sqlite3"   # default: master.sqlite3 in [state] dir

Rules:
1. [charger] group is the [group] name (given or not: a different one is refused).
2. The members name this charger; each address is host:port; two members never share an
   address or a port pair (the Raft port is the gRPC port + 1); 1 to 32 members. A
   one-member group is scenario A's lone charger with a master of its own: no election.
3. [tls] dir is required (no plaintext between chargers): the Raft link and the gRPC
   link use this charger's certificate. `plaintext = true` is for a test bench and turns
   the Raft link off too: io7d then refuses groups of more than one member.
4. Dynamic mode names its `ct_charger` among the members; that charger's file has [ct]
   and no other's does. Another member leads only while the CT holder is down, on the
   group's fallback limit (CT-lost mode, as when the kit is silent).
5. Every error is the agent's or the master's ConfigError naming this file and the key
   as written here ([link] keys included).
6. Every member's [group] tables, [priorities] and [master] cycle_ms/lease_cycles must be
   the same: their digest opens every Raft link, and a member whose digest differs is
   refused (a master with a shorter lease or hold than another's could not cover that
   one's grants when it takes over). The rest ([charger], [connectors], [ct], ...) is each
   charger's own.
7. [web] (master/webconfig.py): the UI, REST API and /metrics; absent, io7d serves none.
8. [mqtt] (master/mqttconfig.py): the MQTT client and Home Assistant discovery; absent,
   no MQTT. Each charger's own (not in the group digest).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.config import _parse as parse_agent
from agent.errors import ConfigError as AgentConfigError
from master.config import MasterConfig
from master.config import _parse as parse_master
from master.errors import ConfigError
from master.mqttconfig import MqttSettings, read_mqtt
from master.webconfig import WebConfig, parse_web

MAX_MEMBERS = 32
MIN_ELECTED_LEASE_S = 1.5  # = io7d.MIN_VALID_S (1 s) + room for two probes and a cycle
AGENT_TABLES = ("charger", "connectors", "ocpp", "board", "sim", "logging", "state")
MASTER_TABLES = ("group", "ct", "ems", "priorities")


@dataclass(frozen=True, slots=True)
class Io7Config:
    """One charger's daemon: its agent, its master candidate and the group's members."""

    file: Path
    agent: AgentConfig
    master: MasterConfig
    members: Mapping[str, str]  # charger id -> host:port of its master candidate
    ct_charger: str | None  # the member wired to the CT kit (dynamic mode), preferred leader
    group_digest: str = ""  # rule 6: the group's settings, the same on every member
    web: WebConfig | None = None  # [web] (master/webconfig.py); None: no web interface
    mqtt: MqttSettings | None = None  # [mqtt] (master/mqttconfig.py); None: no MQTT

    @property
    def charger_id(self) -> str:
        return self.agent.charger_id

    def raft_address(self, charger_id: str) -> str:
        host, _, port = self.members[charger_id].rpartition(":")
        return f"{host}:{int(port) + 1}"

    @property
    def holds_ct(self) -> bool:
        return self.ct_charger == self.charger_id


def load_io7_config(path: Path) -> Io7Config:
    """Read and validate io7.toml. Raises ConfigError (master.errors) naming the key."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(file=path, key="", problem=f"cannot read the config file "
                          f"({exc.strerror or exc}): give io7d --config io7.toml") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file=path, key="", problem=f"not valid TOML: {exc}") from exc
    return parse(path, data)


def _err(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(file=path, key=key, problem=problem)


def parse(path: Path, data: Mapping[str, Any]) -> Io7Config:
    known = {*AGENT_TABLES, *MASTER_TABLES, "tls", "link", "master", "web", "mqtt"}
    for table in data:
        if table not in known:
            raise _err(path, table, f"unknown table or key; io7.toml has {sorted(known)}")
    group = data.get("group")
    if not isinstance(group, dict):
        raise _err(path, "group", "is required: [group] with name, limit_a, ... and "
                   "[group.members] (master/io7dconfig.py)")
    group = dict(group)
    members = _members(path, group.pop("members", None))
    charger = data.get("charger")
    charger_id = charger.get("id") if isinstance(charger, dict) else None
    if isinstance(charger_id, str) and charger_id not in members:
        raise _err(path, "group.members", f"does not name this charger {charger_id!r}: "
                   "list every member of the group, this one included")
    name = group.get("name")
    if isinstance(charger, dict) and "group" in charger and charger["group"] != name:
        raise _err(path, "charger.group", f"{charger['group']!r} is not the [group] name "
                   f"{name!r}: remove charger.group (io7d takes the [group] name)")
    tls = data.get("tls")
    agent = _agent(path, data, members, name, tls)
    ct_charger = _ct_charger(path, group, members, agent.charger_id, "ct" in data)
    master_t = dict(data.get("master") or {})
    for key in ("listen", "id"):
        if key in master_t:
            raise _err(path, f"master.{key}", "is set by io7d: the listen address is this "
                       "charger's entry in [group.members], the id is the charger id")
    master_t["id"] = agent.charger_id
    master_t["listen"] = members[agent.charger_id]
    master_t.setdefault("state_db", str(agent.state_dir / "master.sqlite3"))
    master = parse_master(path, {"master": master_t, "group": group,
                                 **{k: data[k] for k in ("ct", "ems", "priorities") if k in data},
                                 **({"tls": tls} if tls is not None else {})},
                          kit_elsewhere=ct_charger is not None and ct_charger != agent.charger_id)
    lease_s = master.lease_ms / 1000.0
    if len(members) > 1 and lease_s < MIN_ELECTED_LEASE_S:
        raise _err(path, "master.lease_cycles", f"cycle_ms x lease_cycles = {lease_s:g} s: "
                   f"an elected master needs a lease of at least {MIN_ELECTED_LEASE_S:g} s "
                   "(its leases end with its leader lease, and agents refuse leases under "
                   "1 s): raise lease_cycles")
    if master.tls is None and len(members) > 1:
        raise _err(path, "tls.plaintext", "a group of several chargers elects its master "
                   "over mutual TLS only: set [tls] dir (deploy/PKI.md)")
    web = parse_web(path, data.get("web"), members=members, has_tls=master.tls is not None)
    return Io7Config(file=path, agent=agent, master=master, members=members,
                     ct_charger=ct_charger, group_digest=group_digest(data, master), web=web,
                     mqtt=read_mqtt(path, data.get("mqtt")))


def group_digest(data: Mapping[str, Any], master: MasterConfig) -> str:
    """Rule 6: sha256 of what every member must share: the [group] tables as written (its
    members, tuning and ct_charger included), [priorities], and the cycle and lease."""
    shared = {"group": data.get("group"), "priorities": data.get("priorities"),
              "cycle_ms": master.cycle_ms, "lease_cycles": master.lease_cycles}
    text = json.dumps(shared, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _ct_charger(path: Path, group: dict[str, Any], members: Mapping[str, str], me: str,
                has_ct: bool) -> str | None:
    """Rule 4 (pops `ct_charger` from `group`: the master's parser does not know it)."""
    holder = group.pop("ct_charger", None)
    if group.get("mode", "static") != "dynamic":
        if holder is not None:
            raise _err(path, "group.ct_charger", "is only read in dynamic mode: remove it")
        return None
    if not isinstance(holder, str) or holder not in members:
        raise _err(path, "group.ct_charger", f"{holder!r}: dynamic mode needs the id of the "
                   f"member wired to the Sense CT kit, one of {sorted(members)}")
    if holder == me and not has_ct:
        raise _err(path, "ct", "this charger is the group's ct_charger: its file needs [ct]")
    if holder != me and has_ct:
        raise _err(path, "ct", f"only the ct_charger ({holder}) reads the kit: remove [ct] "
                   "here, or make this charger the ct_charger on every member")
    return holder


def _members(path: Path, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise _err(path, "group.members", "is required: charger id -> \"host:port\" of "
                   "every member's master candidate, this charger included")
    if len(raw) > MAX_MEMBERS:
        raise _err(path, "group.members", f"{len(raw)} members: at most {MAX_MEMBERS}")
    out: dict[str, str] = {}
    ports: dict[tuple[str, int], str] = {}
    for cid, address in raw.items():
        key = f"group.members.{cid}"
        host, sep, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65534:
            raise _err(path, key, f"{address!r} must be \"host:port\" with a port in "
                       "1..65534 (the Raft port is the next one)")
        for p in (int(port), int(port) + 1):
            other = ports.get((host, p))
            if other is not None:
                raise _err(path, key, f"{address} overlaps {other}'s ports on {host} (each "
                           "member uses its port and the next one): give it other ports")
            ports[(host, p)] = cid
        out[cid] = address
    return out


def _agent(path: Path, data: Mapping[str, Any], members: Mapping[str, str], group: Any,
           tls: Any) -> AgentConfig:
    """The agent's tables, with its [master] made of [link] (rule 4: keys renamed back)."""
    link = data.get("link") or {}
    if not isinstance(link, dict):
        raise _err(path, "link", "must be a table")
    if "address" in link:
        raise _err(path, "link.address", "is found by election: remove it")
    charger = dict(data.get("charger") or {})
    if isinstance(group, str):
        charger["group"] = group
    own = charger.get("id")
    agent_data: dict[str, Any] = {k: data[k] for k in AGENT_TABLES if k in data}
    agent_data["charger"] = charger
    agent_data["master"] = {"address": members.get(own, "unset:1") if isinstance(own, str)
                            else "unset:1", **link}
    if isinstance(tls, dict):
        agent_data["tls"] = {k: v for k, v in tls.items() if k in ("dir", "plaintext")}
    try:
        return parse_agent(path, agent_data)
    except AgentConfigError as exc:
        key = "link" + exc.key[len("master"):] if exc.key.startswith("master") else exc.key
        raise _err(path, key, exc.problem) from None
