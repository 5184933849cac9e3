"""hw.logconfig: one format for our events and the libraries' stdlib logs, set up once."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog

from hw.logconfig import NOISY_LOGGERS, configure_logging, get_logger


class _Terminal(io.StringIO):
    """A stream that claims to be a TTY, to exercise the console branch."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; give it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_event_is_one_json_line_with_bound_keys() -> None:
    out = io.StringIO()
    log = get_logger("agent.connector", charger_id="io7-0042")  # before configure: lazy
    configure_logging("INFO", stream=out)

    log.info("limit applied", connector_id=2, current_a=16.0)

    (event,) = _json_lines(out)
    assert event["event"] == "limit applied"
    assert event["charger_id"] == "io7-0042"
    assert event["connector_id"] == 2
    assert event["current_a"] == 16.0
    assert event["level"] == "info"
    assert event["logger"] == "agent.connector"
    stamp = datetime.fromisoformat(event["timestamp"])
    assert stamp.utcoffset() == timedelta(0)


def test_stdlib_library_logs_are_routed_into_the_same_json() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    structlog.contextvars.bind_contextvars(charger_id="io7-0042")

    logging.getLogger("pymodbus").warning("no response from unit %d", 3, extra={"port": "ttyS1"})
    logging.getLogger("pymodbus.client").info("frame sent")  # held at WARNING
    logging.getLogger("ocpp").info("send BootNotification")

    first, second = _json_lines(out)
    assert first["event"] == "no response from unit 3"
    assert first["logger"] == "pymodbus"
    assert first["level"] == "warning"
    assert first["port"] == "ttyS1"
    assert first["charger_id"] == "io7-0042"  # context reaches foreign records too
    assert "timestamp" in first
    assert second["logger"] == "ocpp"
    assert second["level"] == "info"


def test_debug_level_lets_noisy_libraries_through() -> None:
    out = io.StringIO()
    configure_logging("debug", stream=out)

    logging.getLogger("grpc._cython").debug("keepalive ping")

    (event,) = _json_lines(out)
    assert event == {**event, "event": "keepalive ping", "level": "debug"}


def test_exception_stays_on_one_json_line() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    log = structlog.get_logger("master.ct")

    try:
        _ = 1 / 0
    except ZeroDivisionError:
        log.exception("ct poll failed")

    (event,) = _json_lines(out)
    assert event["level"] == "error"
    assert "ZeroDivisionError" in event["exception"]


def test_calling_twice_replaces_the_handler_instead_of_adding_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    root_handlers = len(logging.getLogger().handlers)

    configure_logging("INFO", stream=second)
    structlog.get_logger("agent").info("once")
    logging.getLogger("asyncio").warning("also once")

    assert len(logging.getLogger().handlers) == root_handlers
    assert first.getvalue() == ""
    assert [e["event"] for e in _json_lines(second)] == ["once", "also once"]


def test_terminal_gets_console_output_unless_json_is_forced() -> None:
    tty = _Terminal()
    configure_logging("INFO", stream=tty)
    get_logger("agent", charger_id="io7-0042").info("started")

    line = tty.getvalue()
    assert "\x1b[" in line  # coloured for a human
    plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
    assert "started" in plain
    assert "charger_id=io7-0042" in plain
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)

    forced = _Terminal()
    configure_logging("INFO", json=True, stream=forced)
    get_logger("agent").info("started")
    assert _json_lines(forced)[0]["event"] == "started"


def test_unknown_level_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown log level 'LOUD'.*WARNING"):
        configure_logging("LOUD", stream=io.StringIO())
