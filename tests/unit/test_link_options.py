"""What the master's server options put on the wire (protos/link.py rule 6).

A real gRPC server with MASTER_SERVER_OPTIONS on loopback, and an HTTP/2 client written
frame by frame on a plain socket (h2c), so the test sees every frame the server sends:
while an agent's stream keeps sending data, the master sends no PING of its own. With
the BDP probe on (gRPC's default), the server pinged on the first data it read, and
again and again after: at 1 000 agents that was ~17 % of the master's segments and CPU.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from protos.link import MASTER_SERVER_OPTIONS

METHOD = "/io7.cluster.v1.AgentLink/Connect"
DATA, HEADERS, SETTINGS, PING = 0x0, 0x1, 0x4, 0x6
END_HEADERS, ACK = 0x4, 0x1
SEND_EVERY_S = 0.2  # an agent's report rate, five times faster: reads never pause long
WATCH_S = 2.5  # over two keepalive intervals


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name: str, value: str) -> bytes:
    """HPACK literal header field without indexing, new name, no Huffman coding."""
    return bytes([0, len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    head = _exactly(sock, 9)
    length = int.from_bytes(head[:3], "big")
    return head[3], head[4], _exactly(sock, length)


def _exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        out += chunk
    return out


def _drain(request_iterator: Iterator[bytes], _context: Any) -> Iterator[bytes]:
    for _ in request_iterator:  # an agent's stream: reports in, nothing out
        pass
    return iter(())


@pytest.fixture
def server_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         options=MASTER_SERVER_OPTIONS)
    service, method = METHOD[1:].split("/")
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, {
        method: grpc.stream_stream_rpc_method_handler(_drain)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_master_sends_no_ping_while_an_agent_sends_data(server_port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", server_port), timeout=5)
    pings: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                kind, flags, payload = read_frame(sock)
            except OSError:
                return
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                pings.append(payload)
                sock.sendall(frame(PING, ACK, 0, payload))

    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    headers = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", METHOD),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")])
    sock.sendall(frame(HEADERS, END_HEADERS, 1, headers))
    message = b"\x00" + struct.pack(">I", 16) + bytes(16)  # one gRPC message of 16 bytes
    try:
        deadline = time.monotonic() + WATCH_S
        while time.monotonic() < deadline:
            sock.sendall(frame(DATA, 0, 1, message))
            time.sleep(SEND_EVERY_S)
        assert reader.is_alive(), "the server closed the connection"
    finally:
        stop.set()
        sock.close()
        reader.join(timeout=5)
    assert pings == [], f"the master pinged {len(pings)} times while data flowed"
