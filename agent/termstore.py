"""The highest master term this agent has seen, kept across restarts.

An agent obeys only the newest term it has seen (agent/limits.py rule 1) and says that
term in its Hello, so that a master which lost its own term file (a replaced SD card)
moves above it instead of being ignored (master/control.py rule 4). Both only work if
the agent still knows the term after a restart or a power cut, hence this file.

1. One small text file in the agent's state folder, written only when the term grows
   (a new master, at most a few times a year), durably: fsync, then rename.
2. A missing file is term 0 (a new charger: any master may lead it). A file that cannot
   be read as a term is reported (`TermFileError`, with what to do) rather than read as
   0: the caller decides. `TermKeeper`, the agent's use of it, logs it and starts from
   0 (the same as a new charger), and a store that fails is logged and retried at the
   next higher term: neither may stop a charger from charging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.errors import AgentError
from hw.durable import write_text_durably

TERM_FILE = "master-term"
MAX_TERM = 2**53  # the master refuses larger terms in a Hello (master/wire.py)


class TermFileError(AgentError):
    """The term file exists but holds no term; delete it to start from term 0."""


def term_file(state_dir: Path) -> Path:
    return state_dir / TERM_FILE


def load_last_seen_term(state_dir: Path) -> int:
    """The stored term, 0 when there is none. Raises TermFileError when the file cannot
    be read or holds something else than a term in [0, 2**53]."""
    path = term_file(state_dir)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise TermFileError(f"{path}: cannot read the last seen master term: "
                            f"{exc.strerror}; fix its permissions or delete it") from exc
    if not text.isdigit() or int(text) > MAX_TERM:
        raise TermFileError(f"{path}: {text[:40]!r} is not a master term (0-{MAX_TERM}); "
                            "delete the file to start from term 0")
    return int(text)


def store_last_seen_term(state_dir: Path, term: int) -> None:
    """Durably store `term` (rule 1). Raises OSError when the folder is not writable."""
    if not 0 <= term <= MAX_TERM:
        raise ValueError(f"term {term} is outside [0, {MAX_TERM}]")
    write_text_durably(term_file(state_dir), f"{term}\n")


class TermKeeper:
    """The agent's last seen term on disk: `load` once at start, `keep` after every
    obeyed Welcome or Limits (it writes only when the term grew). `state_dir` None:
    agent-only mode, nothing is kept. `log` is the agent's bound structlog logger."""

    def __init__(self, state_dir: Path | None, log: Any) -> None:
        self._dir = state_dir
        self._log = log
        self._stored = 0

    def load(self) -> int:
        """The stored term; 0 (with a warning) when the file holds none."""
        if self._dir is None:
            return 0
        try:
            self._stored = load_last_seen_term(self._dir)
        except TermFileError as err:
            self._log.warning("last seen master term unreadable: starting from 0",
                              why=str(err))
            self._stored = 0
        return self._stored

    def keep(self, term: int) -> None:
        """Store `term` when it is above the stored one."""
        if self._dir is None or term <= self._stored:
            return
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            store_last_seen_term(self._dir, term)
        except OSError as err:
            self._log.warning("last seen master term not saved", term=term, why=str(err))
            return
        self._stored = term
