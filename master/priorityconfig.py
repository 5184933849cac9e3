"""Priority classes per connector (issue 12 §3), read from master.toml.

    [priorities]                  # class 0 (default) to 9; higher is admitted and filled
    "io7-01" = 2                  #   first. A charger id: every connector of it;
    "io7-03/2" = 1                #   "charger/connector": that connector only (wins)

    [group.tuning]
    priority_max_starve_s = 3600  # a lower class waiting this long gets its turn

The classes become GroupConfig.priorities; load management applies them in admission and
sharing (master/allocation/admission.py, sharing.py). Errors are `ConfigError` naming the
file and the dotted key, like the rest of the file.
"""

from __future__ import annotations

from hw.tomltable import TomlTable
from master.allocation.model import MAX_PRIORITY_CLASS
from master.externalconfig import MAX_CHARGER_ID_CHARS


def read_priorities(t: TomlTable | None) -> tuple[tuple[str, int, int], ...]:
    """The [priorities] table as (charger id, connector id or 0 for all, class) entries,
    sorted; () when absent. Raises the table's config error for a bad key or class."""
    if t is None:
        return ()
    out = []
    for name in sorted(t.data):
        charger, slash, conn = name.partition("/")
        if not charger or len(charger) > MAX_CHARGER_ID_CHARS or (slash and not conn):
            raise t.error(name, "must be a charger id, or \"charger/connector\" "
                          "(e.g. \"io7-03/2\")")
        connector = 0
        if slash:
            if not conn.isdigit() or not 1 <= int(conn) <= 255:
                raise t.error(name, f"connector {conn!r} must be a number in 1..255")
            connector = int(conn)
        value = t.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 0 <= value <= MAX_PRIORITY_CLASS:
            raise t.error(name, f"the class must be a whole number in 0..{MAX_PRIORITY_CLASS}, "
                          f"not {value!r}")
        out.append((charger, connector, value))
    t.done()
    return tuple(out)
