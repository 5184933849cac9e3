"""Process-wide structured logging, configured once by each process's `main`.

Our own code logs through structlog (`structlog.get_logger()`, key=value events); the
libraries we sit on (grpc, pymodbus, websockets, ocpp, asyncio) log through the stdlib
`logging` module. Both are rendered by one handler on the root logger, so a process writes
a single stream in a single format: JSON lines when it runs under systemd/journald or in a
test (stream is not a TTY), readable colour output on a terminal.

Only `main` functions call `configure_logging`; library modules just call
`structlog.get_logger()` (or `get_logger` below) and never touch handlers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

__all__ = ["NOISY_LOGGERS", "configure_logging", "get_logger"]

#: Libraries that log every frame/register at INFO or DEBUG; held at WARNING unless the
#: process runs at DEBUG, so a 1 s control cycle does not drown the log.
NOISY_LOGGERS = ("pymodbus", "websockets", "grpc")


class _Io7Handler(logging.StreamHandler[TextIO]):
    """The root handler installed by `configure_logging`; its type is how a second call
    finds and replaces it instead of adding another one."""


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


def _parse_level(level: str) -> int:
    levels = logging.getLevelNamesMapping()
    try:
        return levels[level.strip().upper()]
    except KeyError:
        choices = ", ".join(sorted(n for n in levels if n not in {"NOTSET", "WARN", "FATAL"}))
        raise ValueError(f"unknown log level {level!r}; use one of {choices}") from None


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib `logging` into one handler on `stream` (default stderr).

    `json=None` picks JSON lines unless `stream` is a TTY. Safe to call again (e.g. to
    change the level): the previous handler is replaced, never duplicated.
    """
    numeric_level = _parse_level(level)
    out: TextIO = stream if stream is not None else sys.stderr
    tty = _is_tty(out)
    use_json = not tty if json is None else json

    # Run for every event, ours and foreign, before rendering.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]

    renderer: Processor
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if use_json:
        # One line per event, exceptions as a string field, not a multi-line dump.
        final += [structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:
        # ConsoleRenderer prints tracebacks itself.
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    final.append(renderer)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # first: drop disabled levels cheaply
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    handler = _Io7Handler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=final,
        )
    )

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Io7Handler)]:
        root.removeHandler(old)
        old.close()  # deregisters it; a StreamHandler never closes its stream
    root.addHandler(handler)
    root.setLevel(numeric_level)

    noisy_level = (
        logging.NOTSET if numeric_level <= logging.DEBUG else max(logging.WARNING, numeric_level)
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(noisy_level)


def get_logger(name: str, **bound: Any) -> structlog.stdlib.BoundLogger:
    """A stdlib-backed structlog logger named `name` with `bound` keys on every event.

    Binding is lazy, so a module-level `log = get_logger(__name__, charger_id=...)` made
    before `configure_logging` runs still uses the final configuration.
    """
    return structlog.stdlib.get_logger(name, **bound)
