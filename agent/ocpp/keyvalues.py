"""Values of configuration keys that need more than a type check: the phase rotation
(ConnectorPhaseRotation, OCPP 1.6 section 9.1) and the Basic auth password
(AuthorizationKey, OCPP 1.6 security whitepaper). Pure; agent.ocpp.configkeys checks a
ChangeConfiguration with them and agent.ocpp.settings the [ocpp] table.

Rules:
 1. ConnectorPhaseRotation is a list of `<connector>.<rotation>`, each connector (0 =
    the grid connection to the main meter) at most once, rotation one of ROTATIONS. The
    agent's default comes from each socket's wiring (R, S, T = site L1, L2, L3, in the
    order of the socket's L1, L2, L3): the io7's own meter sits on the socket's lines,
    so the wiring is the rotation that tells a CSMS anything. Single-phase sockets are
    NotApplicable; two wired lines have no 1.6 name (Unknown).
 2. A password (security profiles 1 and 2) must be hard to guess: it is refused when it
    looks like a placeholder (PLACEHOLDERS, e.g. the deploy example's "change-me"), has
    fewer than MIN_DISTINCT different characters, repeats a shorter pattern, or half of
    it or more is a run with a constant step ("aaaa", "1234", "0x00 0x11 0x22"). A key
    of random bytes or characters is refused by none of these but with odds below one in
    a million (a run of 8 equal steps among 16 random hex digits: ~1e-7).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from enum import IntEnum

ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")
_LETTERS = "RST"  # OCPP 1.6 9.1: R = L1, S = L2, T = L3
MIN_DISTINCT = 5
PLACEHOLDERS = ("changeme", "password", "passw0rd", "secret", "example", "placeholder",
                "replaceme", "yourkey", "yourpassword", "insertkey", "default", "letmein",
                "qwerty", "dummy", "fixme")
HOW_TO_FIX = ("generate a random one (e.g. `openssl rand -hex 20`, 40 characters), "
              "register it for this charge point at the CSMS and set it here")


def phase_rotation(wirings: Mapping[int, Sequence[IntEnum | None]]) -> str:
    """Rule 1: ConnectorPhaseRotation from each connector's wiring (site phase of its
    L1, L2, L3; None = not wired), by connector id."""
    items = []
    for cid in sorted(wirings):
        lines = [p for p in wirings[cid] if p is not None]
        if len(lines) == 1:
            rotation = "NotApplicable"
        elif len(lines) == 3 and len(set(lines)) == 3:
            rotation = "".join(_LETTERS[int(p)] for p in lines)
        else:
            rotation = "Unknown"
        items.append(f"{cid}.{rotation}")
    return ",".join(items)


def rotation_problem(value: str, connectors: int) -> str | None:
    """Rule 1: why `value` is not a ConnectorPhaseRotation for connectors 0-`connectors`,
    None if it is."""
    seen: set[int] = set()
    for item in (i.strip() for i in value.split(",")) if value.strip() else ():
        cid, dot, rotation = item.partition(".")
        if not (dot and cid.isascii() and cid.isdigit() and rotation in ROTATIONS):
            return f"{item!r}: write <connector>.<rotation>, rotation one of {ROTATIONS}"
        if int(cid) > connectors:
            return f"{item!r}: this charger has connectors 0-{connectors}"
        if int(cid) in seen:
            return f"connector {cid} is listed twice"
        seen.add(int(cid))
    return None


def _constant_step_run(data: bytes) -> int:
    """The longest stretch of `data` whose neighbours all differ by the same step."""
    best = min(len(data), 1)
    run, step = 1, None
    for a, b in itertools.pairwise(data):
        run = run + 1 if b - a == step else 2
        step = b - a
        best = max(best, run)
    return best


def _period(data: bytes) -> int:
    """The shortest p such that `data` is a pattern of p bytes repeated."""
    for p in range(1, len(data) // 2 + 1):
        if all(data[i] == data[i - p] for i in range(p, len(data))):
            return p
    return len(data)


def weak_key_problem(key: bytes) -> str | None:
    """Rule 2: why `key` (the password's bytes) is too easy to guess, None if it is not.
    The length rules are the caller's (config: 16-40 characters; the key: 16-20 bytes)."""
    folded = "".join(chr(b) for b in key if chr(b).isalnum()).lower()
    word = next((w for w in PLACEHOLDERS if w in folded), None)
    if word is not None:
        return f"looks like a placeholder ({word!r})"
    distinct = len(set(key))
    if distinct < MIN_DISTINCT:
        return f"has only {distinct} different characters (at least {MIN_DISTINCT})"
    if _period(key) < len(key):
        return f"repeats a pattern of {_period(key)} characters"
    if 2 * _constant_step_run(key) >= len(key):
        return f"half of it or more is a run like 'aaaa' or '1234' " \
            f"({_constant_step_run(key)} of {len(key)} characters)"
    return None
