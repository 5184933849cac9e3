"""Where `make run`'s masters listen, so `io7ctl` finds them with no arguments.

The car park's masters listen on free ports chosen at start, so no default address can
reach them. The car park writes `RUN_FILE` (`.run/io7ctl.json` under the folder it was
started from) once every master listens, and removes it when it stops:

    {"pid": 4242, "scenario": "C", "logs": "/home/me/io7/.run/scenario-C",
     "masters": [{"group": "garage-L1", "address": "127.0.0.1:40123"}, ...],
     "operator": "/home/me/io7/.run/pki/operators/installer"}

`operator` is the folder of the installer certificate the car park made for io7ctl
(mutual TLS, issue 11); absent or "" when the car park runs without TLS.

`io7ctl` looks for it in the current folder and its parents (like git looks for .git).
A file whose car park is gone (its pid no longer runs) is reported as such, not used.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = Path(".run") / "io7ctl.json"


class RunFileError(Exception):
    """The run file exists but cannot be used (unreadable, or its car park stopped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMaster:
    group: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CarPark:
    """A running car park as its run file describes it."""

    file: Path
    pid: int
    scenario: str
    logs: str
    masters: tuple[RunMaster, ...]
    operator: str = ""  # io7ctl's certificate folder ("": none)


def write(path: Path, *, scenario: str, logs: Path, masters: list[tuple[str, str]],
          operator: Path | None = None) -> None:
    """Write the run file of this process's car park (atomically: io7ctl may read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "scenario": scenario, "logs": str(logs),
            "masters": [{"group": g, "address": a} for g, a in masters],
            "operator": "" if operator is None else str(operator)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def remove(path: Path) -> None:
    """Remove the run file if it is this process's (a newer car park may own it)."""
    with contextlib.suppress(OSError, ValueError):  # already gone or unreadable: leave it
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def find(start: Path) -> Path | None:
    """The nearest `.run/io7ctl.json` in `start` or its parents, None if there is none."""
    for folder in (start, *start.parents):
        candidate = folder / RUN_FILE
        if candidate.is_file():
            return candidate
    return None


def read(path: Path) -> CarPark:
    """The car park of a run file. Raises RunFileError if it is unreadable or its car
    park no longer runs."""
    try:
        data = json.loads(path.read_text())
        park = CarPark(file=path, pid=int(data["pid"]), scenario=str(data["scenario"]),
                       logs=str(data["logs"]),
                       masters=tuple(RunMaster(group=str(m["group"]), address=str(m["address"]))
                                     for m in data["masters"]),
                       operator=str(data.get("operator", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFileError(f"{path}: unreadable ({exc}): delete it, or give --master "
                           "host:port") from exc
    if not _running(park.pid):
        raise RunFileError(f"{path}: its car park (pid {park.pid}) has stopped: start it "
                           "with make run, or give --master host:port")
    return park


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    return True
