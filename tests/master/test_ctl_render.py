"""io7ctl's status table prints what came over the wire without letting it steer the
terminal (issue 10: a charger id with a newline and an escape sequence forged a line)."""

from __future__ import annotations

import pytest

from master.ctl import render, safe
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
