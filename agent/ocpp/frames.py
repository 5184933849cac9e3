"""Every frame from the CSMS is screened here before anything parses it for real: a
back office, or whoever pretends to be one, must not be able to end the link with one
frame (the ocpp library lets RecursionError, ValueError and decimal errors escape its
reader, which ends the connection's task).

Rules (OCPP-J 1.6 section 4.2.3 names the CallError codes):
 1. Size: the websocket takes messages of at most MAX_FRAME_BYTES; a bigger one closes
    the connection (1009, message too big) and the link reconnects. OCPP 1.6 sets no
    limit; the largest frame this charge point may legitimately get, a SendLocalList of
    SendLocalListMaxLength (100) full entries, is about 15 KB.
 2. Depth: at most MAX_DEPTH levels of [ and {, counted outside strings before json
    parses (its decoder recurses once per level and fails at ~1000). The deepest 1.6
    CALL, SetChargingProfile, nests 6 levels from the frame to a schedule period.
 3. Not JSON (NaN and Infinity are not JSON either, RFC 8259), binary, or not a CALL /
    CALLRESULT / CALLERROR frame (wrong message type id, wrong elements):
    FormationViolation ("not conform the PDU structure").
 4. Numbers: integers must fit 32 bits signed (OCPP's integer: 31 bit resolution and a
    sign bit, as peers store it) and decimals be finite and within the same range (no 1.6
    decimal, a limit in A or W, comes near it). A CALL with one that does not is
    syntactically correct but holds an invalid value: PropertyConstraintViolation (not
    TypeConstraintViolation: 1e308 is a number, as the schema asks; not
    OccurenceConstraintViolation: that is about how often a field occurs).
 5. A refused frame is answered with a CallError only when its unique id can be read
    from a CALL's opening (`[2,"<id>"`: a CallError must carry the CALL's id, 36
    characters at most); otherwise it is logged and dropped. A refused answer to one of
    our own CALLs (CALLRESULT with such a number) fails that CALL instead.
 6. An action with no handler: NotImplemented when OCPP 1.6 does not know it, NotSupported
    when it does ("Requested Action is recognized but not supported by the receiver").
    The ocpp library has these the other way round, so this module owns the mapping.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ocpp.exceptions import (
    FormationViolationError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
)
from ocpp.messages import MessageType
from ocpp.v16.enums import Action

MAX_FRAME_BYTES = 64 * 1024  # rule 1: 4x the largest legit frame (~15 KB)
MAX_DEPTH = 16  # rule 2: more than twice the deepest 1.6 frame (6 levels)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # rule 4: OCPP integer, 32 bit signed
UNIQUE_ID_MAX = 36  # OCPP-J 1.6 section 4.1.3: a unique id is at most 36 characters

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_CALL_OPENING = re.compile(r'\A\s*\[\s*2\s*,\s*"((?:[^"\\]|\\.){1,' + str(UNIQUE_ID_MAX) + '})"')
_ACTIONS = frozenset(a.value for a in Action)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a frame is not routed. `reply_to`: the CALL to answer with `error`; `fails`:
    our own CALL whose answer this was; neither: log and drop."""

    error: OCPPError
    reply_to: str | None = None
    fails: str | None = None

    @property
    def why(self) -> str:
        return str(self.error.details.get("cause", self.error.description))


class _OutOfRange:
    """A number rule 4 refuses, kept as its text until the frame's shape is known."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _int(text: str) -> int | _OutOfRange:
    if len(text.lstrip("-")) > 10:  # 2**31 has 10 digits; also spares int() huge input
        return _OutOfRange(text)
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else _OutOfRange(text)


def _float(text: str) -> float | _OutOfRange:
    value = float(text)  # 1e400 -> inf
    return value if math.isfinite(value) and abs(value) <= INT_MAX else _OutOfRange(text)


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON (RFC 8259)")


def depth_of(text: str) -> int:
    """How deep [ and { nest outside strings, counted without recursion; stops counting
    once past MAX_DEPTH."""
    depth = most = 0
    for ch in _BRACKETS.findall(_STRINGS.sub("", text)):
        if ch in "[{":
            depth += 1
            most = max(most, depth)
            if most > MAX_DEPTH:
                break
        else:
            depth -= 1
    return most


def _first_out_of_range(value: Any, path: str) -> str | None:
    if isinstance(value, _OutOfRange):
        return f"{path}: {value.text[:40]}{'...' if len(value.text) > 40 else ''}"
    items: Any = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _first_out_of_range(item, f"{path}/{key}")
        if found is not None:
            return found
    return None


def _formation(cause: str, reply_to: str | None = None) -> Refusal:
    return Refusal(error=FormationViolationError(details={"cause": cause}), reply_to=reply_to)


def screen(raw: str | bytes) -> Refusal | None:
    """Rules 2-5: why `raw` must not be routed, None if the ocpp library may parse it."""
    if not isinstance(raw, str):
        return _formation("a binary frame: OCPP-J sends text frames")
    opening = _CALL_OPENING.match(raw)
    call_id = opening.group(1) if opening else None
    if depth_of(raw) > MAX_DEPTH:
        return _formation(f"nested deeper than {MAX_DEPTH} levels", call_id)
    try:
        msg = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        return _formation(f"not JSON: {str(err)[:80]}", call_id)
    if not isinstance(msg, list) or not msg:
        return _formation("not an OCPP-J frame (a JSON array)")
    kind, rest = msg[0], msg[1:]
    looks_like_call = (len(rest) == 3 and isinstance(rest[0], str)
                       and len(rest[0]) <= UNIQUE_ID_MAX and isinstance(rest[1], str)
                       and isinstance(rest[2], dict))
    if kind == MessageType.Call and not looks_like_call:
        return _formation("a CALL is [2, uniqueId, action, {payload}]", call_id)
    if kind not in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
        return _formation(f"MessageTypeId {str(kind)[:20]} is not 2, 3 or 4",
                          rest[0] if looks_like_call else None)
    answer_id = rest[0] if rest and isinstance(rest[0], str) else None
    shape_ok = (kind == MessageType.Call
                or (kind == MessageType.CallResult and len(rest) == 2)
                or (kind == MessageType.CallError and len(rest) == 4))
    if answer_id is None or not shape_ok:
        return _formation(f"a frame of type {kind} with the wrong elements")
    where = _first_out_of_range(msg, "")
    if where is None:
        return None
    error = PropertyConstraintViolationError(details={
        "cause": f"number out of range at {where} (OCPP integers and decimals: "
                 f"{INT_MIN} to {INT_MAX})"})
    if kind == MessageType.Call:
        return Refusal(error=error, reply_to=answer_id)
    return Refusal(error=error, fails=answer_id)


def unknown_action_error(action: str) -> OCPPError:
    """Rule 6 (OCPP-J 1.6 section 4.2.3): the CallError for an action without a handler."""
    if action in _ACTIONS:
        return NotSupportedError(details={
            "cause": f"{action} is an OCPP 1.6 action this charge point does not support"})
    return NotImplementedError(details={"cause": f"{action[:50]} is not an OCPP 1.6 action"})
