"""One way to open the agent's OCPP database: every table in `ocpp.db` is written durably.

WAL lets a reader (a restarted process, the sender loop) see every committed write while
another connection writes; synchronous=FULL fsyncs the WAL at each commit, so a message
the agent enqueued survives a power cut or kill -9 (issue 6: nothing lost).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_BUSY_TIMEOUT_S = 5.0  # another connection of ours holds the write lock briefly


def connect_durable(path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
                    autocommit: bool = True) -> sqlite3.Connection:
    """Open `path` in WAL mode with synchronous=FULL. `autocommit`: no implicit
    transactions (the caller runs explicit BEGIN/COMMIT); else sqlite3's default."""
    if autocommit:
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    else:
        db = sqlite3.connect(path, timeout=busy_timeout_s)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit
    return db


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One SQLite transaction on a connection opened with `autocommit`: committed (and the
    WAL fsynced) when the block succeeds, rolled back when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
