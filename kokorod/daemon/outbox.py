"""Events waiting for one client's socket.

Bounded by seconds of audio, not by count: what matters is how much speech a
client that stopped reading can make us hold. Every event is also counted in
bytes (``nbytes``), because a client can make us hold events that are not
audio (a ``warning`` per emoji, ``phonemes`` answers) without limit; the
session judges both (``Session._emit``, ``Session._check_outbox_bytes``).
Events of a cancelled utterance are purged here, which is what makes "nothing
follows ``cancelled``" true even for frames that were already produced.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import Any, Callable

from kokorod.protocol.messages import Audio


def _audio_us(event: Any) -> int:
    """Integer microseconds, so adding and removing the same frames returns to exactly 0."""
    return event.samples * 1_000_000 // event.sample_rate if isinstance(event, Audio) else 0


# What a queued event costs beyond its strings and bytes (the object, its
# fields, the deque slot): an estimate, so a flood of small events is counted.
EVENT_OVERHEAD_BYTES = 200


def event_bytes(event: Any) -> int:
    """Roughly what holding ``event`` costs: its payloads and text plus a fixed
    overhead per object. Estimated, not measured (sys.getsizeof misses nested
    objects): it only has to grow with what a client can make us queue."""
    if isinstance(event, (bytes, bytearray, memoryview, str)):
        return len(event)
    if isinstance(event, (tuple, list)):
        return sum(event_bytes(item) for item in event)
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return EVENT_OVERHEAD_BYTES + sum(event_bytes(getattr(event, f.name)) for f in dataclasses.fields(event))
    return 0


def _utterance_of(event: Any) -> str | None:
    return getattr(event, "utterance", None)


class Outbox:
    def __init__(self, max_bytes: int | None = None, on_full: Callable[[], None] | None = None) -> None:
        # Past max_bytes, on_full is told once (the session closes the connection);
        # from then on the outbox holds nothing: what it held goes nowhere.
        self.max_bytes, self._on_full, self.full = max_bytes, on_full, False
        self._items: deque[tuple[Any, int]] = deque()  # (event, its event_bytes)
        self._ready = asyncio.Event()
        self._audio_us = 0  # audio queued, not yet handed to the socket
        self.nbytes = 0  # every queued event, estimated by event_bytes
        self._taken = asyncio.Event()  # set whenever queued audio leaves (sent or purged)

    @property
    def audio_s(self) -> float:
        return self._audio_us / 1_000_000

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: Any) -> None:
        if self.full:
            return
        self._items.append((event, event_bytes(event)))
        self._audio_us += _audio_us(event)
        self.nbytes += self._items[-1][1]
        self._ready.set()
        if self.max_bytes is not None and self.nbytes > self.max_bytes:
            self.full = True
            self.clear()
            if self._on_full is not None:
                self._on_full()

    def clear(self) -> None:
        """Drop everything queued (memory goes back at once, not when the client closes)."""
        self._items.clear()
        self._audio_us = self.nbytes = 0
        self._taken.set()

    def purge(self, utterance: str) -> int:
        """Drop every queued event of ``utterance``; returns how many."""
        kept: deque[tuple[Any, int]] = deque()
        dropped = 0
        for item in self._items:
            if _utterance_of(item[0]) == utterance:
                dropped += 1
                self._audio_us -= _audio_us(item[0])
                self.nbytes -= item[1]
            else:
                kept.append(item)
        self._items = kept
        self._taken.set()
        return dropped

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        event, nbytes = self._items.popleft()
        self._audio_us -= _audio_us(event)
        self.nbytes -= nbytes
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
