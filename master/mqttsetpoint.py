"""What a home energy manager may ask over MQTT (issue 12 §4, issue 14 §4). Pure.

`<prefix>/<group>/site_limit/set` takes one JSON object:

    {"limit_a": 20, "valid_s": 60}               # 20 A on every phase, for 60 s
    {"limit_a": [20, 16, 25], "valid_s": 60}     # per site phase L1, L2, L3
    {"valid_s": 0}                               # withdraw now

1. limit_a: a number, or three (L1, L2, L3), each finite and 0 to the installed limit
   (group.limit_a, the main fuse): the setpoint can only lower the group (below 6 A it
   pauses the connectors on that phase, as the Modbus energy manager may).
2. valid_s: required, a number of seconds in (0, [mqtt] setpoint_max_valid_s]; the limit
   ends `valid_s` after the message arrived (this host's wall clock), then the group is
   back at its own limit. 0 withdraws it now. The manager renews before it runs out.
3. Anything else (not JSON, not an object, another key, a value out of range) is refused
   with one line saying what is allowed, and nothing changes.

`<prefix>/<group>/limit/set` (Home Assistant's number entity "group limit") takes a plain
number, A per phase; its range is SetGroupLimit's (master/grouplimit.py), checked there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from master.externallimits import ExternalLimit, ExternalLimitError

SOURCE = "home energy manager (MQTT)"  # io7ctl status: "... until 17:30"
MAX_PAYLOAD_BYTES = 1024  # a setpoint is ~50 bytes: anything bigger is not one
KEYS = ("limit_a", "valid_s")


class SetpointError(ValueError):
    """A setpoint or command that cannot be applied; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Setpoint:
    """An accepted setpoint: the limit to put in the MQTT slot (None: withdraw)."""

    limit: ExternalLimit | None


def parse_setpoint(payload: bytes, *, installed_limit_a: float, max_valid_s: float,
                   now_unix_s: float, source: str = SOURCE,
                   max_valid_key: str = "[mqtt] setpoint_max_valid_s") -> Setpoint:
    """Rules 1-3 (the REST API's setpoint too, under its own `source`). Raises
    SetpointError."""
    data = _json(payload)
    if not isinstance(data, dict):
        raise SetpointError(f"a setpoint is a JSON object like {{\"limit_a\": 20, "
                            f"\"valid_s\": 60}}, not {_short(data)}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SetpointError(f"unknown key {unknown[0]!r}: a setpoint has {list(KEYS)}")
    if "valid_s" not in data:
        raise SetpointError("valid_s is required: seconds the limit holds (0 withdraws)")
    valid_s = data["valid_s"]
    if not _number(valid_s) or not 0 <= valid_s <= max_valid_s:
        raise SetpointError(f"valid_s = {_short(valid_s)} must be a number of seconds in "
                            f"[0, {max_valid_s:g}] (0 withdraws; {max_valid_key})")
    if valid_s == 0:
        return Setpoint(None)
    if "limit_a" not in data:
        raise SetpointError("limit_a is required: A per phase, one number or [L1, L2, L3]")
    raw = data["limit_a"]
    amps = raw if isinstance(raw, list) else [raw]
    if len(amps) not in (1, 3):
        raise SetpointError(f"limit_a = {_short(raw)}: one number, or three [L1, L2, L3]")
    if len(amps) == 1:
        amps = amps * 3
    for k, a in enumerate(amps):
        if not _number(a) or not 0 <= a <= installed_limit_a:
            where = "" if not isinstance(raw, list) else f" (L{k + 1})"
            raise SetpointError(f"limit_a{where} = {_short(a)} must be a number in [0, "
                                f"{installed_limit_a:g}] A: the installed limit "
                                "(group.limit_a) is the ceiling")
    try:
        limit = ExternalLimit(source=source, limit_a=(float(amps[0]), float(amps[1]),
                                                      float(amps[2])),
                              valid_until_unix_s=now_unix_s + float(valid_s))
    except ExternalLimitError as err:  # the checks above are narrower: a safety net
        raise SetpointError(str(err)) from None
    return Setpoint(limit)


def parse_group_limit(payload: bytes) -> float:
    """The number entity's command: a number of A (its range is checked by the master's
    SetGroupLimit rules). Raises SetpointError."""
    text = payload[:MAX_PAYLOAD_BYTES + 1].decode("utf-8", "replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise SetpointError(f"group limit {_short(text)} is not a number of A") from None
    if not math.isfinite(value):
        raise SetpointError(f"group limit {_short(text)} is not a finite number of A")
    return value


def _json(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SetpointError(f"{len(payload)} bytes: a setpoint is at most "
                            f"{MAX_PAYLOAD_BYTES} bytes of JSON")
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise SetpointError(f"not JSON ({err}): send {{\"limit_a\": 20, \"valid_s\": 60}}"
                            ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
