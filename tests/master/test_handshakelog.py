"""master/handshakelog.py against real gRPC core output: one capture per scenario in
handshake_traces/ (made by its capture.py with the installed grpcio: a TLS server as
the master runs it, GRPC_TRACE=handshaker, and one client per scenario)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from master.handshakelog import HandshakeLog, HandshakeRefusal

TRACES = Path(__file__).parent / "handshake_traces"
IPV4 = "ipv4:127.0.0.1:"
CLOSED = ("closed by the peer during the handshake (a client that does not trust this "
          "master's certificate does that, or a port probe)")

# scenario: (peer prefix, reason, abandoned), or None when the server saw no failure
EXPECTED: dict[str, tuple[str, str, bool] | None] = {
    "good": None,
    "no_certificate": (IPV4, "no client certificate", False),
    "another_ca": (IPV4, "certificate from another CA (unknown issuer)", False),
    "ipv6_another_ca": ("ipv6:%5B::1%5D:", "certificate from another CA (unknown issuer)",
                        False),
    "expired": (IPV4, "certificate expired", False),
    "not_yet_valid": (IPV4, "certificate not yet valid", False),
    "self_signed": (IPV4, "SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
                    "CERTIFICATE_VERIFY_FAILED: self signed certificate", False),
    "plaintext_grpc": (IPV4, "not TLS (plaintext or garbage)", False),
    "http_get": (IPV4, "not TLS (plaintext or garbage)", False),
    "garbage": (IPV4, "not TLS (plaintext or garbage)", False),
    "connect_close": (IPV4, CLOSED, True),
    "client_refuses_server": (IPV4, CLOSED, True),
    "tls_reset": (IPV4, "reset by the peer during the handshake", True),
    "silent_timeout": (IPV4, "cut short by this master (the handshake timed out, or the "
                       "master is stopping)", True),
    "client_side": None,  # a client's own failed handshake: not a refusal of ours
}
# What gRPC core writes without the tracer: the only lines a capture keeps when dropping.
UNTRACED = (b"] gRPC Tracers: ", b"ssl_transport_security.cc:")
FOREIGN = [  # other writers of fd 2, between records
    b'{"event": "master listening", "level": "info"}\n',
    b"Traceback (most recent call last):\n",
    b'  File "x.py", line 1, in <module>\n',
    b"\n",
    b"E1202 02:00:00.000000    1 tcp_server.cc:10] some other core error\n",
]


def capture(name: str) -> bytes:
    return (TRACES / f"{name}.stderr").read_bytes()


def kept(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True)
                    if any(mark in line for mark in UNTRACED))


def run(parser: HandshakeLog, chunks: list[bytes]) -> tuple[bytes, list[HandshakeRefusal]]:
    out, refusals = [], []
    for chunk in chunks:
        forward, found = parser.feed(chunk)
        out.append(forward)
        refusals += found
    return b"".join(out) + parser.flush(), refusals


def test_every_scenario_has_a_capture() -> None:
    assert {p.stem for p in TRACES.glob("*.stderr")} == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_capture_gives_its_refusal_and_forwards_the_untraced_lines(name: str) -> None:
    data = capture(name)
    forward, refusals = run(HandshakeLog(), [data])
    expected = EXPECTED[name]
    if expected is None:
        assert refusals == []
    else:
        prefix, reason, abandoned = expected
        [refusal] = refusals
        assert refusal.peer.startswith(prefix) and refusal.peer[len(prefix):].isdigit()
        assert (refusal.reason, refusal.abandoned) == (reason, abandoned)
    assert forward == kept(data)
    assert b"handshaker.cc" not in forward and b"handshake manager" not in forward


@pytest.mark.parametrize("name", ["no_certificate", "silent_timeout"])
def test_a_trace_the_user_asked_for_is_forwarded_whole(name: str) -> None:
    data = capture(name)
    forward, refusals = run(HandshakeLog(drop_trace=False), [data])
    assert forward == data and len(refusals) == 1


def stream() -> tuple[bytes, bytes, list[HandshakeRefusal]]:
    """Every capture in turn with every foreign line after each one (right after a
    multi-line trace record: the case that must not swallow them)."""
    data, expected_forward = [], []
    for name in EXPECTED:
        data += [capture(name), *FOREIGN]
        expected_forward += [kept(capture(name)), *FOREIGN]
    refusals = run(HandshakeLog(), [capture(name) for name in EXPECTED])[1]
    return b"".join(data), b"".join(expected_forward), refusals


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=40))
def test_chunks_split_anywhere_give_the_same_result(cuts: list[int]) -> None:
    data, expected_forward, expected_refusals = stream()
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    forward, refusals = run(HandshakeLog(),
                            [data[a:b] for a, b in itertools.pairwise(edges)])
    assert forward == expected_forward
    assert refusals == expected_refusals and len(refusals) == 13


def test_byte_by_byte() -> None:
    data, expected_forward, expected_refusals = stream()
    assert run(HandshakeLog(), [data[i:i + 1] for i in range(len(data))]) == (
        expected_forward, expected_refusals)


def test_a_partial_line_waits_for_its_newline_and_flush_forwards_it() -> None:
    parser = HandshakeLog()
    assert parser.feed(b'{"event": "half') == (b"", [])
    assert parser.feed(b' a line"}\nnext') == (b'{"event": "half a line"}\n', [])
    assert parser.flush() == b"next"
