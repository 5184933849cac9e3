"""Refused TLS handshakes, read from gRPC core's own log (issue 11: "each refusal leaves a
security log line"). Pure: bytes in, forwarded bytes and refusals out; no I/O.

gRPC refuses a client with no certificate, another CA's or an expired one inside its TLS
handshake: no handler runs, and grpcio offers no hook. Its C core does write each
handshake's steps to fd 2 when its `handshaker` tracer is on (master/handshaketap.py
turns it on and feeds this parser what the process writes to fd 2). Rules:

1. A log record of gRPC core starts with a header, `I1202 01:56:17.959388  1870
   file.cc:155] message`; a status in a message may add lines that do not
   (`=== Source Location Trace: ===`, `src/core/...:68`, a blank line, then the
   record's tail). Records arrive whole or split anywhere across chunks (a partial line
   waits for its newline); different threads' records interleave only between records.
2. The handshake's outcome is the `handshaker.cc` record `CallNextHandshakerLocked:
   error=<status> ... args={... grpc.internal.endpoint_peer_address=ipv4:10.0.0.7:40512
   ... grpc.internal.server_credentials=0x...}`: a status other than OK on the server
   side (server credentials in its args) is one `HandshakeRefusal`, its peer written as
   gRPC writes `context.peer()`. A client-side failure (none of our servers) is not one.
3. The reason is short and human (`REASONS`, from the OpenSSL/TSI text); an unknown error
   keeps its own first line, trimmed. A peer that closes during the handshake, or a
   handshake cut short by the master (its timeout, or the master stopping), is
   `abandoned`: not a refusal of the master's, but worth seeing (an agent that does not
   trust this master's certificate closes like that).
4. With `drop_trace` (the tracer was turned on by us, not asked for by whoever started
   the master) the tracer's records are dropped; every other byte is forwarded unchanged,
   including core's own `Handshake failed with error ...` line, which it writes without
   the tracer. A line after a trace record is taken as its continuation only if it looks
   like one (rule 1) or while the outcome record still waits for its tail: nothing else
   written to fd 2 is ever swallowed.

The format is gRPC's, not a contract: tests/master/test_handshakelog.py reads real captures
(tests/master/handshake_traces/) and tests/e2e/test_mtls.py pins it against the installed
grpcio, so an upgrade that changes it fails CI instead of silently logging nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REASONS", "HandshakeLog", "HandshakeRefusal", "reason_for"]

# Rule 1: severity, MMDD, time, thread id, file:line.
_HEADER = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (?P<file>[^ :\]]+):\d+\] ")
_TRACE_FILES = (b"handshaker.cc",)
_TRACE_MESSAGE = re.compile(rb"handshake manager 0x[0-9a-f]+: ")  # channel_trace.h's
_OUTCOME = b"CallNextHandshakerLocked: error="
_CONTINUATION = re.compile(rb"(=== Source Location Trace: ===\s*|[\w./-]+:\d+\s*|\s*)\n")
_TAIL = re.compile(rb" shutdown=(true|false) index=\d+, args=\{.*\}\s*$", re.S)
_PEER = re.compile(r"grpc\.internal\.endpoint_peer_address=([^,}\s]+)")
_SERVER = "grpc.internal.server_credentials="
MAX_LINE_BYTES = 1 << 20  # a longer "line" is forwarded as it is: nothing waits forever
MAX_OUTCOME_LINES = 20  # an outcome record is ~4 lines; past this it is not one
MAX_REASON_CHARS = 200

# Rule 3: (text in the error, reason, abandoned), each seen in a capture of
# tests/master/handshake_traces/. First match wins.
REASONS: tuple[tuple[str, str, bool], ...] = (
    ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "no client certificate", False),
    ("certificate has expired", "certificate expired", False),
    ("certificate is not yet valid", "certificate not yet valid", False),
    ("unable to get local issuer certificate",
     "certificate from another CA (unknown issuer)", False),
    ("WRONG_VERSION_NUMBER", "not TLS (plaintext or garbage)", False),
    ("HTTP_REQUEST", "not TLS (plaintext or garbage)", False),  # also HTTPS_PROXY_REQUEST
    ("Handshake read failed (Socket closed)",
     "closed by the peer during the handshake (a client that does not trust this "
     "master's certificate does that, or a port probe)", True),
    ("Connection reset by peer", "reset by the peer during the handshake", True),
    ("Handshake read failed (Endpoint closing)",
     "cut short by this master (the handshake timed out, or the master is stopping)", True),
)
_NOISE_PREFIXES = ("UNKNOWN: ", "Ssl handshake failed (TSI_PROTOCOL_FAILURE): ")


@dataclass(frozen=True, slots=True)
class HandshakeRefusal:
    """One failed server-side handshake: `peer` as gRPC names it ("ipv4:10.0.0.7:40512"),
    `reason` short and human, `abandoned` when the peer left or the master cut it short
    rather than the master refusing the peer (rule 3)."""

    peer: str
    reason: str
    abandoned: bool = False


def reason_for(error: str) -> tuple[str, bool]:
    """The short reason for gRPC's handshake error text, and whether it is `abandoned`."""
    for needle, reason, abandoned in REASONS:
        if needle in error:
            return reason, abandoned
    text = error.split("\n", 1)[0].removesuffix(": OK").strip()
    for prefix in _NOISE_PREFIXES:
        text = text.removeprefix(prefix)
    return (text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 1] + "…",
            False)


def _outcome(record: bytes) -> HandshakeRefusal | None:
    """Rule 2: the refusal in one whole outcome record, or None."""
    text = record.decode("utf-8", "replace")
    error = text.split(_OUTCOME.decode(), 1)[1]
    error = re.split(r" shutdown=(?:true|false) index=\d+, args=\{", error, maxsplit=1)[0]
    if error.startswith("OK") or _SERVER not in text:
        return None
    peer = _PEER.search(text)
    reason, abandoned = reason_for(error)
    return HandshakeRefusal(peer.group(1) if peer else "unknown", reason, abandoned)


class HandshakeLog:
    """Feed it what the process writes to fd 2; it returns what to forward and the
    refusals it saw. One instance per stream (it keeps a partial line and the record in
    progress)."""

    def __init__(self, *, drop_trace: bool = True) -> None:
        self.drop_trace = drop_trace
        self._partial = b""
        self._record: list[bytes] | None = None  # the trace record the last line was part of
        self._outcome = False  # ... and whether it is an outcome still waiting for its tail

    def feed(self, data: bytes) -> tuple[bytes, list[HandshakeRefusal]]:
        """Forwarded bytes and refusals for `data` (complete lines only; a partial line
        waits for the next call, or `flush`)."""
        data = self._partial + data
        lines = data.splitlines(keepends=True)
        self._partial = b""
        if lines and not lines[-1].endswith(b"\n") and len(lines[-1]) <= MAX_LINE_BYTES:
            self._partial = lines.pop()
        forward: list[bytes] = []
        refusals: list[HandshakeRefusal] = []
        for line in lines:
            keep, refusal = self._line(line)
            if keep:
                forward.append(line)
            if refusal is not None:
                refusals.append(refusal)
        return b"".join(forward), refusals

    def flush(self) -> bytes:
        """The partial line left at the end of the stream, to forward."""
        rest, self._partial, self._record = self._partial, b"", None
        return rest

    def _line(self, line: bytes) -> tuple[bool, HandshakeRefusal | None]:
        """(forward this line?, the refusal it completes)."""
        header = _HEADER.match(line)
        if header is not None:
            message = line[header.end():]
            trace = (header.group("file") in _TRACE_FILES
                     or _TRACE_MESSAGE.match(message) is not None)
            self._record = [line] if trace else None
            self._outcome = trace and message.startswith(_OUTCOME)
            return (not (trace and self.drop_trace)), self._complete()
        if self._record is None:
            return True, None
        if (self._outcome and len(self._record) < MAX_OUTCOME_LINES) or _CONTINUATION.fullmatch(
                line):
            self._record.append(line)
            return not self.drop_trace, self._complete()
        self._record = None  # not part of the trace record: someone else's line
        return True, None

    def _complete(self) -> HandshakeRefusal | None:
        """The refusal of the outcome record in progress once its tail has arrived."""
        if not self._outcome or self._record is None or not _TAIL.search(self._record[-1]):
            return None
        record, self._outcome = b"".join(self._record), False
        return _outcome(record)
