"""stdin as text fragments for ``kokorod pipe``, as soon as they are written."""

from __future__ import annotations

import asyncio
import codecs
import os
import sys
import threading
import time
from typing import AsyncIterator

from kokorod.errors import InputError

_READ_BYTES = 4096  # os.read returns whatever is there, up to this: partial lines go out at once


class StdinText:
    """stdin as text fragments, as soon as they are written (no waiting for a
    newline or EOF). A daemon thread does the blocking reads, so Ctrl-C never
    waits on it; pieces that piled up meanwhile are joined into one."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.first_text_at: float | None = None
        threading.Thread(target=self._read, name="kokorod-stdin", daemon=True).start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except OSError:
                data = b""
            text = decoder.decode(data, final=not data)
            try:
                if text:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, text)
                if not data:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
                    return
            except RuntimeError:  # the loop is gone (interrupted): nobody listens any more
                return

    async def __aiter__(self) -> AsyncIterator[str]:
        started = False
        held = ""  # leading whitespace: not worth an utterance on its own
        while True:
            piece = await self._queue.get()
            eof = piece is None
            parts = [piece] if piece is not None else []
            while not eof and not self._queue.empty():
                more = self._queue.get_nowait()
                eof = more is None
                if more is not None:
                    parts.append(more)
            text = "".join(parts)
            if not started:
                held += text
                if held.strip():
                    started, text, held = True, held, ""
                    self.first_text_at = time.monotonic()
            if started and text:
                yield text
            if eof:
                break
        if not started:
            raise InputError("there was no text on stdin", 'pipe some in, e.g. echo "Hello" | kokorod pipe')
