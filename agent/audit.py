"""The agent's security log (issue 11 §3): one per charger, open for the agent's life.

1. One file, `<state.dir>/security.jsonl` (hw.securitylog: append-only, size-bounded,
   fsynced, flood-limited per kind, redacted). agent.service.Agent opens it at start
   (making the folder if missing) and closes it at stop; the master link and the OCPP
   link (agent.ocpp.security) write into the same one, so a charger without [ocpp] has
   one too, and one process is its only writer.
2. The agent's kinds: `agent_started` / `agent_stopped`; `plaintext` (the master link
   without TLS, warned as the master does); `config_loaded` (the SHA-256 of the config
   file, so a changed config is visible: the hash, never the content, which may hold the
   OCPP AuthorizationKey); `master_tls_refused` (the TLS handshake with the master
   failed: a fake master, or our certificate refused); `master_refused` (the master
   refused this charger's stream, with its reason); `master_settings_refused` (a Welcome
   or Limits outside this agent's bounds, agent/bounds.py); `master_term` (a new master
   term obeyed, old -> new).
3. Retries do not fill it: the link retries every 0.2-2 s and a refused Limits comes
   every cycle, so a refusal is written when its reason is new, and the same reason
   again at most once per REPEAT_S (`Repeats`, pure: `now` comes in). A settings refusal
   is written once per reason until a message is obeyed again.
4. A failed write never changes what the agent does: it is logged as an error
   (master/audit.py rule 3). Callers pass no secrets (hw.securitylog rule 5 redacts as a
   second line).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import structlog

from agent.bounds import Refusal
from agent.errors import ConfigError
from hw.securitylog import SecurityLog, config_digest
from protos.tls import TlsMaterial

SECURITY_LOG = "security.jsonl"  # rule 1, in the agent's state folder
REPEAT_S = 60.0  # rule 3: a refusal that persists shows about once a minute, no more
PLAINTEXT_WARNING = ("PLAINTEXT: no TLS on the master link ([tls] plaintext = true): anyone "
                     "on the LAN may pose as the master; for a test bench only")
log = structlog.get_logger("agent.audit")


class Repeats:
    """Rule 3: whether a refusal is worth writing. `every_s` None: only a new reason."""

    def __init__(self, every_s: float | None = REPEAT_S) -> None:
        self.every_s = every_s
        self._reason: str | None = None
        self._at = 0.0

    def due(self, reason: str, now_s: float) -> bool:
        """True (and remembered) when `reason` differs from the last one written, or the
        same was written `every_s` or more before `now_s`."""
        if reason == self._reason and (self.every_s is None
                                       or now_s - self._at < self.every_s):
            return False
        self._reason, self._at = reason, now_s
        return True

    def clear(self) -> None:
        """The refusal is over: its reason is new again next time."""
        self._reason = None


class AgentAudit:
    """The agent's security log (rule 1) and what it writes (rule 2). Raises ConfigError
    (key state.dir) when the folder or the file cannot be made. `clock`: monotonic s."""

    def __init__(self, *, charger_id: str, config_file: Path, state_dir: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.log = SecurityLog(state_dir / SECURITY_LOG)
        except OSError as exc:
            raise ConfigError(file=config_file, key="state.dir", problem=f"cannot open the "
                              f"security log {state_dir / SECURITY_LOG}: {exc}") from exc
        self.charger_id, self.config_file, self.clock = charger_id, config_file, clock
        self._settings = Repeats(every_s=None)
        self._link = {"master_tls_refused": Repeats(), "master_refused": Repeats()}
        self._term: int | None = None

    def record(self, kind: str, detail: str, *, who: str = "", peer: str = "") -> None:
        """Append one entry; rule 4: a failed write is logged, never raised."""
        try:
            self.log.record(kind, who=who, peer=peer, detail=detail)
        except OSError as exc:
            log.error("cannot write the security log: check the state folder's disk and "
                      "permissions", path=str(self.log.path), error=str(exc), kind=kind,
                      detail=detail)

    def started(self, *, master: str | None, tls: TlsMaterial | None, ocpp: bool,
                term: int) -> None:
        """The agent starts: plaintext (if so), the config's hash, then the start."""
        if master is not None and tls is None:
            self.record("plaintext", PLAINTEXT_WARNING, who=self.charger_id, peer=master)
        self.record("config_loaded", f"{self.config_file}: sha256 "
                    f"{config_digest(self.config_file)}", who=self.charger_id)
        link = ("agent-only (no master)" if master is None else
                f"master {master} in PLAINTEXT" if tls is None else
                f"master {master} with mutual TLS as {tls.identity}")
        self.record("agent_started", f"charger {self.charger_id}, {link}, last seen term "
                    f"{term}, OCPP {'on' if ocpp else 'off'}", who=self.charger_id)
        self._term = term

    def stopped(self, term: int) -> None:
        self.record("agent_stopped", f"charger {self.charger_id}: PWM off, contactors "
                    f"open; last seen term {term}", who=self.charger_id)

    def settings_refused(self, what: str, *, master_id: str, term: int,
                         refusal: Refusal) -> None:
        """A Welcome or Limits outside this agent's bounds, once per reason (rule 3)."""
        if self._settings.due(refusal.reason, self.clock()):
            self.record("master_settings_refused", f"{what} of term {term} refused: "
                        f"{refusal.field} = {refusal.value:g}, bound {refusal.bound or '-'}: "
                        f"{refusal.reason}", who=master_id)

    def obeyed(self, *, master_id: str, term: int) -> None:
        """A Welcome or Limits obeyed: a settings refusal is over; a new term is logged."""
        self._settings.clear()
        if term != self._term:
            self.record("master_term", f"term {self._term} -> {term} obeyed, master "
                        f"{master_id or '?'}", who=master_id)
            self._term = term

    def link_refused(self, kind: str, error: str, *, address: str) -> None:
        """The master link failed: `kind` master_tls_refused (the handshake) or
        master_refused (the master's refusal), written as rule 3 allows."""
        if self._link[kind].due(error, self.clock()):
            what = ("TLS handshake with the master failed: a fake master, or it refused "
                    "our certificate" if kind == "master_tls_refused" else
                    "the master refused this charger")
            self.record(kind, f"{what}: {error}", who=self.charger_id, peer=address)

    def link_ok(self) -> None:
        """Joined: a later refusal of the same reason is news again."""
        for repeats in self._link.values():
            repeats.clear()

    def close(self) -> None:
        try:
            self.log.close()
        except OSError as exc:
            log.error("cannot close the security log", path=str(self.log.path),
                      error=str(exc))
