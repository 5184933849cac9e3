"""Editing io7.toml from the web UI: comment-preserving (tomlkit), written atomically.

1. `edited(text, changes)` is pure: the file's text with each dotted key set (None
   removes it, so the loader's default applies again), every comment, blank line and the
   order of the rest kept as the installer wrote them. A missing table is created at the
   end ([ocpp.uk_default] for a first smart charging setting).
2. `write_atomic(path, text)`: a temporary file in the same folder (same filesystem, so
   the rename is atomic), written, flushed and fsynced, given the old file's mode (the
   file may hold the OCPP AuthorizationKey: 0600 stays 0600), then `os.replace`d over
   the file and the folder fsynced so the rename itself survives a power cut. A crash at
   any point leaves either the old file or the new one, never a mix; the temporary file
   is removed if anything fails before the rename. A symlinked io7.toml is written
   through to its target (the link stays).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomlkit

__all__ = ["edited", "write_atomic"]


def edited(text: str, changes: Mapping[str, Any]) -> str:
    """`text` (a TOML document) with `changes` applied: dotted key -> new value, None to
    remove the key. Raises tomlkit's ParseError if `text` is not TOML."""
    doc = tomlkit.parse(text)
    for dotted, value in changes.items():
        *tables, name = dotted.split(".")
        node = _descend(doc, tables, create=value is not None)
        if node is None:
            continue  # removing a key whose table is absent: nothing to do
        if value is None:
            if name in node:
                del node[name]
        else:
            node[name] = value
    return tomlkit.dumps(doc)


def _descend(doc: tomlkit.TOMLDocument, names: list[str], *, create: bool) -> Any:
    node: Any = doc
    for name in names:
        if name not in node:
            if not create:
                return None
            node[name] = tomlkit.table()
        node = node[name]
    return node


def write_atomic(path: Path, text: str, *, private: bool = False,
                 replace: Callable[[str, str], None] = os.replace) -> int:
    """Replace the file at `path` with `text` atomically and durably (module rule 2);
    `private`: readable by its owner alone. Returns the mode it had before (0 if none).
    `replace` is os.replace (a test passes one that fails, as a crash before the rename
    would). Raises OSError; the old file is then unchanged."""
    target = path.resolve()
    folder = target.parent
    try:
        old = mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        old, mode = 0, 0o600
    if private:
        mode &= 0o700
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        replace(tmp, str(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return old
