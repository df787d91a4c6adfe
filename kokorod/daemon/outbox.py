"""Events waiting for one client's socket.

Bounded by seconds of audio, not by count: what matters is how much speech a
client that stopped reading can make us hold. Events of a cancelled utterance
are purged here, which is what makes "nothing follows ``cancelled``" true even
for frames that were already produced.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from kokorod.protocol.messages import Audio


def _audio_us(event: Any) -> int:
    """Integer microseconds, so adding and removing the same frames returns to exactly 0."""
    return event.samples * 1_000_000 // event.sample_rate if isinstance(event, Audio) else 0


def _utterance_of(event: Any) -> str | None:
    return getattr(event, "utterance", None)


class Outbox:
    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._audio_us = 0  # audio queued, not yet handed to the socket
        self._taken = asyncio.Event()  # set whenever queued audio leaves (sent or purged)

    @property
    def audio_s(self) -> float:
        return self._audio_us / 1_000_000

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: Any) -> None:
        self._items.append(event)
        self._audio_us += _audio_us(event)
        self._ready.set()

    def purge(self, utterance: str) -> int:
        """Drop every queued event of ``utterance``; returns how many."""
        kept: deque[Any] = deque()
        dropped = 0
        for event in self._items:
            if _utterance_of(event) == utterance:
                dropped += 1
                self._audio_us -= _audio_us(event)
            else:
                kept.append(event)
        self._items = kept
        self._taken.set()
        return dropped

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        event = self._items.popleft()
        self._audio_us -= _audio_us(event)
        self._taken.set()
        return event

    async def wait_below(self, audio_s: float, timeout_s: float) -> bool:
        """Wait until at most ``audio_s`` of audio is queued, for up to
        ``timeout_s``; whether it got there.

        Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancel that comes
        in the same loop step as the wake-up, and ``Session._cancel`` does just
        that (``purge`` wakes us, then the task is cancelled)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.audio_s > audio_s:
            if loop.time() >= deadline:
                return False
            self._taken.clear()
            timer = loop.call_at(deadline, self._taken.set)
            try:
                await self._taken.wait()
            finally:
                timer.cancel()
        return True
