"""Channel and server options of the AgentLink stream: part of the wire contract.

Both ends must agree, or the server kills the stream for pinging too often ("too_many_pings")
or a dead peer goes unnoticed for a minute. Numbers (architecture: "dead peer detected by
gRPC keepalive within ~2 s"):

1. The agent pings every 1 s even with no call data in flight, and gives up on a ping
   unanswered for 1 s: a dead master is noticed in about 2 s.
2. The master accepts pings every 0.5 s without data and never counts strikes against
   them; it pings agents the same way so it notices a dead agent as quickly.
3. Messages are small (a Limits for two connectors is < 100 bytes); anything over 64 KiB
   is refused by gRPC itself before it reaches our code. Only what the master *sends* may
   be larger: a group status for io7ctl (GetStatus/WatchStatus) is ~200 bytes per charger,
   ~97 KB at 500 chargers (make bench found it), so the master may send up to 4 MiB,
   gRPC's default receive limit of io7ctl's channel.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 64 * 1024
MAX_STATUS_BYTES = 4 * 1024 * 1024  # gRPC's default receive limit on io7ctl's side

_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.http2.ping_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

AGENT_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *_KEEPALIVE,
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly after a master restart (backoff is also ours, in the agent).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

MASTER_SERVER_OPTIONS: list[tuple[str, int]] = [
    *_KEEPALIVE,
    ("grpc.http2.min_ping_interval_without_data_ms", 500),
    ("grpc.http2.min_time_between_pings_ms", 500),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_STATUS_BYTES),
    # grpcio binds with SO_REUSEPORT on Linux by default: a second master on the same port
    # would start and the kernel would split the agents between the two (issue 10).
    ("grpc.so_reuseport", 0),
]
