"""A real mosquitto broker on a free loopback port, for the MQTT tests (issue 14 §5).

Anonymous clients from 127.0.0.1 only (the listener binds loopback); no persistence, so
each broker starts empty. Skipped with the reason when /usr/sbin/mosquitto is missing
(.ci/sysdeps.sh installs it)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import free_port

MOSQUITTO = Path("/usr/sbin/mosquitto")
START_TIMEOUT_S = 10.0  # generous: a loaded CI machine; a broker is up in ~50 ms


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not MOSQUITTO.exists():
        pytest.skip(f"{MOSQUITTO} is missing: apt-get install mosquitto (.ci/sysdeps.sh)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\n")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"mosquitto did not start on port {port}: {err}")
                time.sleep(0.05)
        yield Broker("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
