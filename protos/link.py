"""Channel and server options of the AgentLink stream: part of the wire contract.

Both ends must agree, or the server kills the stream for pinging too often ("too_many_pings")
or a dead peer goes unnoticed for a minute. Safety never waits for the keepalive: an agent
falls back to its fail-safe when its lease runs out, and the master counts a member whose
last state is older than the lease as offline (master/control.py), stream open or not.

1. The agent pings every 1 s even with no call data in flight, and gives up on a ping
   unanswered for `PING_TIMEOUT_MS` (5 s): a silently dead master is noticed in about 6 s
   (a restarted one at once: its host resets the agent's next write).
2. The master accepts pings every 0.5 s without data and never counts strikes against
   them; it pings agents the same way so it notices a dead agent as quickly.
3. Messages are small (a Limits for two connectors is < 100 bytes); anything over 64 KiB
   is refused by gRPC itself before it reaches our code. Only what the master *sends* may
   be larger: a group status for io7ctl (GetStatus/WatchStatus) is ~200 bytes per charger,
   ~97 KB at 500 chargers (make bench found it), so the master may send up to 4 MiB,
   gRPC's default receive limit of io7ctl's channel.
4. A connection attempt may take `CONNECT_TIMEOUT_MS` (10 s). gRPC core has no separate
   connect timeout: `grpc.min_reconnect_backoff_ms` is it (subchannel.cc: deadline =
   max(next backoff, now + min_reconnect_backoff)). At 200 ms, as it was, an attempt had
   200 ms for the TCP handshake plus the HTTP/2 settings exchange, two round trips: an
   agent never rejoined through a link of 100 ms each way or 300 ms one way, though an
   open stream works on it (issue 10; tests/e2e/test_slow_link.py). 10 s covers two
   round trips of a 300 ms link with up to three lost SYNs (Linux retries after 1, 3 and
   7 s); a SYN retried while a master reboots still gets through within ~4 s of its return.
   A refused connection (master down) still fails at once and is retried after the
   backoff, 0.2 s doubling to 2 s.
5. Why 5 s and not 1 s (issue 10): a ping waits behind anything TCP is retransmitting,
   and each retransmission of the same segment doubles its timeout (round trip + 200 ms,
   then twice that, ...). 1 s held on a clean 300 ms link but killed the stream, and the
   handshakes, every few seconds at 30 % loss. Through tests/netrelay.py (300 ms round
   trip or one way, 30 % loss, 3 s lease; one minute per sample, so noisy) the share of
   time without a lease was 100 % with the old options, 75-95 % with only the connect
   timeout fixed, 38-67 % (four samples) with these options. Longer ping timeouts gave
   19-64 %: no clear gain, and the stalls left are longer than the lease anyway.
6. Neither end probes the bandwidth-delay product (`grpc.http2.bdp_probe` 0, issue 15).
   gRPC's estimator pings after data it reads, to widen the HTTP/2 window for bulk
   transfers; a stream carries messages of a few hundred bytes, so those pings only cost
   (every ping is answered over TLS by the other end). On the master's side they were
   ~0.7 of the ~5 TCP segments it sent per agent per second, and (tests/bench/connmem.py,
   interleaved, two runs each) master CPU 0.168 -> 0.125 core at 200 agents, 0.47 -> 0.43
   at 1 000, together with rule 7. The keepalive (rules 1-2) is apart and unchanged: gRPC
   restarts its timer on every read, so a master reading a report a second sends no
   keepalive ping at all (tests/unit/test_link_options.py), and a 5 s master keepalive
   measured the same as 1 s.
7. TLS records the master writes are at most `TLS_FRAME_BYTES` (`grpc.tsi.max_frame_size`):
   gRPC keeps a buffer of that size per connection to seal records in, 16 KiB by default;
   4 KiB saves ~12 MB of RSS at 1 000 agents (230 -> 218 MB with rule 6). Only what the
   master sends is cut finer (a ~100 KB GetStatus is 25 records, not 7); a peer may still
   send records of 16 KiB.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 64 * 1024
MAX_STATUS_BYTES = 4 * 1024 * 1024  # gRPC's default receive limit on io7ctl's side
CONNECT_TIMEOUT_MS = 10_000  # rule 4
PING_TIMEOUT_MS = 5000  # rules 1 and 5
TLS_FRAME_BYTES = 4096  # rule 7

_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", PING_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", PING_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

AGENT_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *_KEEPALIVE,
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly after a master restart (backoff is also ours, in the agent)...
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # ... but give each attempt time to finish: see rule 4.
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
    ("grpc.http2.bdp_probe", 0),  # rule 6
]

MASTER_SERVER_OPTIONS: list[tuple[str, int]] = [
    *_KEEPALIVE,
    ("grpc.http2.min_ping_interval_without_data_ms", 500),
    ("grpc.http2.min_time_between_pings_ms", 500),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_STATUS_BYTES),
    ("grpc.http2.bdp_probe", 0),  # rule 6
    ("grpc.tsi.max_frame_size", TLS_FRAME_BYTES),  # rule 7
    # grpcio binds with SO_REUSEPORT on Linux by default: a second master on the same port
    # would start and the kernel would split the agents between the two (issue 10).
    ("grpc.so_reuseport", 0),
]
