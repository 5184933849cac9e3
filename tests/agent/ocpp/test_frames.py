"""agent.ocpp.frames, the screening of every CSMS frame: a table of named rows (what
is refused, with which OCPP-J 1.6 code, answered to which id) and the action mapping."""

from __future__ import annotations

import pytest

from agent.ocpp.frames import MAX_DEPTH, depth_of, screen, unknown_action_error

DEEP = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)


@pytest.mark.parametrize(("name", "frame", "code", "reply_to", "fails"), [
    ("a normal CALL", '[2,"a","Reset",{"type":"Soft"}]', None, None, None),
    ("a normal CALLRESULT", '[3,"a",{"status":"Accepted","interval":300}]', None, None, None),
    ("a normal CALLERROR", '[4,"a","GenericError","",{}]', None, None, None),
    ("brackets in strings do not count", '[2,"a","DataTransfer",{"vendorId":"'
     + "[" * 100 + '"}]', None, None, None),
    ("32-bit integers pass", '[2,"a","X",{"n":2147483647,"m":-2147483648}]', None, None, None),
    ("too deep, no id", DEEP, "FormationViolation", None, None),
    ("too deep in a CALL", '[2,"id-7","X",{"d":' + DEEP + "}]", "FormationViolation",
     "id-7", None),
    ("not JSON", "{nope", "FormationViolation", None, None),
    ("not JSON after a CALL's opening", '[2,"id-8","X",{', "FormationViolation", "id-8", None),
    ("Infinity is not JSON", '[2,"i","X",{"n":Infinity}]', "FormationViolation", "i", None),
    ("binary", b'[2,"a","Reset",{"type":"Soft"}]', "FormationViolation", None, None),
    ("not an array", '{"a":1}', "FormationViolation", None, None),
    ("empty array", "[]", "FormationViolation", None, None),
    ("type id 5 shaped like a CALL", '[5,"t","Reset",{}]', "FormationViolation", "t", None),
    ("type id 5, other shape", '[5,"t"]', "FormationViolation", None, None),
    ("CALL without payload", '[2,"c","Reset"]', "FormationViolation", "c", None),
    ("CALL with a 37-character id", '[2,"' + "x" * 37 + '","Reset",{}]',
     "FormationViolation", None, None),
    ("CALLRESULT without payload", '[3,"r"]', "FormationViolation", None, None),
    ("1e308 in a CALL", '[2,"p","X",{"limit":1e308}]', "PropertyConstraintViolation", "p",
     None),
    ("2**31 in a CALL", '[2,"p","X",{"n":2147483648}]', "PropertyConstraintViolation", "p",
     None),
    ("a 5000-digit integer", '[2,"p","X",{"n":' + "9" * 5000 + "}]",
     "PropertyConstraintViolation", "p", None),
    ("1e400 in our CALL's answer", '[3,"ours",{"interval":1e400}]',
     "PropertyConstraintViolation", None, "ours"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 60 else "")
def test_screen(name: str, frame: str | bytes, code: str | None, reply_to: str | None,
                fails: str | None) -> None:
    refusal = screen(frame)
    if code is None:
        assert refusal is None, refusal
        return
    assert refusal is not None
    assert (refusal.error.code, refusal.reply_to, refusal.fails) == (code, reply_to, fails)
    assert refusal.why


def test_depth_is_counted_without_recursion() -> None:
    assert depth_of("[" * 1_000_000) == MAX_DEPTH + 1  # stops counting, no RecursionError
    assert depth_of('[{"a":[1,2]}]') == 3


@pytest.mark.parametrize(("action", "code"), [
    ("ReserveNow", "NotSupported"),  # OCPP-J 1.6 4.2.3: recognized but not supported
    ("BootNotification", "NotSupported"),
    ("Reboot", "NotImplemented"),  # not known by receiver
    ("x" * 500, "NotImplemented"),
])
def test_unknown_actions_use_the_16_meaning(action: str, code: str) -> None:
    error = unknown_action_error(action)
    assert error.code == code
    assert len(str(error.details["cause"])) < 120
