"""master/handshaketap.py: a real pipe in place of a file descriptor, a real thread; and
a real process that re-executes itself to turn gRPC core's tracer on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from master import handshaketap
from master.handshakelog import HandshakeRefusal
from master.handshaketap import HandshakeTap

TRACES = Path(__file__).parent / "handshake_traces"
OTHER = b'{"event": "cycle", "level": "debug"}\nno newline at the end'


def tapped(tmp_path: Path, **kw: bool) -> tuple[int, Path, HandshakeTap]:
    """A descriptor standing in for fd 2 (a file behind it), tapped."""
    out = tmp_path / "stderr"
    target = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    fd = os.dup(target)
    os.close(target)
    return fd, out, HandshakeTap(fd=fd, python_stderr=False, **kw)


def forwarded(out: Path, data: bytes, timeout_s: float = 10.0) -> None:
    """Until the tap's thread has forwarded `data` (real time, generous bound)."""
    deadline = time.monotonic() + timeout_s
    while data not in out.read_bytes():
        assert time.monotonic() < deadline, f"not forwarded: {data!r}"
        time.sleep(0.01)


def test_other_output_is_forwarded_unchanged_and_refusals_go_to_the_sink(
        tmp_path: Path) -> None:
    fd, out, tap = tapped(tmp_path)
    seen: list[HandshakeRefusal] = []
    tap.sink = seen.append
    capture = (TRACES / "no_certificate.stderr").read_bytes()
    for i in range(0, len(capture), 1000):  # a record split across writes
        os.write(fd, capture[i:i + 1000])
    os.write(fd, OTHER)
    tap.close()
    os.write(fd, b"\nafter the close: straight to the file\n")
    os.close(fd)
    text = out.read_bytes()
    assert b"CallNextHandshakerLocked" not in text and b"PEER_DID_NOT_RETURN" in text
    assert OTHER in text  # the partial last line too, at the close
    assert text.endswith(b"after the close: straight to the file\n")
    assert [(r.reason, r.abandoned) for r in seen] == [("no client certificate", False)]


def test_a_failing_sink_or_parser_never_stops_the_forwarding(tmp_path: Path) -> None:
    fd, out, tap = tapped(tmp_path)

    def broken(refusal: HandshakeRefusal) -> None:
        raise RuntimeError("disk on fire")

    class BrokenParser:
        drop_trace = True

        def feed(self, data: bytes) -> tuple[bytes, list[HandshakeRefusal]]:
            raise ValueError("parser bug")

    tap.sink = broken
    os.write(fd, (TRACES / "expired.stderr").read_bytes())
    os.write(fd, b"still here\n")
    forwarded(out, b"still here\n")
    tap._parser = BrokenParser()  # type: ignore[assignment]
    os.write(fd, b"a chunk the parser cannot read\n")
    forwarded(out, b"a chunk the parser cannot read\n")
    os.write(fd, b"and the next\n")
    tap.close()
    os.close(fd)
    text = out.read_text()
    assert "cannot record the refused handshake of ipv4:127.0.0.1:" in text
    assert "(certificate expired): RuntimeError('disk on fire')" in text
    # the sink's complaint comes after the chunk it was in was forwarded, whether
    # "still here" was read in the same chunk as the trace or not: leave it out
    forwarded_lines = "".join(line for line in text.splitlines(keepends=True)
                              if "cannot record the refused handshake" not in line)
    assert forwarded_lines.endswith(
        "still here\na chunk the parser cannot read\nand the next\n")


def test_the_tracer_is_appended_to_the_users() -> None:
    assert handshaketap.with_tracer({"GRPC_TRACE": "api"})["GRPC_TRACE"] == "api,handshaker"
    assert handshaketap.with_tracer({})["GRPC_TRACE"] == "handshaker"
    assert handshaketap.traced({"GRPC_TRACE": "api, handshaker"})
    assert handshaketap.traced({"GRPC_TRACE": "all"})
    assert not handshaketap.traced({"GRPC_TRACE": "api"})


@pytest.mark.parametrize(("env", "problem"), [
    ({}, "cannot re-execute itself"),
    ({"GRPC_TRACE": "handshaker", "GRPC_VERBOSITY": "error"}, "GRPC_VERBOSITY=ERROR hides"),
])
def test_no_tap_says_why(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                         problem: str) -> None:
    monkeypatch.delenv("GRPC_TRACE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    tap = handshaketap.start(reexec=False)
    assert problem in tap.problem
    tap.close()  # nothing to close


RE_EXEC = textwrap.dedent("""
    import json, os, sys
    import grpc  # as io7-master does: too late for GRPC_TRACE, so start re-executes
    from master import handshaketap
    print(json.dumps({"pid": os.getpid(), "trace": os.environ.get("GRPC_TRACE")}), flush=True)
    tap = handshaketap.start(reexec=True)
    assert sys.stderr.fileno() != 2  # python's own logs bypass the pipe
    print("python's stderr", file=sys.stderr, flush=True)
    os.write(2, b"fd 2 goes through it\\n")
    tap.close()
""")


def test_start_re_executes_with_the_tracer_in_the_same_process(tmp_path: Path) -> None:
    env = {**os.environ, "GRPC_TRACE": "api", "PYTHONPATH": str(Path.cwd())}
    env.pop("IO7_HANDSHAKE_TRACE", None)
    done = subprocess.run([sys.executable, "-c", RE_EXEC], capture_output=True, env=env,
                          timeout=60, check=True)
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["pid"] == second["pid"]  # exec: systemd and the harness see one process
    assert (first["trace"], second["trace"]) == ("api", "api,handshaker")
    assert b"python's stderr\nfd 2 goes through it\n" in done.stderr
