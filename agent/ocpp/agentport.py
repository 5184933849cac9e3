"""The agent as agent.ocpp sees it: the `ChargerPort` of the charge point, and the
agent's OCPP side built from its config (`build_ocpp`: its stores in
`<state_dir>/ocpp.db`, its security events in the agent's security log).

The port belongs to the OCPP side: `ChargerAgent` says what it needs from the agent, and
agent.service.Agent provides it without importing anything back (it passes itself to
`OcppPort`, where mypy checks that it fits)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.ocpp.availability import Availability, AvailabilityChange
from agent.ocpp.configkeys import DB_FILE, ConfigurationStore, open_db
from agent.ocpp.connection import LinkState, OcppClient
from agent.ocpp.corehandlers import UnlockResult
from agent.ocpp.keyvalues import phase_rotation
from agent.ocpp.profilestore import ProfileStore
from agent.ocpp.reports import BootIdentity
from agent.ocpp.sessions import OcppSessions
from agent.ocpp.settings import OcppSettings
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import StopReason
from agent.ocpp.ukdefault import UkDefault
from hw.securitylog import SecurityLog


def build_sessions(config: AgentConfig, ocpp: OcppSettings, keys: ConfigurationStore, *,
                   online: Callable[[], bool]) -> OcppSessions:
    """The sessions of this charger; OSError or sqlite3.Error if ocpp.db cannot be
    opened. The UK default's random delays are seeded from [sim] seed when given."""
    path = config.state_dir / DB_FILE
    return OcppSessions(
        store=OcppStore(path), profile_store=ProfileStore(path), keys=keys,
        hard_max_a=config.hard_max_a, charger_limit_a=config.charger_limit_a,
        mode=ocpp.auth_mode, free_id_tag=ocpp.free_id_tag, local_list=ocpp.local_list,
        uk_default=UkDefault(ocpp.uk_default, random.Random(config.sim_seed)),
        online=online, charger_id=config.charger_id)


class ChargerAgent(Protocol):
    """What `OcppPort` needs from the agent (agent.service.Agent)."""

    hard_reset_requested: bool  # the step resets the charger's latched faults
    config: AgentConfig

    @property
    def sockets(self) -> Mapping[int, object]:
        """The charger's sockets by connector id."""

    @property
    def availability(self) -> Availability | None:
        """The connectors' persisted availability (None without [ocpp])."""

    @property
    def sessions(self) -> OcppSessions | None:
        """Authorisation and transactions (None without [ocpp])."""

    def busy(self) -> set[int]:
        """The connectors with a session (ChangeAvailability waits for them)."""


class OcppPort:
    """The agent as the OCPP charge point sees it (agent.ocpp.corehandlers.ChargerPort)."""

    def __init__(self, agent: ChargerAgent) -> None:
        self.agent = agent

    @property
    def connector_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self.agent.sockets))

    def change_availability(self, connector_id: int, operative: bool) -> AvailabilityChange:
        assert self.agent.availability is not None  # the port exists only with [ocpp]
        return self.agent.availability.request(connector_id, operative,
                                               busy=self.agent.busy())

    def unlock_connector(self, connector_id: int) -> UnlockResult:
        """OCPP 1.6 5.17: a transaction there is stopped first (UnlockCommand); the
        socket has no cable lock to release (hw has no such capability yet)."""
        if self.agent.sessions is not None:
            self.agent.sessions.stop(connector_id, StopReason.UNLOCK_COMMAND)
        return UnlockResult.NOT_SUPPORTED

    def reset(self, hard: bool) -> None:
        if hard:
            self.agent.hard_reset_requested = True

    @property
    def state_dir(self) -> Path:
        return self.agent.config.state_dir


@dataclass(frozen=True, slots=True)
class OcppSide:
    """The agent's OCPP parts, built together by `build_ocpp`."""

    db: sqlite3.Connection
    availability: Availability
    sessions: OcppSessions
    client: OcppClient


def build_ocpp(agent: ChargerAgent, ocpp: OcppSettings, *,
               security_log: SecurityLog) -> OcppSide:
    """The charge point of `agent`: its stores in `<state_dir>/ocpp.db`, its security
    events in the agent's `security_log`. ConfigError (key state.dir) if the folder
    cannot hold them."""
    config = agent.config
    clients: list[OcppClient] = []  # `online` asks the client made below
    try:
        db = open_db(config.state_dir)
        availability = Availability(db, agent.sockets)
        store = ConfigurationStore(db, given={
            "NumberOfConnectors": str(len(agent.sockets)),
            "ConnectorPhaseRotation": phase_rotation(
                {c.connector_id: c.wiring for c in config.connectors})})
        sessions = build_sessions(config, ocpp, store, online=lambda: bool(clients)
                                  and clients[0].state is LinkState.ACCEPTED)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(file=config.file, key="state.dir", problem=f"cannot open "
                          f"{config.state_dir}/{DB_FILE}: {exc}") from exc
    clients.append(OcppClient(ocpp, identity=BootIdentity(serial_number=ocpp.serial_number),
                              port=OcppPort(agent), store=store, sessions=sessions,
                              security_log=security_log))
    return OcppSide(db=db, availability=availability, sessions=sessions, client=clients[0])
