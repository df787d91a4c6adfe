"""An utterance being spoken: its text and progress (a ``ResumeTracker``), the
daemon-side ("wire") id it has on the current connection, and how much of its
text went out there."""

from __future__ import annotations

import asyncio
from typing import AsyncIterable, AsyncIterator, Iterable

from kokorod.client.connection import Connection
from kokorod.client.failover import Resumed
from kokorod.client.resume import ResumeTracker
from kokorod.protocol.messages import Speak

__all__ = ["OpenUtterance", "visible_chars", "fragments_of"]


def visible_chars(text: str) -> int:
    # Chunk texts may not carry the whitespace between segments; counting only
    # the rest keeps "sent minus spoken" from drifting over a long stream.
    return len(text) - sum(1 for c in text if c.isspace())


class OpenUtterance:
    """One open utterance: its text, progress, and where it lives now."""

    def __init__(self, uid: str, voice: str | None, speed: float | None, mode: str | None, lang: str | None,
                 sample_rate: int, priority: str | None = None) -> None:
        self.uid = uid
        self.tracker = ResumeTracker(uid, sample_rate)
        self.voice, self.speed, self.mode, self.lang = voice, speed, mode, lang
        self.priority = priority  # "background": re-sent as such on a failover
        self.conn: Connection | None = None   # where ``wire`` lives
        self.wire: str | None = None
        self.created = False                   # its creating speak went out on ``conn``
        self.sent = 0                          # characters of tracker.text sent on ``wire``
        self.final_sent = False
        self.counts = [0, 0]                   # visible characters on ``wire``: [sent, chunked]
        self.resumed: Resumed | None = None    # goes into the stream before the wire's first event
        self.lock = asyncio.Lock()

    async def send_next(self, conn: Connection) -> bool:
        """Send the next piece of ``utt``'s unsent text (call with ``lock`` held);
        False when there is nothing to send."""
        text, start = self.tracker.text, self.sent
        step = max(1, (conn.ready.limits.max_message_bytes - 2048) // 4)  # worst case 4 UTF-8 bytes a char
        piece = text[start:start + step]
        end = self.tracker.final and start + len(piece) >= len(text)
        if self.created and not piece and (self.final_sent or not end):
            return False
        wire = self.wire
        assert wire is not None
        if not self.created:
            mode = self.mode if self.tracker.segments <= 1 else "queue"  # replayed in their original order
            await conn.send(Speak(wire, piece, self.voice, self.speed, end, mode, self.lang,  # type: ignore[arg-type]
                                  priority=self.priority))  # type: ignore[arg-type]
        else:
            await conn.send(Speak(wire, piece, final=end))
        if self.wire == wire:  # else it was re-attached meanwhile; that re-sent it all
            self.created, self.sent, self.final_sent = True, start + len(piece), end
            self.counts[0] += visible_chars(piece)
        return True


async def fragments_of(fragments: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if hasattr(fragments, "__aiter__"):
        async for piece in fragments:
            yield piece
    else:
        for piece in fragments:
            yield piece
