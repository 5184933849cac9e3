"""`io7-sim run --plot`: the day as two pictures, one above the other.

Top: the current on each site phase at the grid connection against the main fuse.
Bottom: each connector's offered current (what its pilot says). matplotlib is the `sim`
extra; it is imported here only, so the rest of io7-sim runs without it.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from master.sim.run import RunResult

PHASE_COLOURS = ("#8B4513", "#222222", "#888888")  # L1 brown, L2 black, L3 grey (5.3.4)


def plot_run(run: RunResult, title: str, out: Path) -> None:
    """Write the figure of `run` to `out` (PNG, SVG or PDF by its suffix)."""
    tr = run.trace
    hours = tr.t_s / 3600.0
    fig = Figure(figsize=(12, 7))  # no pyplot: no GUI backend, no global state
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for p in range(3):
        top.plot(hours, tr.grid_a[:, p], lw=0.7, color=PHASE_COLOURS[p], label=f"L{p + 1}")
    fuses = sorted(set(tr.fuse_a))
    for f in fuses:
        top.axhline(f, color="red", lw=1.0, ls="--")
    top.text(hours[0], fuses[-1], " main fuse", color="red", va="bottom", fontsize=8)
    top.set_ylabel("grid current per phase (A)")
    top.set_ylim(bottom=min(0.0, float(tr.grid_a.min())), top=max(fuses) * 1.15)
    top.legend(loc="upper right", fontsize=8)
    top.set_title(title, fontsize=10)
    for j, (cid, k) in enumerate(tr.connectors):
        bottom.step(hours, tr.offered_a[:, j], where="post", lw=0.7, label=f"{cid}/{k}")
    bottom.set_ylabel("offered current (A)")
    bottom.set_xlabel("time of day (h)")
    if len(tr.connectors) <= 12:
        bottom.legend(loc="upper right", fontsize=6, ncol=4)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
