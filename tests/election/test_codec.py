"""master.election.codec: Raft messages in msgpack with a closed schema, never pickle."""

from __future__ import annotations

import pickle

import msgpack  # type: ignore[import-untyped]
import pytest

from master.election.codec import NO_OP, PROBE, BadRaftMessage, decode, encode

HEARTBEAT = {"type": "append_entries", "term": 4, "commit_index": 17, "prevLogIdx": 17,
             "prevLogTerm": 4}
MESSAGES = [
    {"type": "request_vote", "term": 5, "last_log_index": 17, "last_log_term": 4},
    {"type": "response_vote", "term": 5},
    HEARTBEAT,
    {**HEARTBEAT, "entries": [(NO_OP, 18, 5), (PROBE, 19, 5)]},
    {"type": "next_node_idx", "next_node_idx": 20, "reset": False, "success": True},
    {"type": "apply_command", "command": PROBE, "request_id": 3},
    {"type": "apply_command_response", "request_id": 3, "log_idx": 19, "log_term": 5},
    {"type": "apply_command_response", "request_id": 3, "error": 2},
    {"type": "timeout_now", "term": 5},
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: str(m["type"]))
def test_pysyncobj_messages_survive_the_round_trip(message: dict[str, object]) -> None:
    back = decode(encode(message))
    want = {k: [list(e) for e in v] if k == "entries" else v  # type: ignore[attr-defined]
            for k, v in message.items()}
    assert back == want


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


@pytest.mark.parametrize(("message", "says"), [
    ({**HEARTBEAT, "entries": [(b"\x00" + pickle.dumps(_Boom()), 18, 5)]}, "entry"),
    ({"type": "apply_command", "command": b"\x00" + pickle.dumps(_Boom())}, "never replicates"),
    ({"type": "append_entries", "term": 4, "commit_index": 1, "serialized": b"x"}, "unexpected"),
    ({**HEARTBEAT, "transmission": "finish", "data": b"x"}, "unexpected"),
    ({"type": "shutdown"}, "unknown message type"),
    ({"term": 4}, "unknown message type"),
    ({"type": "response_vote", "term": True}, "expected int"),
    ({"type": "response_vote", "term": "4"}, "expected int"),
    ({"type": "response_vote"}, "missing"),
    ({**HEARTBEAT, "entries": [(PROBE, 18)]}, "entry"),
    ([1, 2, 3], "a message is a map"),
])
def test_what_pysyncobj_would_unpickle_or_misread_is_refused(message: object, says: str) -> None:
    with pytest.raises(BadRaftMessage, match=says):
        decode(msgpack.packb(message, use_bin_type=True))


def test_garbage_and_oversized_input_are_refused() -> None:
    with pytest.raises(BadRaftMessage, match="not msgpack"):
        decode(b"\xc1\xc1\xc1")
    with pytest.raises(BadRaftMessage, match="allowed"):
        decode(b"\x00" * (64 * 1024 + 1))
    with pytest.raises(BadRaftMessage, match="not msgpack"):
        decode(pickle.dumps(HEARTBEAT))  # the stock transport's format
