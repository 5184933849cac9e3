"""A userspace TCP relay that delays each direction and can cut: a slow link for tests.

This kernel has no netem qdisc, so a slow or broken LAN is played by a relay between a
client and a server. Each chunk read from one side is written to the other `up_s` (client
to server) or `down_s` (server to client) later, in order; nothing is lost or reordered
(TCP below the relay does that part). The TCP handshake pays its round trip too: the relay
connects upstream only `up + down + up` after it accepted (when a real server's accept()
would return), and the client's first bytes leave no earlier than one round trip after
its connect. `cut()` aborts every open connection, as a pulled cable followed by a reset.

Loss (`loss` = 0.3: 30 % of packets) is played the way TCP would hide it: a lost chunk is
retransmitted after the retransmission timeout (Linux: the round trip plus at least 200 ms,
doubling while the retransmission is lost too), and everything behind it waits (TCP
delivers in order). A lost SYN or SYN-ACK costs 1 s, doubling (Linux's initial RTO).

In a test: `async with Relay(("127.0.0.1", port), up_s=0.1, down_s=0.1) as relay:`; or as
a process (e.g. inside a network namespace), `python -m tests.netrelay --listen H:P
--target H:P --up-ms 100 --down-ms 100` prints {"listening": "H:P"} and obeys lines on
stdin: `cut`, `delay UP_MS DOWN_MS`, `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

CHUNK_BYTES = 65536
MIN_RTO_S = 0.2  # Linux TCP_RTO_MIN
SYN_RTO_S = 1.0  # Linux TCP_TIMEOUT_INIT


@dataclass
class _Pipe:
    """One direction of one connection: chunks with the time each is due."""

    queue: asyncio.Queue[tuple[float, bytes] | None] = field(default_factory=asyncio.Queue)
    last_due: float = 0.0


class Relay:
    """Accepts on `start()`'s address and relays each connection to `target`."""

    def __init__(self, target: tuple[str, int], *, up_s: float = 0.0, down_s: float = 0.0,
                 loss: float = 0.0, seed: int = 1) -> None:
        self.target = target
        self.up_s = up_s
        self.down_s = down_s
        self.loss = loss
        self._rng = random.Random(seed)
        self.accepted = 0  # connections accepted so far
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; returns the (host, port) clients should connect to."""
        self._server = await asyncio.start_server(self._accept, host, port)
        sock_host, sock_port = self._server.sockets[0].getsockname()[:2]
        return str(sock_host), int(sock_port)

    def cut(self) -> None:
        """Abort every open connection (both sides see a reset); new ones are accepted."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        """A new client: its relaying task is the relay's (close() cancels and awaits it)."""
        self._writers.add(c_writer)
        self._conns.add(asyncio.create_task(self._relay(c_reader, c_writer)))

    async def _relay(self, c_reader: asyncio.StreamReader,
                     c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.accepted += 1
        loop = asyncio.get_running_loop()
        opened = loop.time()
        up, down = _Pipe(), _Pipe()
        handshake_s = self.up_s + self.down_s + self._lost_for(SYN_RTO_S) + self._lost_for(
            SYN_RTO_S)  # SYN, SYN-ACK
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(self._read(c_reader, up, lambda: self.up_s + self._lost_for(
                self._rto_s()), not_before=opened + handshake_s))]
        try:
            await asyncio.sleep(handshake_s + self.up_s)  # the server's accept() returns
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.transport.abort()
            self._forget(task, c_writer, tasks)
            return
        self._writers.add(s_writer)
        tasks += [asyncio.create_task(self._write(up, s_writer)),
                  asyncio.create_task(self._read(s_reader, down, lambda: self.down_s
                                                 + self._lost_for(self._rto_s()))),
                  asyncio.create_task(self._write(down, c_writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            await asyncio.gather(*tasks)  # both directions ended cleanly
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            c_writer.transport.abort()
            s_writer.transport.abort()
            self._writers.discard(s_writer)
            self._forget(task, c_writer, tasks)

    def _lost_for(self, rto_s: float) -> float:
        """Extra delay of one packet: a retransmission per loss, the timeout doubling."""
        extra = 0.0
        while self._rng.random() < self.loss:
            extra += rto_s
            rto_s *= 2
        return extra

    def _rto_s(self) -> float:
        return self.up_s + self.down_s + MIN_RTO_S

    def _forget(self, task: asyncio.Task[None], writer: asyncio.StreamWriter,
                tasks: list[asyncio.Task[None]]) -> None:
        for t in tasks:
            t.cancel()
        self._writers.discard(writer)
        self._conns.discard(task)

    @staticmethod
    async def _read(reader: asyncio.StreamReader, pipe: _Pipe, delay_s: Callable[[], float], *,
                    not_before: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await reader.read(CHUNK_BYTES)
            due = max(loop.time(), not_before) + delay_s()
            pipe.last_due = max(pipe.last_due, due)  # in order, even if the delay shrank
            if not data:
                await pipe.queue.put(None)
                return
            await pipe.queue.put((pipe.last_due, data))

    @staticmethod
    async def _write(pipe: _Pipe, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await pipe.queue.get()
            if item is None:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            due, data = item
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _serve(args: argparse.Namespace) -> None:
    relay = Relay(_host_port(args.target), up_s=args.up_ms / 1000, down_s=args.down_ms / 1000,
                  loss=args.loss)
    host, port = await relay.start(*_host_port(args.listen))
    print(json.dumps({"listening": f"{host}:{port}"}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] == "cut":
                relay.cut()
            elif words[0] == "delay" and len(words) == 3:
                relay.up_s, relay.down_s = float(words[1]) / 1000, float(words[2]) / 1000
            print(json.dumps({"done": line.strip(), "accepted": relay.accepted}), flush=True)
    finally:
        await relay.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netrelay", description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="host:port to accept on (port 0: any)")
    ap.add_argument("--target", required=True, help="host:port to relay to")
    ap.add_argument("--up-ms", type=float, default=0.0, help="client to server delay, ms")
    ap.add_argument("--down-ms", type=float, default=0.0, help="server to client delay, ms")
    ap.add_argument("--loss", type=float, default=0.0, help="share of packets lost, 0-1")
    asyncio.run(_serve(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
