"""Raft messages between chargers: msgpack with a closed schema, never pickle.

PySyncObj's stock transport sends `pickle.dumps(message)` and runs `pickle.loads` on what
arrives: any host on the LAN could run code on every charger. Here a message is a msgpack
map whose type and fields are checked against `SCHEMA` before PySyncObj sees it, and the
log entries it carries may only hold the two commands this project ever replicates (a
no-op and the lease probe): PySyncObj unpickles an entry's command when it applies it, so
anything else is refused at the door. What is refused raises `BadRaftMessage`: the
transport drops the message (and logs the peer), nothing else changes.

Not carried: PySyncObj's chunked transmission of large entries and its full-state dumps
(`transmission`, `serialized`): both unpickle their payload, and nothing here is large.
"""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pysyncobj.pickle as _ps_pickle  # type: ignore[import-untyped]

MAX_MESSAGE_BYTES = 64 * 1024  # a heartbeat is ~60 B; a batch of probes a few kB

NO_OP = b"\x01"  # pysyncobj _COMMAND_TYPE.NO_OP: a new leader's first entry
# A @replicated method without arguments is REGULAR (0) + pickle.dumps(its id); the
# probe is GroupRaft's only replicated method, so its id is 0.
PROBE = b"\x00" + _ps_pickle.dumps(0)
ALLOWED_COMMANDS = frozenset((NO_OP, PROBE))

_INT = int
# field -> type, per message type; every listed field is required unless in OPTIONAL
SCHEMA: dict[str, dict[str, type]] = {
    "request_vote": {"term": _INT, "last_log_index": _INT, "last_log_term": _INT},
    "response_vote": {"term": _INT},
    "append_entries": {"term": _INT, "commit_index": _INT, "entries": list,
                       "prevLogIdx": _INT, "prevLogTerm": _INT},
    "next_node_idx": {"next_node_idx": _INT, "success": bool, "reset": bool, "term": _INT},
    "apply_command": {"command": bytes, "request_id": _INT},
    "apply_command_response": {"request_id": _INT, "log_idx": _INT, "log_term": _INT,
                               "error": _INT},
    "timeout_now": {"term": _INT},
    # ours, answered by the transport itself (prevote.py), never seen by PySyncObj
    "pre_vote": {"term": _INT},
    "pre_vote_reply": {"term": _INT, "granted": bool},
    "group_hello": {"digest": str},  # tlstransport rule 6
}
OPTIONAL = {"append_entries": {"entries"}, "apply_command": {"request_id"},
            "apply_command_response": {"log_idx", "log_term", "error"},
            "next_node_idx": {"term"}}  # flow.py: added by our transports


class BadRaftMessage(ValueError):
    """A Raft message outside the schema: drop it, log the peer, keep the connection's
    other traffic."""


def encode(message: dict[str, Any]) -> bytes:
    """PySyncObj's outgoing message as bytes (entries' tuples become lists); the
    receiver checks it (`decode`)."""
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return data


def decode(data: bytes) -> dict[str, Any]:
    """Bytes from a member, checked (BadRaftMessage) before PySyncObj sees them."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise BadRaftMessage(f"{len(data)} bytes, more than the {MAX_MESSAGE_BYTES} allowed")
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True,
                                  max_bin_len=MAX_MESSAGE_BYTES)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise BadRaftMessage(f"not msgpack: {exc}") from exc
    check(message)
    return message  # type: ignore[no-any-return]


def check(message: Any) -> None:
    """The schema above; entries are [command, index, term] with an allowed command."""
    if not isinstance(message, dict):
        raise BadRaftMessage(f"a message is a map, got {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in SCHEMA:
        raise BadRaftMessage(f"unknown message type {kind!r}")
    fields = SCHEMA[kind]
    extra = set(message) - set(fields) - {"type"}
    if extra:
        raise BadRaftMessage(f"{kind}: unexpected fields {sorted(extra)}")
    for name, typ in fields.items():
        if name not in message:
            if name in OPTIONAL.get(kind, ()):
                continue
            raise BadRaftMessage(f"{kind}: field {name!r} missing")
        value = message[name]
        ok = isinstance(value, (list, tuple)) if typ is list else (
            type(value) is typ if typ is not _INT else
            isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise BadRaftMessage(f"{kind}: field {name!r} is {type(value).__name__}, "
                                 f"expected {typ.__name__}")
    if kind == "apply_command" and message["command"] not in ALLOWED_COMMANDS:
        raise BadRaftMessage("apply_command: a command this group never replicates")
    for entry in message.get("entries", ()):
        if (not isinstance(entry, (list, tuple)) or len(entry) != 3
                or not isinstance(entry[0], bytes) or entry[0] not in ALLOWED_COMMANDS
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in entry[1:])):
            raise BadRaftMessage("append_entries: an entry that is not [allowed command, "
                                 "index, term]")
