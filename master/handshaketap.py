"""The master's fd 2 through a pipe, so refused TLS handshakes reach the security log.

gRPC core refuses a bad client inside its handshake and tells nobody but its own log on
fd 2 (master/handshakelog.py says what it writes, and how it is read). Rules:

1. The `handshaker` tracer must be on before gRPC core starts, and it starts when `grpc`
   is imported (measured on grpcio 1.85: GRPC_TRACE set after `import grpc`, even before
   the first server, is never read). `io7-master` imports grpc before `main` runs, so
   `start` re-executes the same command line (same pid: systemd, the harness and the
   lock see one process) with `handshaker` appended to any GRPC_TRACE of the user's, and
   IO7_HANDSHAKE_TRACE=added saying the tracer's records are ours to drop. If the user
   asked for the tracer, its records are forwarded as they asked. The re-exec costs one
   more interpreter start and import at start (measured ~0.8 s on the loaded 2-core dev
   VM); a launcher that sets both variables itself (e.g. a systemd Environment=) saves it.
2. Then fd 2 becomes a pipe's write end; a daemon thread reads it, forwards all but our
   trace records to the real stderr, and hands each refusal to the sink (the security
   log, once the master has one: `record_to`). Python's own `sys.stderr` is pointed at
   the real stderr directly, so the master's logs, and its cycle's cost, never pass
   through the thread: only what gRPC core writes (a few records per connection, none
   per cycle) does.
3. Robust: an exception while parsing forwards the chunk unchanged, one in the sink is
   reported on stderr; neither stops the thread. `close` (or the thread's end) restores
   fd 2 first, so no writer ever blocks on a pipe nobody reads. The pipe is enlarged
   (1 MiB, Linux's default maximum) so a reconnect storm's handshakes never wait for it.
4. GRPC_VERBOSITY=ERROR or NONE hides the tracer (measured): then there is no tap, and
   `problem` says why, for the master to log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from hw.securitylog import SecurityLog
from master import audit
from master.handshakelog import HandshakeLog, HandshakeRefusal

TRACE = "GRPC_TRACE"
ADDED = "IO7_HANDSHAKE_TRACE"  # rule 1: set to "added" when we turned the tracer on
TRACER = "handshaker"
QUIET = ("ERROR", "NONE")  # rule 4: GRPC_VERBOSITY values that hide the tracer
PIPE_BYTES = 1 << 20  # rule 3: /proc/sys/fs/pipe-max-size's default
READ_BYTES = 1 << 16


def traced(env: Mapping[str, str]) -> bool:
    """True when gRPC core started with `env` writes the handshaker trace."""
    names = [t.strip() for t in env.get(TRACE, "").split(",")]
    return TRACER in names or "all" in names


def with_tracer(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the tracer appended to its GRPC_TRACE and marked as ours (rule 1)."""
    trace = env.get(TRACE, "").strip(", ")
    return {**env, TRACE: f"{trace},{TRACER}" if trace else TRACER, ADDED: "added"}


class Logger(Protocol):
    def error(self, event: str, **kw: Any) -> Any: ...


class Address:
    """A peer address for `audit.record` (which asks a context for `peer()`)."""

    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


class HandshakeTap:
    """Rule 2: fd `fd` (2) through a pipe read by a daemon thread. `problem` is "" while it
    taps, else why it does not (rule 4)."""

    def __init__(self, *, fd: int = 2, drop_trace: bool = True, python_stderr: bool = True,
                 problem: str = "") -> None:
        self.problem = problem
        self.fd = fd
        self.sink: Callable[[HandshakeRefusal], None] | None = None
        self._parser = HandshakeLog(drop_trace=drop_trace)
        self._saved = -1
        self._thread: threading.Thread | None = None
        self._stderr: TextIO | None = None
        if problem:
            return
        self._saved = os.dup(fd)
        read, write = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # not Linux, or a lower limit: a smaller pipe
            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.dup2(write, fd)  # the one write end left: restoring fd restores EOF (rule 3)
        os.close(write)
        self._read = read
        if python_stderr:  # rule 2: the master's own logs bypass the pipe
            self._stderr, sys.stderr = sys.stderr, os.fdopen(
                os.dup(self._saved), "w", buffering=1, encoding="utf-8",
                errors="backslashreplace")
        self._thread = threading.Thread(target=self._run, name="handshake-tap", daemon=True)
        self._thread.start()

    def record_to(self, security: SecurityLog | None, *, log: Logger | None = None) -> None:
        """Write each refusal to `security` from now on (None: stop). With no tap, say
        why on `log` instead (rule 4)."""
        if self.problem and log is not None:
            log.error("refused TLS handshakes will not reach the security log",
                      why=self.problem)
        self.sink = None if security is None else lambda r: record(security, r)

    def _run(self) -> None:
        try:
            while chunk := os.read(self._read, READ_BYTES):
                self._handle(chunk)
            self._write(self._parser.flush())
        finally:
            self._restore()

    def _handle(self, chunk: bytes) -> None:
        try:
            forward, refusals = self._parser.feed(chunk)
        except Exception:  # rule 3: a parser bug never eats stderr
            self._parser = HandshakeLog(drop_trace=self._parser.drop_trace)
            forward, refusals = chunk, []
        self._write(forward)
        for refusal in refusals:
            try:
                if self.sink is not None:
                    self.sink(refusal)
            except Exception as exc:  # rule 3
                self._write(f"io7-master: cannot record the refused handshake of "
                            f"{refusal.peer} ({refusal.reason}): {exc!r}\n".encode())

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._saved, data):]
        except OSError:
            pass  # stderr is gone (its reader exited): keep reading for the security log

    def _restore(self) -> None:
        with contextlib.suppress(OSError):
            os.dup2(self._saved, self.fd)

    def close(self) -> None:
        """Restore fd 2 and Python's stderr; forward what was still in the pipe."""
        if self._thread is None:
            return
        self._restore()  # the pipe's last write end closes: the thread reads EOF
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():  # stuck in the sink: leave it its file descriptors
            return
        self._thread = None
        if self._stderr is not None:
            sys.stderr.flush()
            sys.stderr, self._stderr = self._stderr, None
        os.close(self._read)
        os.close(self._saved)


def record(security: SecurityLog, refusal: HandshakeRefusal) -> None:
    """One `handshake_refused` (or `handshake_abandoned`) line: peer, reason."""
    kind = audit.Kind.HANDSHAKE_ABANDONED if refusal.abandoned else audit.Kind.HANDSHAKE_REFUSED
    audit.record(security, kind, Address(refusal.peer), refusal.reason)


def start(*, reexec: bool) -> HandshakeTap:
    """The tap for this process (rule 1: may re-execute it first, and then not return).
    Without `reexec` (a caller that is not the command line) and no tracer, a tap with
    its `problem`."""
    env = os.environ
    if not traced(env):
        if not reexec:
            return HandshakeTap(problem=f"{TRACE} has no {TRACER!r} and the process cannot "
                                "re-execute itself: start it as io7-master")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, with_tracer(env))
    verbosity = env.get("GRPC_VERBOSITY", "").strip().upper()
    if verbosity in QUIET:
        return HandshakeTap(problem=f"GRPC_VERBOSITY={verbosity} hides gRPC core's handshake "
                            "trace: unset it (or set INFO)")
    return HandshakeTap(drop_trace=env.get(ADDED) == "added")
