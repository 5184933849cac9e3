"""Small files that must survive a power cut whole: written to a temporary file, flushed
to disk (fsync), then renamed over the old one, so a reader sees the old text or the new
one, never half of either (POSIX rename is atomic). Used for the master's and the agent's
term files."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_durably(path: Path, text: str) -> None:
    """Replace `path`'s content with `text` atomically and durably. Raises OSError."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
