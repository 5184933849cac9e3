"""The group's per-phase limit at run time (SetGroupLimit): what a request may set.

1. The installed limit (`group.limit_a` in master.toml) is the ceiling: it is the main
   fuse, a physical fact, so a request may only lower the limit for a while (load
   shedding) and restore it, never raise it past the fuse (issue 11).
2. The floor is 6 A (IEC 61851-1: nothing below 6 A can charge) and the engine's own
   range (at least the safety margin); a value that is not a finite number is refused.
3. The fallback limit (shared while the CT kit is lost) follows the lower of its
   configured value and the new limit: nothing may share more than the limit.
"""

from __future__ import annotations

import math
from dataclasses import replace

from master.allocation import MIN_CURRENT_A, GroupConfig, InvalidInputError
from master.allocation.model import MAX_GROUP_LIMIT_A
from master.errors import RequestError


def with_limit(group: GroupConfig, limit_a: float, fallback_limit_a: float | None, *,
               installed_limit_a: float | None = None) -> GroupConfig:
    """`group` with per-phase limit `limit_a` (rules 1-3); `installed_limit_a` None: no
    ceiling but the engine's (the config's own check). Raises RequestError when the
    limit is not allowed, with the allowed range."""
    if isinstance(limit_a, bool) or not isinstance(limit_a, int | float) \
            or not math.isfinite(limit_a):
        raise RequestError(peer="SetGroupLimit", problem=f"limit_a={limit_a!r} is not a number")
    if installed_limit_a is not None and not MIN_CURRENT_A <= limit_a <= installed_limit_a:
        raise RequestError(
            peer="SetGroupLimit",
            problem=f"limit_a={limit_a:g} A is outside the allowed range "
            f"[{MIN_CURRENT_A:.1f}, {installed_limit_a:.1f}] A: the installed limit "
            "(group.limit_a in the master's config, the main fuse) is the ceiling; a "
            "request may only lower it for a while")
    fallback = None if fallback_limit_a is None else min(fallback_limit_a, limit_a)
    try:
        return replace(group, limit_a=float(limit_a), fallback_limit_a=fallback)
    except InvalidInputError as exc:
        raise RequestError(peer="SetGroupLimit",
                           problem=f"{exc} (per-phase limit, 6 to {MAX_GROUP_LIMIT_A:g} A, "
                           "at least the safety margin)") from exc
