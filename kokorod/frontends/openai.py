"""OpenAI-compatible speech API on the daemon's own port (docs/openai.md).

``POST /v1/audio/speech``, ``GET /v1/models`` (and ``/v1/models/{id}``),
``GET /v1/audio/voices``. Each speech request is a thin adapter onto the one
core (its ``FrontDoor``, kokorod.daemon.front_door): a ``door.local_peer()`` session gets the input as ``speak``
fragments of one utterance, and its ``audio`` events go through one streaming
encoder (``kokorod.audio.encode``) into a chunked response body, or into SSE
``speech.audio.delta`` events, as they are made. The status is decided by the
first event that counts: the first audio (200) or an error (its HTTP status),
so a bad voice or an overloaded daemon is an ordinary OpenAI error, and the
first audio bytes leave as soon as the first chunk is synthesized.

Limits, rate limits, metrics and drain are the session's, as for a WebSocket
client. Admission is a request's: at capacity the call waits in the daemon's
request queue (kokorod.daemon.request_queue) before its status line, so a
response never starts and then stutters; past ``--max-queued`` or
``--queue-timeout-s`` it is a 503 with ``Retry-After``. A client that goes away mid-stream
cancels the request's task; leaving the ``local_peer`` block cancels the
utterance, synthesis in flight included.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Final

import numpy as np
from prometheus_client import Counter, Gauge
from kokorod.daemon.connection_slots import Slot
from kokorod.daemon.front_door import FrontDoor, Head, PlainResponse, SimpleHeaders
from kokorod.text.detect import AUTO
from kokorod.frontends.http import HttpProtocol, HttpRequest, HttpResponse, Responder
from kokorod.frontends.openai_schema import (
    MODELS, OPENAI_VOICES, ApiError, SpeechRequest, error_for, max_body_bytes, parse_speech_request, split_input,
)
from kokorod.protocol.messages import (
    Audio, Cancelled, Chunk, Config, Done, Error, ErrorCode, Speak, Warning, WordEvent,
)

log = logging.getLogger("kokorod.openai")

from kokorod.model_facts import SAMPLE_RATE  # the model's rate (once, in the leaf)
# Frames per audio event from the session. The whole first chunk is emitted at
# once whatever the frame size, so larger frames only mean fewer writes.
FRAME_MS: Final = 500
UTTERANCE: Final = "speech"
SPEECH_PATH: Final = "/v1/audio/speech"
MODELS_PATH: Final = "/v1/models"
VOICES_PATH: Final = "/v1/audio/voices"
_EXPOSED: Final = ("X-Kokorod-Voice, X-Kokorod-Language, X-Kokorod-Speed-Clamped, X-Kokorod-Sample-Rate, "
                   "X-Kokorod-Lead-Samples, Retry-After")


class _Metrics:
    def __init__(self, registry: Any) -> None:
        self.requests = Counter("kokorod_http_requests_total", "HTTP API requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=registry)
        self.active = Gauge("kokorod_http_active_speech_requests", "Speech requests being answered", registry=registry)
        self.aborted = Counter("kokorod_http_speech_aborted_total",
                               "Speech responses cut after their first byte, by reason", ["reason"], registry=registry)


class OpenAIFrontend:
    """The HTTP app (``kokorod.frontends.http.App``) on a daemon's front door.

    The door's plain routes (``/healthz``, ``/metrics``, the page...) are
    answered here too when they arrive on a keep-alive connection this app
    already owns.
    """

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.metrics = _Metrics(door.metrics.registry)
        self.protocols: set[HttpProtocol] = set()
        self.active = 0

    # -- connections ---------------------------------------------------------

    def protocol(self, slot: Slot | None = None) -> HttpProtocol:
        proto = HttpProtocol(self, slot=slot, on_close=self.protocols.discard,
                             on_timeout=lambda phase: self.door.metrics.timeouts.labels(phase=phase).inc(),
                             head_timeout_s=self.door.config.http_head_timeout_s,
                             body_timeout_s=self.door.config.http_body_timeout_s)
        self.protocols.add(proto)
        return proto

    def close_idle(self) -> None:
        """Shutdown: close idle keep-alive connections; busy ones close after
        their response (their sessions are drained with the others)."""
        for proto in list(self.protocols):
            proto.close_if_idle()

    # -- App -----------------------------------------------------------------

    def max_body_bytes(self) -> int:
        return max_body_bytes(self.door.limits.max_text_chars)

    def error(self, status: int, message: str) -> HttpResponse:
        return _error_response(ApiError(status, message, code={413: "request_too_large"}.get(status)))

    def precheck(self, request: HttpRequest) -> HttpResponse | None:
        path, method = request.path.rstrip("/") or "/", request.method
        endpoint = _endpoint(path)
        if endpoint is None:
            if method in ("GET", "HEAD"):
                return self._plain_route(request)
            return self._count("other", _error_response(ApiError(404, f"no route {method} {path[:100]}",
                                                                  code="not_found")))
        cors = self._cors(request)
        if method == "OPTIONS":
            return self._preflight(request, endpoint, cors)
        allowed = ("POST",) if endpoint == "speech" else ("GET", "HEAD")
        if method not in allowed:
            response = _error_response(ApiError(405, f"{path} takes {' or '.join(allowed)}", code="method_not_allowed"))
            response.headers.append(("Allow", ", ".join(allowed)))
            return self._count(endpoint, response, cors)
        denied = self._deny(request)
        if denied is not None:
            self.door.metrics.connections_refused.labels(reason="auth").inc()
            return self._count(endpoint, _error_response(denied), cors)
        refusal = self.door.refusal(request.slot)
        if refusal is not None:
            if refusal.reason == "not_ready":  # a slot's refusal was counted when it was taken
                self.door.metrics.connections_refused.labels(reason="not_ready").inc()
            return self._count(endpoint, _error_response(ApiError(
                refusal.status, refusal.message, code=refusal.code, retry_after=refusal.retry_after_s)), cors)
        return None

    async def handle(self, request: HttpRequest, responder: Responder) -> None:
        path = request.path.rstrip("/")
        endpoint = _endpoint(path)
        cors = self._cors(request)
        if endpoint == "speech":
            await self._speech(request, responder, cors)
        elif endpoint == "models":
            await responder.respond(self._count(endpoint, _json(200, {"object": "list", "data": [
                _model(m) for m in MODELS]}), cors))
        elif endpoint == "model":
            name = path[len(MODELS_PATH) + 1:]
            if name in MODELS:
                response = _json(200, _model(name))
            else:
                response = _error_response(ApiError(404, f"model {name[:64]!r} does not exist; use one of: "
                                                    + ", ".join(MODELS), param="model", code="model_not_found"))
            await responder.respond(self._count(endpoint, response, cors))
        else:
            await responder.respond(self._count(endpoint, _json(200, self._voices()), cors))

    # -- checks --------------------------------------------------------------

    def _deny(self, request: HttpRequest) -> ApiError | None:
        head = _head(request)
        auth = self.door.auth
        why = auth.check_token(head)  # type: ignore[arg-type]  # reads .headers only
        if why is not None:
            return ApiError(401, why, code="invalid_api_key")
        why = auth.check_host(head) or auth.check_origin(head)  # type: ignore[arg-type]
        if why is not None:
            return ApiError(403, why, code="forbidden")
        return None

    def _cors(self, request: HttpRequest) -> list[tuple[str, str]]:
        """CORS answer headers for a browser request from an allowed origin."""
        origin = request.header("origin")
        if origin is None or self.door.auth.check_origin(_head(request)) is not None:  # type: ignore[arg-type]
            return []
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                ("Access-Control-Expose-Headers", _EXPOSED)]

    def _preflight(self, request: HttpRequest, endpoint: str, cors: list[tuple[str, str]]) -> HttpResponse:
        if not cors:
            return self._count(endpoint, _error_response(ApiError(403, "origin not allowed (use --allow-origin)",
                                                                  code="forbidden")))
        methods = "POST, OPTIONS" if endpoint == "speech" else "GET, HEAD, OPTIONS"
        asked = request.header("access-control-request-headers") or "Authorization, Content-Type"
        return self._count(endpoint, HttpResponse(204, b"", [
            *cors, ("Access-Control-Allow-Methods", methods), ("Access-Control-Allow-Headers", asked[:1000]),
            ("Access-Control-Max-Age", "600")]))

    def _plain_route(self, request: HttpRequest) -> HttpResponse:
        """A non-API GET on a connection that is already HTTP's: the door's
        plain routes, as on the WebSocket path."""
        try:
            plain = self.door.plain_route(request.method, _head(request))
        except Exception:
            log.exception("plain HTTP route failed")
            return HttpResponse(500, b"internal error\n", [("Content-Type", "text/plain; charset=utf-8")])
        if plain is None:
            if request.path == "/v1/stream":  # the WebSocket endpoint, asked without an upgrade
                return HttpResponse(426, b"WebSocket endpoint: open a new connection with Upgrade: websocket\n",
                                    [("Content-Type", "text/plain; charset=utf-8"), ("Upgrade", "websocket")])
            plain = PlainResponse(404, b"not found; the WebSocket endpoint is /v1/stream\n")
        return HttpResponse(plain.status, plain.body, [("Content-Type", plain.content_type),
                                                       ("Cache-Control", "no-store"), *plain.headers])

    def _count(self, endpoint: str, response: HttpResponse, cors: list[tuple[str, str]] | None = None) -> HttpResponse:
        self.metrics.requests.labels(endpoint=endpoint, status=str(response.status)).inc()
        if cors:
            response.headers.extend(cors)
        return response

    def _voices(self) -> dict[str, Any]:
        voices = self.door.voices
        data = []
        for info in self.door.languages:
            for voice in info.voices:
                data.append({"id": voice, "object": "voice", "name": voice, "language": info.code,
                             "language_name": info.name, "available": info.available})
        aliases = {name: voice for name, voice in OPENAI_VOICES.items() if voice in voices}
        return {"object": "list", "data": data, "openai_voices": aliases}

    # -- speech --------------------------------------------------------------

    async def _speech(self, request: HttpRequest, responder: Responder, cors: list[tuple[str, str]]) -> None:
        limits = self.door.limits
        try:
            spec = parse_speech_request(request.body, max_text_chars=limits.max_text_chars)
        except ApiError as exc:
            await responder.respond(self._count("speech", _error_response(exc), cors))
            return
        self.active += 1
        self.metrics.active.inc()
        try:
            await _SpeechStream(self, spec, responder, cors).run()
        finally:
            self.active -= 1
            self.metrics.active.dec()


class _SpeechStream:
    """One ``/v1/audio/speech`` response, fed by one local session."""

    def __init__(self, app: OpenAIFrontend, spec: SpeechRequest, responder: Responder,
                 cors: list[tuple[str, str]]) -> None:
        self.app, self.spec, self.responder, self.cors = app, spec, responder, cors
        self.sse = spec.stream_format == "sse"
        from kokorod.audio.encode import open_encoder  # PyAV: loaded on the first speech request

        self.encoder = open_encoder(spec.response_format, SAMPLE_RATE)
        self.lead_s = self.encoder.lead_samples / SAMPLE_RATE
        self.pending: list[bytes] = []  # SSE events before the head (words precede their audio)
        self.lang: str | None = None  # the language of the first chunk, for X-Kokorod-Language

    def _headers(self) -> list[tuple[str, str]]:
        spec = self.spec
        headers = [("Content-Type", "text/event-stream" if self.sse else self.encoder.content_type),
                   ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"),
                   ("X-Kokorod-Voice", spec.voice), ("X-Kokorod-Sample-Rate", str(SAMPLE_RATE)),
                   *([("X-Kokorod-Language", self.lang)] if self.lang else []),
                   ("X-Kokorod-Lead-Samples", str(self.encoder.lead_samples))]
        if spec.speed_clamped:
            headers.append(("X-Kokorod-Speed-Clamped", f"{spec.speed_requested}->{spec.speed}"))
        return [*headers, *self.cors]

    async def run(self) -> None:
        spec = self.spec
        fragments = split_input(spec.input, self.app.door.limits.max_message_bytes)
        async with self.app.door.local_peer() as peer:
            peer.send(Config(frame_ms=FRAME_MS))
            for i, fragment in enumerate(fragments):
                first = i == 0
                peer.send(Speak(UTTERANCE, fragment, voice=spec.voice if first else None,
                                # OpenAI's API has no language: the text's own (kokorod.text.detect)
                                speed=spec.speed if first else None, lang=(spec.lang or AUTO) if first else None,
                                final=i == len(fragments) - 1, mode="queue",
                                # A request: it waits for a slot (no audio, no status yet) rather than a 503.
                                admission="queue" if first else None))
            async for event in peer.events():
                if isinstance(event, Audio):
                    await self._audio(event)
                elif isinstance(event, Chunk):
                    # The language it is spoken in (with "auto", the detected one): a
                    # header before the first audio, and an SSE event per chunk.
                    if self.lang is None:
                        self.lang = event.lang
                    if spec.timestamps:
                        await self._event({"type": "kokorod.chunk", "index": event.index, "lang": event.lang,
                                           "start": round(event.start + self.lead_s, 4),
                                           "end": round(event.end + self.lead_s, 4)})
                elif isinstance(event, WordEvent):
                    if spec.timestamps:
                        await self._event({"type": "kokorod.word", "index": event.index, "text": event.text,
                                           "start": round(event.start + self.lead_s, 4),
                                           "end": round(event.end + self.lead_s, 4)})
                elif isinstance(event, Warning):
                    # The text itself is never logged: its length says how much was not spoken.
                    log.info("speech request: %s: %s (%d characters)", event.code, event.message, len(event.text))
                    if spec.timestamps:
                        await self._event({"type": "kokorod.warning", "code": event.code, "message": event.message,
                                           "text": event.text})
                elif isinstance(event, Done):
                    await self._done(event)
                    return
                elif isinstance(event, Cancelled):
                    await self._fail(error_for(ErrorCode.OVERLOADED, f"speech cancelled ({event.reason})")
                                     if event.reason != "shutdown" else
                                     ApiError(503, "kokorod is shutting down", code="shutting_down", retry_after=1),
                                     event.reason)
                    return
                elif isinstance(event, Error):
                    message = event.message
                    if event.code == ErrorCode.UNKNOWN_VOICE:
                        message += "; GET /v1/audio/voices lists the voices; OpenAI names: " + ", ".join(OPENAI_VOICES)
                    await self._fail(error_for(event.code, message), event.code)
                    return
            await self._fail(ApiError(503, "kokorod is shutting down", code="shutting_down", retry_after=1),
                             "shutdown")

    async def _start(self) -> None:
        if not self.responder.started:
            self.app.metrics.requests.labels(endpoint="speech", status="200").inc()
            await self.responder.start(200, self._headers())
            for line in self.pending:
                await self.responder.send(line)
            self.pending.clear()

    async def _audio(self, event: Audio) -> None:
        await self._start()
        pcm = np.frombuffer(event.pcm, dtype="<i2")
        await self._bytes(self.encoder.encode(pcm))

    async def _bytes(self, data: bytes) -> None:
        if not data:
            return
        if self.sse:
            await self._event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
        else:
            await self.responder.send(data)

    async def _event(self, payload: dict[str, Any]) -> None:
        line = b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        if self.responder.started:
            await self.responder.send(line)
        else:
            self.pending.append(line)

    async def _done(self, done: Done) -> None:
        await self._start()
        await self._bytes(self.encoder.flush())
        if self.sse:
            chars = len(self.spec.input)
            await self._event({"type": "speech.audio.done",
                               "usage": {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars},
                               "duration": done.duration, "samples": done.samples})
        await self.responder.end()

    async def _fail(self, error: ApiError, reason: str) -> None:
        if not self.responder.started:
            await self.responder.respond(self.app._count("speech", _error_response(error), self.cors))
            return
        self.app.metrics.aborted.labels(reason=str(reason)).inc()
        if self.sse:  # SSE can say why, then end cleanly
            await self.responder.send(b"data: " + json.dumps({"type": "error", "error": json.loads(error.body())["error"]
                                                              }).encode() + b"\n\n")
            await self.responder.end()
        else:  # a chunked body cut without its last chunk reads as truncated
            self.responder.abort()


def _endpoint(path: str) -> str | None:
    if path == SPEECH_PATH:
        return "speech"
    if path == MODELS_PATH:
        return "models"
    if path.startswith(MODELS_PATH + "/"):
        return "model"
    if path == VOICES_PATH:
        return "voices"
    return None


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "kokorod"}


def _json(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(),
                        [("Content-Type", "application/json"), ("Cache-Control", "no-store")])


def _error_response(error: ApiError) -> HttpResponse:
    return HttpResponse(error.status, error.body(), error.headers())


def _head(request: HttpRequest) -> Head:
    """The request as the core reads one (AuthPolicy, the plain routes)."""
    return Head(request.target, SimpleHeaders(request.headers))
