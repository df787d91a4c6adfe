"""Narration through a running daemon, with today's protocol.

Each segment (cut here by the same segmenter the daemon uses) is one
utterance, collected whole with ``KokorodClient.synthesize``; the pause after
it is added here, as the daemon's session adds it between the chunks of one
utterance. The client runs on an event loop of its own thread; the narration
job calls ``render`` from its worker thread and blocks on the result, and
``cancel`` (Ctrl-C) stops the request on the daemon at once.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import threading
from typing import Any

import numpy as np

from kokorod.speech.seams import pause_for_boundary
from kokorod.speech.render import seam_kind
from kokorod.model_facts import SAMPLE_RATE
from kokorod.errors import KokorodError
from kokorod.text import languages
from kokorod.text.per_language import segmenter_for
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.speech.chunk import Word

TOKEN_ENV = "KOKOROD_TOKEN"
_CONNECT_S = 10

# The one place where a narration's requests get their kind (issue 20): a long
# job runs as a background request, so a live stream admitted beside it never
# underruns because of a book: the daemon gives it only engine time no live
# stream needs, never refuses it for capacity, and makes it as fast as this
# client reads (not at 1x), docs/protocol.md.
REQUEST_PRIORITY: dict[str, Any] = {"priority": "background"}


class RemoteRenderer:
    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, client: Any,
                 args: argparse.Namespace) -> None:
        self._loop, self._thread, self._client = loop, thread, client
        self.voice, self.speed = args.voice, args.speed
        self.lang = languages.resolve(args.lang) if args.lang else languages.for_voice(args.voice or "af_heart")
        self._lang_arg = args.lang
        self._current: str | None = None
        self._closed = False

    def segmenter(self) -> Segmenter:
        return segmenter_for(self.lang)

    def render(self, segment: Segment, last: bool) -> tuple[np.ndarray, list[Word], list[str]]:
        if not segment.spoken.strip():  # code, markup only: nothing to send (reported by the job)
            return np.zeros(0, np.float32), [], []
        uid = self._current = "narrate-" + os.urandom(6).hex()
        audio, words, warned = asyncio.run_coroutine_threadsafe(self._speak(segment.text.strip(), uid),
                                                                self._loop).result()
        kind = seam_kind(segment, last)
        pause = pause_for_boundary(kind, self.speed or 1.0) if kind is not None else 0
        if audio.size and pause:
            audio = np.concatenate([audio, np.zeros(pause, np.float32)])
        return audio, words, [w for w in warned if w not in segment.dropped]  # the job reports those

    async def _speak(self, text: str, uid: str) -> tuple[np.ndarray, list[Word], list[str]]:
        """One utterance collected whole: audio, words (samples from its start) and
        the text the daemon warned it did not speak."""
        from kokorod.client import Audio, Cancelled, Error, KokorodServerError, WordEvent, audio_of
        from kokorod.protocol.messages import Warning

        stream = self._client.stream(uid)  # before speaking: buffers from the first event on
        await self._client.speak(text, utterance=uid, voice=self.voice, speed=self.speed, lang=self._lang_arg,
                                 **REQUEST_PRIORITY)
        parts: list[np.ndarray] = []
        words: list[Word] = []
        warned: list[str] = []
        async for event in stream:
            if isinstance(event, Audio):
                if event.sample_rate != SAMPLE_RATE:
                    raise KokorodError(f"the daemon sent {event.sample_rate} Hz audio; narration needs {SAMPLE_RATE}")
                parts.append(audio_of(event))
            elif isinstance(event, WordEvent):
                while words and len(words) > event.index:  # re-sent after a resume
                    words.pop()
                words.append(Word(event.text, round(event.start * SAMPLE_RATE), round(event.end * SAMPLE_RATE)))
            elif isinstance(event, Warning):
                warned.append(event.text)
            elif isinstance(event, Error):
                raise KokorodServerError(event)
            elif isinstance(event, Cancelled):
                raise KokorodError(f"the daemon stopped the narration ({event.reason})")
        audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        return audio, words, warned

    def cancel(self) -> None:
        """Stop the utterance in flight on the daemon (its render then raises)."""
        uid = self._current
        if uid is not None and not self._closed:
            asyncio.run_coroutine_threadsafe(self._client.cancel(uid), self._loop)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(timeout=5)
        except Exception:  # closing a connection already gone is not worth a traceback
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def connect_renderer(args: argparse.Namespace) -> RemoteRenderer | None:
    """A renderer on the daemon at ``args.url``, or None when none answers."""
    from kokorod.client import DaemonUnavailable, KokorodClient

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kokorod-narrate-client", daemon=True)
    thread.start()
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    async def connect() -> Any:
        return await KokorodClient.connect(args.url, token=token)

    try:
        client = asyncio.run_coroutine_threadsafe(connect(), loop).result(timeout=_CONNECT_S)
    except (DaemonUnavailable, concurrent.futures.TimeoutError, OSError):
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        return None
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        raise
    return RemoteRenderer(loop, thread, client, args)
