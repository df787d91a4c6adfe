"""The idle rule, one for every adapter (WebSocket, Wyoming).

A connection is idle when the client sent nothing and had nothing to hear for
``--idle-timeout-s``. Busy: an utterance with text still to speak (or final,
so it ends by itself) and audio still playing on the client (``play_end``).
An utterance waiting for text the client never sends is not activity: it
would otherwise hold a stream slot forever.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from kokorod.daemon.session import Session


async def wait_until_idle(session: Session, last_message: Callable[[], float], timeout_s: float) -> None:
    """Return once ``session`` has been idle for ``timeout_s`` (loop time);
    never, when ``timeout_s`` is 0 (off). The caller closes the connection."""
    if timeout_s <= 0:
        await asyncio.Event().wait()
    loop = asyncio.get_running_loop()
    # Polling keeps this independent of the session's internals; a few wakeups
    # per timeout per connection cost nothing.
    step = min(5.0, max(0.05, timeout_s / 4))
    busy_at = loop.time()
    while True:
        now = loop.time()
        if any(u.final or u.segments for u in session.utterances.values()):
            busy_at = now
        remaining = max(last_message(), busy_at, session.play_end) + timeout_s - now
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, step))
