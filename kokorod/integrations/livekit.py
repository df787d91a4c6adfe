"""kokorod as a LiveKit Agents TTS: ``kokorod.integrations.livekit.TTS``.

Install with ``pip install 'kokorod[livekit]'`` (livekit-agents), run a daemon
(``kokorod serve``), then::

    from kokorod.integrations.livekit import TTS
    session = AgentSession(tts=TTS(voice="af_heart"), use_tts_aligned_transcript=True, ...)

It streams (``capabilities.streaming``): ``stream()`` sends the LLM's text to the
daemon fragment by fragment as it is pushed, and audio comes back while text is
still arriving. It is aligned (``capabilities.aligned_transcript``): every frame
carries ``TimedString``s with each word's start and end on the segment's audio
timeline, from kokorod's own word events, so LiveKit's transcript follows the
voice word by word instead of estimating a speaking rate.

How LiveKit's stream maps onto kokorod's protocol (docs/livekit.md has more):
- one ``SynthesizeStream`` is one kokorod utterance and one LiveKit segment;
- ``push_text`` → a ``speak`` fragment (split anywhere, even mid-word);
- ``flush()`` / ``end_input()`` → ``final``: the rest is spoken even without a
  sentence terminator, and the segment ends with the utterance's ``done``
  (livekit-agents 1.8 ignores text pushed after a flush: one segment a stream);
- ``aclose()`` (the framework's barge-in) → ``cancel``: the daemon stops at
  once and nothing more of the utterance is played.

Connections are pooled (LiveKit's ``ConnectionPool``): streams run one after
another on one WebSocket, and streams that overlap each get their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.utils import ConnectionPool

from kokorod.client import DEFAULT_URL, KokorodClient
from kokorod.errors import KokorodError
from kokorod.integrations.livekit_errors import api_error, event_error  # noqa: F401  (re-exported)
from kokorod.integrations.livekit_stream import ChunkedStream, SynthesizeStream
from kokorod.protocol.messages import SAMPLE_RATE, SAMPLE_RATES

__all__ = ["TTS", "KOKORO_SAMPLE_RATE", "SAMPLE_RATES"]

KOKORO_SAMPLE_RATE = SAMPLE_RATE  # SAMPLE_RATES: what the daemon resamples to (docs/protocol.md)
# A pooled connection is replaced after this long, well before the daemon's
# default --idle-timeout-s (600 s) would close it under us.
_MAX_CONNECTION_AGE_S = 300.0


@dataclass(frozen=True)
class _Options:
    urls: tuple[str, ...]      # tried in order; failover moves to the next
    token: str | None
    failover: bool             # resume an utterance whose connection is lost (kokorod.client)
    voice: str | None          # None: the daemon's default voice
    speed: float | None
    lang: str | None           # None: the voice's language
    sample_rate: int
    emitter_frame_ms: int      # size of the frames handed to LiveKit


class TTS(tts.TTS):
    """A kokorod daemon as a LiveKit Agents TTS (24 kHz mono by default)."""

    def __init__(self, *, url: str | Sequence[str] = DEFAULT_URL, token: str | None = None,
                 voice: str | None = "af_heart", speed: float | None = None, lang: str | None = None,
                 sample_rate: int = KOKORO_SAMPLE_RATE, frame_ms: int = 100, failover: bool = True) -> None:
        """``url``: the daemon's WebSocket endpoint, or several (tried in order);
        ``token``: its bearer token if it wants one; ``voice`` (a name or a blend ``"af_heart:0.7,af_bella:0.3"``),
        ``speed`` (0.5–2.0) and ``lang`` (e.g. ``"es"``) apply to every utterance;
        ``sample_rate``: one the daemon resamples to (24000 is the model's own);
        ``frame_ms``: the duration of the frames handed to LiveKit; ``failover``:
        when a connection is lost mid-utterance, kokorod's client reconnects (to
        the next URL) and resumes from the first word not fully heard, on the same
        timeline, so LiveKit sees one unbroken segment."""
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {SAMPLE_RATES}, not {sample_rate}")
        if not 10 <= frame_ms <= 1000:
            raise ValueError(f"frame_ms must be 10-1000, not {frame_ms}")
        super().__init__(capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
                         sample_rate=sample_rate, num_channels=1)
        urls = (url,) if isinstance(url, str) else tuple(url)
        if not urls:
            raise ValueError("url: give at least one daemon URL")
        self._opts = _Options(urls, token, failover, voice, speed, lang, sample_rate, frame_ms)
        self._pool = ConnectionPool[KokorodClient](
            connect_cb=self._connect, close_cb=self._close_connection,
            max_session_duration=_MAX_CONNECTION_AGE_S, connect_timeout=DEFAULT_API_CONNECT_OPTIONS.timeout,
        )

    @property
    def model(self) -> str:
        return "kokoro-82m"

    @property
    def provider(self) -> str:
        return "kokorod"

    def update_options(self, *, voice: str | None = None, speed: float | None = None,
                       lang: str | None = None) -> None:
        """Change the voice, speed or language of streams created from now on."""
        changes = {k: v for k, v in (("voice", voice), ("speed", speed), ("lang", lang)) if v is not None}
        self._opts = dataclasses.replace(self._opts, **changes)

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.SynthesizeStream:
        return SynthesizeStream(tts=self, conn_options=conn_options)

    def prewarm(self) -> None:
        """Open a connection now, so the first utterance does not wait for it."""
        self._pool.prewarm()

    async def aclose(self) -> None:
        await self._pool.aclose()

    # -- connections ---------------------------------------------------------

    async def _connect(self, timeout_s: float) -> KokorodClient:
        try:
            client = await KokorodClient.connect(list(self._opts.urls), token=self._opts.token,
                                                 open_timeout=timeout_s, failover=self._opts.failover)
        except KokorodError as exc:
            raise api_error(exc) from exc
        try:
            if self._opts.sample_rate != client.ready.sample_rate:
                await client.configure(sample_rate=self._opts.sample_rate, format="pcm_s16le")
        except BaseException as exc:
            await client.close()
            if isinstance(exc, KokorodError):
                raise api_error(exc) from exc
            raise
        return client

    @staticmethod
    async def _close_connection(client: KokorodClient) -> None:
        await client.close()
