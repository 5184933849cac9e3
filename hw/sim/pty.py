"""Two pseudo-terminals joined back to back: a null-modem cable inside one process.

Why two: a pty has one master end (a file descriptor, no path) and one slave end
(`/dev/pts/N`). Both the pymodbus RTU server and the driver under test want a *path* to
open with pyserial, exactly as they would open `/dev/ttyUSB0`. So we make two ptys, give
the server one slave path and the client (possibly another process) the other, and copy
bytes between the two master ends, untouched, like `socat pty,raw pty,raw`. RTU framing,
CRCs and timing are then pymodbus' own on both sides; nothing of the protocol is faked.

We keep each slave end open ourselves (raw mode), so the line settings hold and a client
closing its end does not hang the pty up: it can reopen the same path and read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty


class PtyNullModem:
    """A pair of ptys bridged back to back. Use `server_path` and `client_path`."""

    def __init__(self) -> None:
        self._server_master, self._server_slave = os.openpty()
        self._client_master, self._client_slave = os.openpty()
        for fd in (self._server_slave, self._client_slave):
            tty.setraw(fd, termios.TCSANOW)
        for fd in (self._server_master, self._client_master):
            os.set_blocking(fd, False)
        self.server_path = os.ttyname(self._server_slave)
        self.client_path = os.ttyname(self._client_slave)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start copying bytes both ways on the running event loop."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._server_master, self._copy, self._server_master, self._client_master)
        loop.add_reader(self._client_master, self._copy, self._client_master, self._server_master)
        self._loop = loop

    @staticmethod
    def _copy(source: int, destination: int) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while the other side reopens: nothing to forward
        with contextlib.suppress(BlockingIOError, OSError):
            # A full pty buffer drops the bytes, as line noise would: a CRC catches it.
            os.write(destination, data)

    def close(self) -> None:
        """Stop copying and close all four ends."""
        if self._loop is not None:
            for fd in (self._server_master, self._client_master):
                self._loop.remove_reader(fd)
            self._loop = None
        for fd in (
            self._server_master,
            self._server_slave,
            self._client_master,
            self._client_slave,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)
