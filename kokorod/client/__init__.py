"""asyncio client for the kokorod daemon (wire protocol v1, docs/protocol.md).

One API, usable two ways::

    async with kokorod.client.connect("ws://127.0.0.1:8765/v1/stream") as client:
        uid = await client.speak("Hello there.")
        async for event in client.stream(uid):        # Chunk, WordEvent, Audio, then Done
            ...

    client = await KokorodClient.connect(url, token="secret")   # same thing, closed by you
    audio, sample_rate, words = await client.synthesize("Hello.")
    await client.close()

``connect()`` (also ``KokorodClient.connect``) returns an object that can be
awaited or used in ``async with``. After it, ``client.ready`` holds the Ready event
of the daemon it is connected to.

Failover (docs/client.md): ``connect([url1, url2, ...])`` tries the URLs in order.
With ``failover=True`` (the default) an utterance refused as ``overloaded``
before it made a sound is re-sent on a new connection after a backoff with
jitter, and an utterance whose connection is lost is resumed on a new
connection (the next URL; with one URL, the same one, e.g. a load balancer)
from the first word the listener has not heard in full. Its stream keeps its
id and one continuous timeline, with a ``Resumed`` event where it continues.

Events:
- ``client.stream(uid)`` yields the events of one utterance and ends after its
  ``Done``, ``Cancelled`` or ``Error``. Events of an utterance started with
  ``speak()`` are buffered from the moment it is sent, so nothing is missed when
  ``stream()`` is called afterwards (the buffers of the 32 most recent ended
  utterances nobody streamed are kept, older ones are dropped).
- ``client.events()`` yields every event received after the call, of any
  utterance, plus ``Configured`` and session-level ``Error``s; it ends on close().

Speaking: ``speak(text)`` sends one message; ``speak(async_iterable)`` sends each
fragment as it arrives (an LLM's tokens) and ``final`` after the last. Fragments
are throttled below the daemon's message rate and its unspoken-text limit, so a
fast producer is slowed down instead of having fragments dropped.

Failures are ``KokorodError`` subclasses (one printable line plus a fix):
``DaemonUnavailable`` (nothing listens), ``AuthenticationFailed`` (HTTP 401),
``ConnectionLost`` (the socket dropped mid-stream and failover, if on, gave up),
``KokorodServerError`` (an ``error`` event, raised by ``synthesize()`` and
``configure()``).
"""

from __future__ import annotations

from kokorod.client.connection import (
    AuthenticationFailed, ConnectionLost, DaemonBusy, DaemonUnavailable, KokorodServerError,
)
from kokorod.client.core import DEFAULT_URL, KokorodClient
from kokorod.client.failover import FailoverPolicy, Resumed
from kokorod.client.resume import ResumePoint, ResumeTracker
from kokorod.client.session import Fragments, Synthesis, UtteranceEvent, audio_of
from kokorod.protocol.messages import Audio, Cancelled, Chunk, Configured, Done, Error, Ready, Warning, WarningEvent, WordEvent

__all__ = ["DEFAULT_URL", "KokorodClient", "connect", "Synthesis", "audio_of", "KokorodServerError",
           "DaemonUnavailable", "DaemonBusy", "AuthenticationFailed", "ConnectionLost", "Audio", "Chunk",
           "WordEvent", "Done", "Cancelled", "Error", "Configured", "Ready", "Warning", "WarningEvent", "Resumed",
           "FailoverPolicy", "ResumeTracker", "ResumePoint", "UtteranceEvent", "Fragments"]

connect = KokorodClient.connect
