"""Ending a Wyoming connection after an ``error`` without resetting the client.

After an ``error`` the connection ends (kokorod.frontends.wyoming explains why; kokorod.frontends.wyoming_handler does it),
but the client may still be writing its request: ``synthesize-chunk`` events,
or a whole ``synthesize``. Closing a socket with unread input makes the kernel
reset it, and the client then reads ``Connection reset by peer`` (or a broken
pipe) instead of our error. So we half-close (the client reads the error, then
end of stream), read and discard what it still sends, bounded in bytes and in
time, and only then close.
"""

from __future__ import annotations

import asyncio
from typing import Any

DISCARD_MAX_BYTES = 1024 * 1024
DISCARD_MAX_S = 2.0
_READ_BYTES = 64 * 1024


class Linger:
    """One connection's clean ending: ``half_close()`` once the error is
    written, ``dropped(event)`` for events still read by the handler, then
    ``finish()`` (discard what is left, close)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ending = False   # the error was sent: the client's input is being dropped
        self.discarded = 0    # bytes of it dropped so far

    async def half_close(self) -> None:
        """No more events from us: the client reads the error, then end of stream."""
        self.ending = True
        try:
            await self.writer.drain()
            if self.writer.can_write_eof() and not self.writer.is_closing():
                self.writer.write_eof()
        except (ConnectionError, OSError):
            pass

    def dropped(self, event: Any) -> bool:
        """Count an event read after the error; False once past the byte bound."""
        self.discarded += len(event.payload or b"") + len(repr(event.data or {}))
        return self.discarded < DISCARD_MAX_BYTES

    async def finish(self) -> None:
        """Half-close, read and discard the rest (bounded), then close."""
        await self.half_close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DISCARD_MAX_S
        try:
            while self.discarded < DISCARD_MAX_BYTES and (left := deadline - loop.time()) > 0:
                data = await asyncio.wait_for(self.reader.read(_READ_BYTES), left)
                if not data:
                    break
                self.discarded += len(data)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        self.writer.close()
