"""Where `make run`'s groups can be asked, so `io7ctl` finds their masters with no arguments.

The car park's chargers listen on free ports chosen at start, so no default address can
reach them. The car park writes `RUN_FILE` (`.run/io7ctl.json` under the folder it was
started from) once every daemon runs, and removes it when it stops:

    {"pid": 4242, "scenario": "C", "logs": "/home/me/io7/.run/scenario-C",
     "groups": [{"group": "garage-L1", "members": [
         {"charger_id": "io7-L1-1", "address": "127.0.0.1:20123"}, ...]}, ...],
     "operator": "/home/me/io7/.run/pki/operators/installer"}

Every member's address is its master candidate's (io7d, issue 13): only the elected one
serves there, so io7ctl asks them in turn. An older file's `"masters": [{"group",
"address"}]` (one io7-master per group) still reads, as a group of one member.

`operator` is the folder of the installer certificate the car park made for io7ctl
(mutual TLS, issue 11); absent or "" when the car park runs without TLS.

`io7ctl` looks for it in the current folder and its parents (like git looks for .git).
A file whose car park is gone (its pid no longer runs) is reported as such, not used.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_FILE = Path(".run") / "io7ctl.json"


class RunFileError(Exception):
    """The run file exists but cannot be used (unreadable, or its car park stopped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMember:
    """One member's master candidate; `charger_id` is "" in an older run file."""

    charger_id: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunGroup:
    """A group and its members, in the order io7ctl asks them."""

    group: str
    members: tuple[RunMember, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"group {self.group!r} lists no member")

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(m.address for m in self.members)


@dataclass(frozen=True, slots=True, kw_only=True)
class CarPark:
    """A running car park as its run file describes it."""

    file: Path
    pid: int
    scenario: str
    logs: str
    groups: tuple[RunGroup, ...]
    operator: str = ""  # io7ctl's certificate folder ("": none)


def write(path: Path, *, scenario: str, logs: Path, groups: Sequence[RunGroup],
          operator: Path | None = None) -> None:
    """Write the run file of this process's car park (atomically: io7ctl may read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "scenario": scenario, "logs": str(logs),
            "groups": [{"group": g.group, "members": [
                {"charger_id": m.charger_id, "address": m.address} for m in g.members]}
                for g in groups],
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
                       groups=_groups(data),
                       operator=str(data.get("operator", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFileError(f"{path}: unreadable ({exc}): delete it, or give --master "
                           "host:port") from exc
    if not _running(park.pid):
        raise RunFileError(f"{path}: its car park (pid {park.pid}) has stopped: start it "
                           "with make run, or give --master host:port")
    return park


def _groups(data: dict[str, Any]) -> tuple[RunGroup, ...]:
    """The groups of a run file, or of an older one's masters (one member each)."""
    if "groups" not in data:
        return tuple(RunGroup(group=str(m["group"]), members=(
            RunMember(charger_id="", address=str(m["address"])),)) for m in data["masters"])
    return tuple(RunGroup(group=str(g["group"]), members=tuple(
        RunMember(charger_id=str(m["charger_id"]), address=str(m["address"]))
        for m in g["members"])) for g in data["groups"])


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    return True
