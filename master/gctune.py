"""The garbage collector's thresholds for a long-running daemon (issue 15).

Almost every object the master makes per cycle (reports, Limits, asyncio futures) dies by
reference counting; the cyclic collector only has to find the few cycles among them. With
CPython's default first threshold (700 net container allocations) it ran ~11 times per
cycle at 1 000 chargers and rescanned the whole heap of member caches every few seconds:
12 % of the master's CPU (`python -m tests.master.cyclecost`, gc.callbacks timing).

1. The first threshold is raised to `YOUNG_THRESHOLD`: a young collection per ~50 000
   net allocations. The garbage left waiting is bounded by that count (a few MB).
2. What exists once the daemon has started (modules, classes, configuration) is frozen
   (`gc.freeze`): it lives as long as the process, so no collection needs to scan it.
3. Modules imported later (io7d imports the master's at its first lead, issue 15) are
   frozen then (`freeze_imported`): one collection of ~20 ms on the event loop, well
   inside Raft's 0.1 s heartbeat, so no garbage is frozen with them.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10


def tune_for_daemon() -> None:
    """Rules 1-2; call once start-up has imported and configured everything."""
    freeze_imported()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_imported() -> None:
    """Rule 2 (at start) and 3 (once a later module graph has been imported)."""
    gc.collect()
    gc.freeze()
