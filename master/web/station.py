"""`Station`: what io7d hands every web interface (the UI, REST, metrics, MQTT).

io7d (master/io7d.py) builds one per charger and keeps it current: it sets the running
group master while this member leads (`set_master`, from master.service.serve's
`on_master` callback) and the election's view after every Raft tick (`set_view`).
Routers only read it: `master()` is None on a member that does not lead, and the group
pages then point at `leader_web_url()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hw.securitylog import SecurityLog
from master.errors import ConfigError
from master.web.accounts import USERS_FILE, Accounts
from protos.io7.cluster.v1 import cluster_pb2 as pb

if TYPE_CHECKING:
    from agent.service import Agent
    from master.election.raft import ElectionView
    from master.io7dconfig import Io7Config
    from master.service import Master


class Station:
    """One charger's io7d as its interfaces see it (module doc)."""

    def __init__(self, config: Io7Config, agent: Agent, *, accounts: Accounts,
                 web_urls: Mapping[str, str], clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.config = config
        self.agent = agent
        self.accounts = accounts
        self.web_urls = dict(web_urls)  # charger id -> its UI's URL (io7dconfig [web])
        self.clock = clock
        self.started_s = clock()
        self._master: Master | None = None
        self._view: ElectionView | None = None

    @property
    def charger_id(self) -> str:
        return self.config.charger_id

    @property
    def security(self) -> SecurityLog:
        """This charger's security log (the agent's, agent/audit.py)."""
        return self.agent.audit.log

    @property
    def lone(self) -> bool:
        """A one-member group: no election, this charger always leads (io7d rule 5)."""
        return len(self.config.members) == 1

    # --- kept current by io7d ---------------------------------------------------------
    def set_master(self, master: Master | None) -> None:
        self._master = master

    def set_view(self, view: ElectionView) -> None:
        self._view = view

    # --- read by the routers ----------------------------------------------------------
    def master(self) -> Master | None:
        """The group's running master while this member leads, else None."""
        return self._master

    def leader_id(self) -> str | None:
        if self.lone:
            return self.charger_id
        return None if self._view is None else self._view.leader_id

    def election(self) -> dict[str, Any]:
        """term, leader_id, leading, members {id: online?} (online: linked to us by Raft,
        or this charger itself; a follower sees only its leader's link)."""
        view = self._view
        master = self._master
        members = {cid: cid == self.charger_id for cid in self.config.members}
        if master is not None:
            for member in master.status.members:
                if member.charger_id in members:
                    members[member.charger_id] = member.online
            members[self.charger_id] = True
        if view is None:
            term = 0 if master is None else master.term
            return {"term": term, "leader_id": self.leader_id(),
                    "leading": master is not None, "members": members}
        return {"term": view.term, "leader_id": view.leader_id, "leading": view.leading,
                "members": members}

    def leader_web_url(self) -> str | None:
        """The leading member's UI URL, None during an election."""
        leader = self.leader_id()
        return None if leader is None else self.web_urls.get(leader)

    def web_url(self) -> str | None:
        """This charger's own UI URL."""
        return self.web_urls.get(self.charger_id)

    def charger_state(self) -> pb.AgentState:
        """This charger's own state now (what its agent would send its master; before
        its first step only its id and lease), without using up a report's sequence."""
        return self.agent.state(self.agent.clock(), report=False)

    def uptime_s(self) -> float:
        return self.clock() - self.started_s


def build_station(config: Io7Config, agent: Agent) -> Station:
    """io7d's Station. With [web], its accounts are opened (made at first start: the
    installer's password file, accounts.py rule 1); without, nobody can log in."""
    state_dir = config.agent.state_dir
    if config.web is None:
        return Station(config, agent, accounts=Accounts(state_dir / USERS_FILE, {}),
                       web_urls={})
    try:
        accounts, _ = Accounts.open(state_dir)
    except (OSError, ValueError) as exc:
        raise ConfigError(file=config.file, key="state.dir", problem=f"the web accounts: "
                          f"{exc}") from None
    return Station(config, agent, accounts=accounts, web_urls=config.web.member_urls)
