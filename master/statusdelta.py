"""WatchStatus deltas (issue 15): a watcher of a 1 000-charger group is sent the whole
table once, then only the members that changed. Pure: protobuf in, protobuf out.

Rules:
 1. The first message of a stream is whole (`delta` false). Every later one carries every
    field but `members` whole, `delta` true, in `members` only the members whose entry
    changed since this stream's previous message, in `removed_member_ids` the members that
    left the table (a rebuild), in charger id order.
 2. A member's `last_seen_ms_ago` alone is not a change: it moves every cycle for every
    member, and no reader of the stream shows it; `online` and `offline_reason` say
    whether the member is fresh. A member that changes otherwise is sent with its age.
 3. The reader (`DeltaReader`) rebuilds the whole status from each message, so io7ctl
    and every other client render and print exactly what GetStatus would have given,
    save rule 2's ages.
"""

from __future__ import annotations

from protos.io7.cluster.v1 import cluster_pb2 as pb

_Key = tuple[bool, str, str, str, tuple[bytes, ...]]


def _key(m: pb.MemberStatus) -> _Key:
    """What counts as a change of `m` (rule 2: everything but its age)."""
    return (m.online, m.address, m.offline_reason, m.limits_refused_reason,
            tuple([c.SerializeToString(deterministic=True) for c in m.connectors]))


def _without_members(status: pb.GroupStatus) -> pb.GroupStatus:
    out = pb.GroupStatus()
    out.CopyFrom(status)
    del out.members[:]
    del out.removed_member_ids[:]
    out.delta = False
    return out


class DeltaWriter:
    """One WatchStatus stream's side of rule 1: what it sent last, by charger id."""

    def __init__(self) -> None:
        self._sent: dict[str, _Key] | None = None

    def next(self, status: pb.GroupStatus) -> pb.GroupStatus:
        """The message to send for `status`, a whole GroupStatus of the master."""
        keys = {m.charger_id: _key(m) for m in status.members}
        before, self._sent = self._sent, keys
        if before is None:
            return status
        out = _without_members(status)
        out.delta = True
        out.members.extend(m for m in status.members if before.get(m.charger_id)
                           != keys[m.charger_id])
        out.removed_member_ids.extend(sorted(set(before) - set(keys)))
        return out


class DeltaReader:
    """A client's side (rule 3): the whole status after each message."""

    def __init__(self) -> None:
        self._members: dict[str, pb.MemberStatus] = {}

    def apply(self, msg: pb.GroupStatus) -> pb.GroupStatus:
        """The whole GroupStatus `msg` stands for (a whole one is returned as it is)."""
        if not msg.delta:
            self._members = {m.charger_id: m for m in msg.members}
            return msg
        for cid in msg.removed_member_ids:
            self._members.pop(cid, None)
        for m in msg.members:
            self._members[m.charger_id] = m
        out = _without_members(msg)
        out.members.extend(self._members[cid] for cid in sorted(self._members))
        return out
