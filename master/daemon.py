"""What makes a master process the only one of its group on this host: its state lock,
its port, its term file, its state folder.

1. State lock: a master holds an exclusive `flock` on `<state_db>.lock` (its pid written
   inside) for as long as it runs. A second master with the same state refuses to start:
   two masters would each share the whole group limit among the agents the kernel gave
   them. The kernel drops the lock when the process dies, even by SIGKILL, so a crash
   never leaves a stale lock behind.
2. Port: gRPC servers bind with SO_REUSEPORT on Linux by default, so a second master on
   the same port would start and the kernel would split the agents between the two. The
   server options turn it off (`protos.link.MASTER_SERVER_OPTIONS`), and `check_port_free`
   probes the address first so the refusal is one clear line rather than gRPC's bind error.
3. Term file: `<state_db>.term` holds the highest term this master has used, written
   durably (fsync, then rename) before any Limits carry it.
4. State folder: `state_folder_ready` creates the folder of [master] state_db and checks
   it is writable at start, so a bad path is one ConfigError, not a late OSError.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from hw.durable import write_text_durably
from master.errors import ConfigError


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def term_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".term")


def hold_state_lock(db_path: Path, *, config_file: Path) -> IO[str]:
    """Take the exclusive lock on the master's state (rule 1); keep the returned file open
    for the life of the master. Raises ConfigError when another process holds it."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(db_path)
    f = open(path, "a+")  # noqa: SIM115 - held open for the life of the master
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise ConfigError(file=config_file, key="master.state_db",
                          problem=f"another io7-master holds {db_path} (pid {holder}): stop "
                          "it first, or give this master its own state_db") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def check_port_free(address: str, *, config_file: Path, key: str) -> None:
    """Raise ConfigError when `address` (host:port) is already bound by another process
    (rule 2). Port 0 (any free port) is always free."""
    host, _, port_text = address.rpartition(":")
    port = int(port_text)
    if port == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(file=config_file, key=key,
                          problem=f"cannot resolve {host!r}: {exc.strerror}") from exc
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        file=config_file, key=key,
                        problem=f"{address} is already in use by another process: stop it "
                        "or choose another port") from None
                raise ConfigError(file=config_file, key=key,
                                  problem=f"cannot listen on {address}: {exc.strerror}"
                                  ) from None


def next_term(db_path: Path) -> int:
    """Read, increment and durably store the term (rule 3)."""
    try:
        term = int(term_path(db_path).read_text().strip() or 0) + 1
    except FileNotFoundError:
        term = 1
    store_term(db_path, term)
    return term


def store_term(db_path: Path, term: int) -> None:
    """Durably store `term` as the highest used (rule 3)."""
    write_text_durably(term_path(db_path), f"{term}\n")


def state_folder_ready(state_db: Path, *, config_file: Path) -> None:
    """Create the folder of [master] state_db and check the master may write in it, so
    a bad path is one line at start (ConfigError), not an OSError from deep inside."""
    folder = state_db.parent.absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = ("a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError)
               else exc.strerror or str(exc))
        raise ConfigError(file=config_file, key="master.state_db", problem=f"cannot create "
                          f"the folder {folder} ({why}): choose a folder the master may "
                          "create and write, e.g. /var/lib/io7/master.sqlite3") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(file=config_file, key="master.state_db", problem=f"cannot write "
                          f"in the folder {folder}: give the master's user write access, or "
                          "choose another state_db")
