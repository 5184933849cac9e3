"""Why a connector got what it got, in words a driver reads ("limited by phase L2 of the
group"), for every interface that shows a GroupStatus: the web UI's live page and
/api/group, MQTT's reason sensor, `io7ctl status`/`watch` and make run's view (master/ctl.py
`render`, which escapes what came from the wire). Pure: a GroupStatus in, strings out.

1. A connector's reason is its LimitReason (the binding constraint of the cycle, proto
   comments) in words, with the site phase that bound it where one did.
2. When that phase's limit in force is below the configured one, the words say what
   lowered it ("the fallback limit while the CT kit is lost", "limited by the back office
   until 18:00").
3. An offline member's or a refusing member's own words come from the master
   (offline_reason, limits_refused_reason) and are shown beside these, not merged.
"""

from __future__ import annotations

from protos.io7.cluster.v1 import cluster_pb2 as pb

_OWN = ("installed limit", "set by io7ctl", "")  # the group's own limit: nothing to add

_WORDS = {
    pb.LIMIT_REASON_UNSPECIFIED: "",
    pb.LIMIT_REASON_NO_DEMAND: "no demand: no EV, the EV is not ready, or its session is over",
    pb.LIMIT_REASON_CONNECTOR_MAX: "at the connector's own maximum (cable, breaker, EV or "
                                   "back-office profile)",
    pb.LIMIT_REASON_CHARGER_LIMIT: "at the charger's Charger Current Limit",
    pb.LIMIT_REASON_PHASE_LIMIT: "limited by phase {phase} of the group",
    pb.LIMIT_REASON_DEMAND_CAP: "capped near what the EV draws (it takes less than offered)",
    pb.LIMIT_REASON_RAMP: "rising step by step (one increase per ramp interval)",
    pb.LIMIT_REASON_CT_STALE: "held: the CT reading is stale, no increases",
    pb.LIMIT_REASON_TRANSITION: "held until another connector's decrease has taken effect",
    pb.LIMIT_REASON_PAUSED_NO_ROOM: "paused: no room on phase {phase} for the minimum 6 A; "
                                    "resumes when room frees up or in rotation",
    pb.LIMIT_REASON_PAUSED_ROTATION: "paused: rotated out so that a waiting car gets its turn",
    pb.LIMIT_REASON_PAUSED_MIN_PAUSE: "paused: its minimum pause time is not over yet",
    pb.LIMIT_REASON_OFFLINE_STRATEGY: "set by the offline strategy ({strategy}): a charger of "
                                      "the group is offline",
    pb.LIMIT_REASON_OFFLINE: "its charger is offline: its fail-safe current is reserved",
    pb.LIMIT_REASON_FAILSAFE: "its lease expired: it runs on its fail-safe current",
}


def phase_name(value: int) -> str:
    """"L1", "L2", "L3", or "" when unspecified."""
    return "" if value == pb.PHASE_UNSPECIFIED else pb.Phase.Name(value).removeprefix("PHASE_")


def phase_limited_by(p: pb.PhaseStatus) -> str:
    """Rule 2: why a phase's limit in force is below the configured one; "" when not."""
    if p.limit_source.startswith("fallback"):
        return "the fallback limit while the CT kit is lost"
    if p.limit_source not in _OWN:
        return f"limited by the {p.limit_source}" if p.limit_source.startswith(
            "back office") else f"limited by {p.limit_source}"
    if p.configured_limit_a and p.configured_limit_a != p.limit_a:  # 0: an older master
        return "the fallback limit while the CT kit is lost"
    return ""


def connector_reason(status: pb.GroupStatus, c: pb.ConnectorStatusView) -> str:
    """Rules 1 and 2: connector `c` of `status`'s reason in words ("" when unknown)."""
    words = _WORDS.get(c.reason, "")
    phase = phase_name(c.limiting_phase)
    strategy = pb.OfflineStrategy.Name(status.offline_strategy).removeprefix(
        "OFFLINE_STRATEGY_").lower()
    if "{phase}" in words:
        if not phase:
            words = words.replace(" on phase {phase}", "").replace(" by phase {phase} of",
                                                                   " by")
        lowered = next((phase_limited_by(p) for p in status.phases
                        if p.phase == c.limiting_phase), "")
        if lowered:
            words += f" ({lowered})"
    return words.format(phase=phase, strategy=strategy)
