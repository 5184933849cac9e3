"""A lossy, slow Ethernet link in userspace: netem's job, for a kernel without netem.

    python -m tests.framerelay --a IF_A --b IF_B --delay-ms 300 --loss 0.3 [--seed N]

Run inside a network namespace holding both interfaces (two veth ends, no addresses, no
bridge): every frame that arrives on one is sent out of the other `delay-ms` later, or
dropped with probability `loss`, each way independently. Real packet loss, so TCP's own
retransmission and TLS see what a bad cable or a flaky switch port does. The senders'
offloads must be off (ethtool -K ... tso off gso off gro off tx off): a relay of raw
frames cannot forward a 64 kB GSO segment nor finish a partial checksum. Prints one JSON
line when it forwards; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import signal
import socket
import sys
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # our own sends, seen again on the socket bound to that interface
MAX_FRAME = 65536


class Relay:
    def __init__(self, a: str, b: str, *, delay_s: float, loss: float, seed: int) -> None:
        self.socks = {name: self._open(name) for name in (a, b)}
        self.other = {a: b, b: a}
        self.delay_s, self.loss = delay_s, loss
        self.rng = random.Random(seed)
        self.queue: list[tuple[float, int, str, bytes]] = []
        self.cv = threading.Condition()
        self.seq = 0
        self.stopped = threading.Event()
        self.counts = {"forwarded": 0, "dropped": 0}

    @staticmethod
    def _open(name: str) -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.settimeout(0.2)
        return s

    def _read(self, name: str) -> None:
        sock, out = self.socks[name], self.other[name]
        while not self.stopped.is_set():
            try:
                frame, addr = sock.recvfrom(MAX_FRAME)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            with self.cv:
                if self.rng.random() < self.loss:
                    self.counts["dropped"] += 1
                    continue
                self.seq += 1
                heapq.heappush(self.queue, (time.monotonic() + self.delay_s, self.seq, out,
                                            frame))
                self.cv.notify()

    def _send(self) -> None:
        while not self.stopped.is_set():
            with self.cv:
                while not self.queue and not self.stopped.is_set():
                    self.cv.wait(0.2)
                if not self.queue:
                    continue
                due, _, out, frame = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.cv.wait(wait)
                    continue
                heapq.heappop(self.queue)
                self.counts["forwarded"] += 1
            with contextlib.suppress(OSError):  # a frame the interface refuses is lost
                self.socks[out].send(frame)

    def run(self) -> None:
        threads = [threading.Thread(target=self._read, args=(n,), daemon=True)
                   for n in self.socks]
        threads.append(threading.Thread(target=self._send, daemon=True))
        for t in threads:
            t.start()
        print(json.dumps({"relay": list(self.socks), "delay_ms": self.delay_s * 1000,
                          "loss": self.loss}), flush=True)
        self.stopped.wait()
        print(json.dumps(self.counts), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if not 0.0 <= args.loss < 1.0 or args.delay_ms < 0:
        ap.error("--loss must be in [0, 1) and --delay-ms >= 0")
    relay = Relay(args.a, args.b, delay_s=args.delay_ms / 1000, loss=args.loss,
                  seed=args.seed)
    signal.signal(signal.SIGTERM, lambda *_: relay.stopped.set())
    relay.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
