"""Switch a running simulator's faults with one-line commands (stdin of the process).

An installer testing a site wants to see what the master does when the CT kit goes
silent, reads NaN, answers late or freezes, without restarting anything: the simulator
started with `--commands` reads lines like `fault late 700` on its stdin and answers each
with one JSON line on stdout, e.g. {"fault": "late", "late_ms": 700}. `parse` is pure;
`apply` sets the fault on every device the process serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hw.sim.devices import ModbusFault, SimulatedModbusDevice

MS_PER_S = 1000.0
MAX_LATE_MS = 60_000  # a minute late is as good as silent

COMMANDS_HELP = """\
fault commands (with --commands: one per line on stdin, each answered by a JSON line):
  fault none           answer normally again
  fault silent         no answer at all (as an unplugged kit)
  fault nan            every value reads NaN
  fault frozen         the values of the last answer, again and again
  fault late MS        every answer MS milliseconds late (e.g. 700)
  fault short-reply    two registers fewer than asked for
  fault exception      Modbus exception 4, device failure
  status               the fault in force
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultCommand:
    """A fault to switch to; `late_ms` only with LATE. None of them = `status`."""

    fault: ModbusFault | None
    late_ms: int = 0


def parse(line: str) -> FaultCommand:
    """One command line. Raises ValueError saying what is allowed."""
    words = line.split()
    if words == ["status"]:
        return FaultCommand(fault=None)
    names = [f.value for f in ModbusFault]
    if len(words) < 2 or words[0] != "fault" or words[1] not in names:
        raise ValueError(f"{line.strip()!r}: say 'fault NAME' with NAME one of {names} "
                         "(late takes milliseconds), or 'status'")
    fault = ModbusFault(words[1])
    if fault is ModbusFault.LATE:
        if len(words) != 3 or not words[2].isdigit() or not 0 < int(words[2]) <= MAX_LATE_MS:
            raise ValueError(f"{line.strip()!r}: say 'fault late MS' with 1 <= MS <= "
                             f"{MAX_LATE_MS}, e.g. 'fault late 700'")
        return FaultCommand(fault=fault, late_ms=int(words[2]))
    if len(words) != 2:
        raise ValueError(f"{line.strip()!r}: 'fault {fault.value}' takes no value")
    return FaultCommand(fault=fault)


def apply(command: FaultCommand, devices: Sequence[SimulatedModbusDevice]) -> dict[str, object]:
    """Switch every device to `command`'s fault (none for `status`); the state in force."""
    for device in devices:
        if command.fault is not None:
            device.fault = command.fault
            device.late_s = command.late_ms / MS_PER_S
    state: dict[str, object] = {"fault": devices[0].fault.value}
    if devices[0].fault is ModbusFault.LATE:
        state["late_ms"] = round(devices[0].late_s * MS_PER_S)
    return state


def answer(line: str, devices: Sequence[SimulatedModbusDevice]) -> str:
    """The JSON answer to one command line (an error is answered too, never raised)."""
    try:
        return json.dumps(apply(parse(line), devices))
    except ValueError as exc:
        return json.dumps({"error": str(exc)})


async def read_commands(devices: Sequence[SimulatedModbusDevice],
                        write: Callable[[str], None]) -> None:
    """Answer the command lines of stdin until it closes; the simulator serves on."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
            raise ValueError("neither a terminal nor a pipe")  # a file, /dev/null: no events
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError) as exc:
        write(json.dumps({"error": f"cannot read commands on stdin ({exc}): run it in a "
                                   "terminal or pipe commands into it; serving on"}))
        return
    while line := await reader.readline():
        if line.strip():
            write(answer(line.decode(errors="replace"), devices))
