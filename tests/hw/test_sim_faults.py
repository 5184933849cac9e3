"""Faults switched at run time in a simulator process, as an installer would do it.

`python -m hw.sim.modbus_server --ctkit --tcp ... --commands` runs as a real process; the
test writes commands to its stdin, reads the JSON answers on its stdout, and reads the
kit over Modbus TCP with the real driver (a fresh bus per read, like `io7-hw`).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hw.errors import DeviceGarbageError, DeviceTimeoutError
from hw.modbus.ctkit import CtKitConfig, ModbusCtKit
from hw.modbus.transport import BusSettings, ModbusBus, TcpSettings
from hw.sim.devices import ModbusFault
from hw.sim.faultctl import FaultCommand, parse

START_UP_S = 10.0  # generous: a cold interpreter importing pymodbus on a busy runner
ANSWER_S = 5.0


class Simulator:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hw.sim.modbus_server", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.where = self.line(START_UP_S)

    def line(self, timeout_s: float = ANSWER_S) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            self.proc.kill()
            raise AssertionError(f"no answer from the simulator: {self.proc.communicate()[1]}")
        return dict(json.loads(self.proc.stdout.readline()))

    def say(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.line()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # 1 h of the office day per real second: the clamps change between any two reads.
    simulator = Simulator("--ctkit", "--tcp", "127.0.0.1:0", "--site", "office",
                          "--start-h", "8", "--speed", "3600", "--commands")
    yield simulator
    simulator.proc.terminate()
    assert simulator.proc.wait(timeout=5) == 0


async def read_once(sim: Simulator) -> tuple[float, ...]:
    bus = ModbusBus(BusSettings(endpoint=TcpSettings(host="127.0.0.1",
                                                     port=int(sim.where["port"]))))
    try:
        clamps = await ModbusCtKit(bus, CtKitConfig.scenario_b(rated_a=100.0)).read_clamps()
    finally:
        bus.close()
    return tuple(c.current_a for c in clamps)


@pytest.fixture
async def first(sim: Simulator) -> AsyncIterator[tuple[float, ...]]:
    yield await read_once(sim)


async def test_faults_switch_while_it_runs(sim: Simulator, first: tuple[float, ...]) -> None:
    assert first != await read_once(sim)  # live values
    assert sim.say("fault nan") == {"fault": "nan"}
    with pytest.raises(DeviceGarbageError, match="current L1 is nan"):
        await read_once(sim)
    assert sim.say("fault late 700") == {"fault": "late", "late_ms": 700}
    with pytest.raises(DeviceTimeoutError):
        await read_once(sim)
    assert sim.say("fault silent") == {"fault": "silent"}
    with pytest.raises(DeviceTimeoutError):
        await read_once(sim)
    assert sim.say("fault none") == {"fault": "none"}
    before = await read_once(sim)
    assert sim.say("fault frozen") == {"fault": "frozen"}
    frozen = [await read_once(sim) for _ in range(3)]
    assert frozen[0] == frozen[1] == frozen[2]  # bit for bit, though the site moves on
    assert sim.say("status") == {"fault": "frozen"}
    assert sim.say("fault none") == {"fault": "none"}
    assert await read_once(sim) not in (before, frozen[0])
    assert "error" in sim.say("fault late")
    assert "error" in sim.say("reboot")
    assert sim.say("status") == {"fault": "none"}


def test_help_documents_the_commands() -> None:
    done = subprocess.run([sys.executable, "-m", "hw.sim.modbus_server", "--help"],
                          capture_output=True, text=True, timeout=30, check=True)
    assert "--commands" in done.stdout and "fault late MS" in done.stdout


def test_a_bad_start_fault_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "hw.sim.modbus_server", "--ctkit", "--pty",
                           "--fault", "late"], check=False, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "fault late MS" in done.stderr


ROWS = [
    ("status", FaultCommand(fault=None)),
    ("fault none", FaultCommand(fault=ModbusFault.NONE)),
    ("fault late 700", FaultCommand(fault=ModbusFault.LATE, late_ms=700)),
    ("  fault frozen \n", FaultCommand(fault=ModbusFault.FROZEN)),
]


@pytest.mark.parametrize(("line", "command"), ROWS, ids=[r[0].strip() for r in ROWS])
def test_parse(line: str, command: FaultCommand) -> None:
    assert parse(line) == command


@pytest.mark.parametrize("line", ["fault", "fault late 0", "fault late 70000", "fault nan 3",
                                  "fault unplugged", "status now"])
def test_parse_refuses(line: str) -> None:
    with pytest.raises(ValueError, match=r"say .fault|takes no value"):
        parse(line)
