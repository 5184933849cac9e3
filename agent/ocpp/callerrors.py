"""OCPP-J 1.6's CallError for a CALL whose payload breaks the 1.6 JSON schema
(agent.ocpp.chargepoint rule 5): missing field ProtocolError, wrong type or too long
TypeConstraintViolation, unknown field FormationViolation, a value outside its
enumeration or range PropertyConstraintViolation. (ocpp 2.1 itself answers the 2.0 name
FormatViolation, which 1.6 does not have, so the charge point checks first.)"""

from __future__ import annotations

import decimal
import json
from typing import Any

from ocpp.exceptions import (
    FormationViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import MessageType, get_validator

_DECIMAL_ACTIONS = ("SetChargingProfile", "RemoteStartTransaction")  # as ocpp.messages
_TYPE_RULES = ("type", "maxLength", "minLength")
_VALUE_RULES = ("enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "format", "pattern", "multipleOf", "minItems", "maxItems")


def payload_error(action: str, payload: Any) -> OCPPError | None:
    """Rule 5: the OCPP-J 1.6 CallError for a CALL payload that breaks the schema of
    `action`, None if it fits (or there is no schema: the library answers that)."""
    parse = decimal.Decimal if action in _DECIMAL_ACTIONS else float
    try:
        validator = get_validator(MessageType.Call, action, "1.6", parse_float=parse)
    except OSError:
        return None
    if parse is decimal.Decimal:
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    try:
        errors = list(validator.iter_errors(payload))
    except (ArithmeticError, ValueError, RecursionError) as exc:  # e.g. decimal's
        # InvalidOperation for multipleOf on a huge number (agent.ocpp.frames rule 4
        # refuses those first; this is the backstop)
        return PropertyConstraintViolationError(details={"cause": f"{action}: {exc!r}"[:200]})
    if not errors:
        return None
    err = min(errors, key=lambda e: len(e.absolute_path))
    where = "/".join(str(p) for p in err.absolute_path) or action
    details = {"cause": f"{where}: {err.message}"}
    if err.validator == "required":
        return ProtocolError(description="Payload for Action is incomplete", details=details)
    if err.validator in _TYPE_RULES:
        return TypeConstraintViolationError(details=details)
    if err.validator in _VALUE_RULES:
        return PropertyConstraintViolationError(details=details)
    return FormationViolationError(details=details)
