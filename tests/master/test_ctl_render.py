"""io7ctl's status table prints what came over the wire without letting it steer the
terminal (issue 10: a charger id with a newline and an escape sequence forged a line)."""

from __future__ import annotations

import pytest

from master.ctl import render, safe
from master.statuswords import connector_reason
from protos.io7.cluster.v1 import cluster_pb2 as pb

FORGED = "io7-1\n\x1b[2Kio7-2        yes        1  charging"


def status_with(**member: object) -> pb.GroupStatus:
    status = pb.GroupStatus(group="garage\x1b[31m", master_id="m\r1", term=3, cycle=9,
                            ct_fault="CT \x07 lost")
    status.phases.add(phase=pb.PHASE_L1, limit_a=60, configured_limit_a=60)
    m = status.members.add(**member)
    m.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING)
    return status


@pytest.mark.parametrize(("text", "shown"), [
    ("io7-1", "io7-1"),
    ("caf\u00e9", "caf\u00e9"),  # printable non-ASCII stays as it is
    ("a\nb", "a\\nb"),
    ("\x1b[2K", "\\x1b[2K"),
    ("x\u202ey", "x\\u202ey"),  # right-to-left override
    ("\t", "\\t"),
], ids=["plain", "accent", "newline", "escape", "bidi", "tab"])
def test_safe_escapes_every_non_printable(text: str, shown: str) -> None:
    assert safe(text) == shown


def test_status_table_cannot_be_forged() -> None:
    text = render(status_with(charger_id=FORGED, online=False,
                              offline_reason="last state refused: \x1b[1A",
                              limits_refused_reason="term\x1b[0m 9"))
    lines = text.split("\n")
    assert all(line.isprintable() for line in lines), text
    assert not any(line.startswith("io7-2") for line in lines), text
    assert sum("io7-1\\n\\x1b[2Kio7-2" in line for line in lines) == 1
    assert "offline: last state refused: \\x1b[1A" in text
    assert "refuses this master's limits: term\\x1b[0m 9" in text


def _table(status: pb.GroupStatus) -> list[str]:
    lines = render(status).split("\n")
    return lines[next(i for i, x in enumerate(lines) if x.startswith("charger ")):]


def _reasons(status: pb.GroupStatus) -> list[str]:
    """The reason column of each connector row, its wrapped lines joined."""
    table = _table(status)
    at = table[0].index("reason")
    out: list[str] = []
    for line in table[1:]:
        if line[:at].strip():
            out.append(line[at:])
        else:
            out[-1] += " " + line[at:]
    return out


def lowered_group(reason: int) -> pb.GroupStatus:
    """Two connectors: one bound by phase L2, whose limit an energy manager lowered."""
    status = pb.GroupStatus(group="garage", master_id="io7-01", term=2,
                            offline_strategy=pb.OFFLINE_STRATEGY_MINIMISE)
    for ph in (pb.PHASE_L1, pb.PHASE_L2, pb.PHASE_L3):
        status.phases.add(phase=ph, limit_a=20 if ph == pb.PHASE_L2 else 63,
                          configured_limit_a=63,
                          limit_source="energy manager (MQTT) until 17:30"
                          if ph == pb.PHASE_L2 else "installed limit")
    m = status.members.add(charger_id="io7-01", online=True)
    m.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING, offered_a=10,
                     allocated_a=10, reason=reason, limiting_phase=pb.PHASE_L2)
    m.connectors.add(connector_id=2, status=pb.CONNECTOR_STATUS_SUSPENDED_EVSE,
                     reason=pb.LIMIT_REASON_PAUSED_NO_ROOM, limiting_phase=pb.PHASE_L2)
    return status


def test_the_reason_is_worded_as_on_the_web_page() -> None:
    """Issue 14: "why is my car limited?" in the same words everywhere, not enum names."""
    (first, second) = _reasons(lowered_group(pb.LIMIT_REASON_PHASE_LIMIT))
    assert first == ("limited by phase L2 of the group (limited by energy manager (MQTT) "
                     "until 17:30)")
    assert second.startswith("paused: no room on phase L2 for the minimum 6 A; resumes")
    assert "phase_limit" not in render(lowered_group(pb.LIMIT_REASON_PHASE_LIMIT))


@pytest.mark.parametrize("reason", [r for r in pb.LimitReason.values()
                                    if r != pb.LIMIT_REASON_UNSPECIFIED],
                         ids=pb.LimitReason.Name)
def test_every_reason_comes_from_statuswords(reason: int) -> None:
    """One source: io7ctl's words for each reason are statuswords' (web UI, REST, MQTT),
    and every row, wrapped, fits a 120-column terminal."""
    status = lowered_group(reason)
    assert _reasons(status)[0] == connector_reason(status, status.members[0].connectors[0])
    assert all(len(line) <= 120 for line in _table(status)), render(status)


def test_a_wire_text_in_the_reason_is_escaped() -> None:
    status = lowered_group(pb.LIMIT_REASON_PHASE_LIMIT)
    status.phases[1].limit_source = "energy manager\x1b[2J\n io7-02"
    assert all(line.isprintable() for line in render(status).split("\n"))
    assert "(limited by energy manager\\x1b[2J\\n io7-02)" in _reasons(status)[0]
