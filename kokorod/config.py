"""Daemon settings. Every bound carries its unit in its name."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields

from kokorod.model_facts import SPEED_MAX, SPEED_MIN

# The fraction of each worker's time admission may plan for. The rest absorbs
# what the RTF does not see: the event loop (encoding, sockets) sharing the
# cores, a new stream's first chunk synthesized ahead of everyone's steady
# state, a preempted partial run, and the estimate's own noise on a shared box.
DEFAULT_UTILISATION = 0.8
# Bounds a queued request is refused past: how many wait at once (each holds a
# connection and up to max_text_chars of text) and for how long. 120 s: on a
# loaded 2-core box (RTF 1.2-1.3) the 12th of 12 short announcements sent at
# once waited ~60 s (bench/request_queue.py), so 60 s would have refused it;
# still far under the OpenAI SDK's 600 s read time-out.
DEFAULT_MAX_QUEUED = 32
DEFAULT_QUEUE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServerLimits:
    """The daemon's bounds (--max-* flags); a client is told the part it must
    keep to as kokorod.protocol.messages.ClientLimits."""

    max_connections: int = 64          # open sockets, every protocol (WebSocket, HTTP, Wyoming)
    max_connections_per_ip: int = 0     # of those, from one address; 0: no per-address bound
    max_utterances: int = 16            # queued or speaking, per connection
    max_text_chars: int = 100_000       # unspoken text buffered per utterance
    max_message_bytes: int = 256 * 1024  # larger: error event, connection stays
    hard_max_message_bytes: int = 4 * 1024 * 1024  # larger: websockets closes with 1009
    messages_per_s: float = 200.0
    message_burst: int = 400
    max_send_buffer_s: float = 30.0     # audio queued for a client that is not reading
    # Everything held for one connection that the client has not read: its
    # queued events (audio or not, estimated) and the socket's write buffer
    # (pongs included). Past it the connection is closed (docs/operations.md).
    # Well above 30 s of 48 kHz PCM plus a chunk, so only a non-reader reaches it.
    max_connection_buffer_bytes: int = 8 * 1024 * 1024
    # Connections speaking at once, daemon-wide, on top of measured admission
    # (kokorod.daemon.admission): None = "auto", only what the engine workers can feed
    # at 1x with headroom; a number caps that too (docs/operations.md, Capacity).
    max_active_streams: int | None = None
    # Requests (OpenAI HTTP, Wyoming synthesize, speak with "admission": "queue")
    # wait in a FIFO for a slot instead of being refused; past this many waiting,
    # or after this long, they are refused (kokorod.daemon.request_queue).
    max_queued: int = DEFAULT_MAX_QUEUED
    queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S

    def to_wire(self) -> dict[str, float | int]:
        return {
            "max_text_chars": self.max_text_chars,
            "max_message_bytes": self.max_message_bytes,
            "max_utterances": self.max_utterances,
            "messages_per_s": self.messages_per_s,
            "speed_min": SPEED_MIN,
            "speed_max": SPEED_MAX,
        }


Limits = ServerLimits  # its old name (a second class was named Limits: the protocol's ClientLimits)


_LIMIT_HELP = {  # flag's metavar, help
    "max_connections": ("N", "open connections of every protocol (WebSocket, HTTP API, Wyoming); more are "
                        "refused with a reason (HTTP 503); /healthz still answers"),
    "max_connections_per_ip": ("N", "open connections from one client address (0: no bound); more are refused "
                               "(HTTP 429); behind a proxy every client has the proxy's address"),
    "max_utterances": ("N", "utterances queued or speaking per connection"),
    "max_text_chars": ("N", "unspoken text buffered per utterance"),
    "max_message_bytes": ("BYTES", "larger client messages get a message_too_large error"),
    "hard_max_message_bytes": ("BYTES", "larger frames close the connection (1009)"),
    "messages_per_s": ("RATE", "client messages per second, sustained"),
    "message_burst": ("N", "client messages allowed in a burst"),
    "max_send_buffer_s": ("SECONDS", "audio held for a client that is not reading; past it its stream is cancelled"),
    "max_connection_buffer_bytes": ("BYTES", "everything held for a connection that does not read (events, pongs, "
                                    "socket write buffer); past it the connection is closed"),
    "max_active_streams": ("auto|N", "connections speaking at once, daemon-wide; auto = as many as the measured "
                           "engine speed feeds at 1x with headroom, N = that but at most N; more real-time streams "
                           "are refused with overloaded, requests wait (--max-queued)"),
    "max_queued": ("N", "requests (OpenAI HTTP, Wyoming synthesize, speak with admission queue) waiting for a "
                   "stream slot at once; more are refused with overloaded"),
    "queue_timeout_s": ("SECONDS", "how long a request may wait for a stream slot before it is refused"),
}


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    voice: str = "af_heart"
    max_ahead_s: float = 8.0            # synthesize at most this far ahead of playback
    ping_interval_s: float = 20.0       # keepalive: also ends connections of clients that stopped reading
    ping_timeout_s: float = 20.0
    idle_timeout_s: float = 600.0       # no message and nothing speaking or playing: close
    drain_timeout_s: float = 5.0        # SIGTERM: time streams get to finish
    # HTTP API deadlines, totals (never reset by a byte): the head from its
    # first byte, the body from the end of the head (kokorod.frontends.http).
    http_head_timeout_s: float = 15.0
    http_body_timeout_s: float = 30.0
    stall_flush_s: float = 0.4          # input idle this long after a complete sentence: speak it
    # Latency budget for synthesizing an utterance's first chunk: it is cut at
    # the most natural point whose predicted synthesis time fits (at least one
    # word, and long enough for later chunks to keep up). 0: the segment
    # profile's word counts (4-12 words). See kokorod.text.cut_policy.
    first_audio_ms: float = 250.0
    token: str | None = None
    insecure: bool = False
    allowed_origins: tuple[str, ...] = ()
    log_json: bool = False
    limits: ServerLimits = field(default_factory=ServerLimits)
    # Engine threads, each with its own engine session. 1 (using every core):
    # on the quiet 2-core reference box it reached first audio 21-37 % sooner
    # than 2 x 1 thread, which had ~40 % more throughput but too slow a stream
    # to admit a second one there (docs/operations.md, Capacity).
    engine_workers: int = 1
    engine_threads: int | None = None   # intra-op threads per worker; None: cores / workers (ONNX's default for 1)
    # --engine auto never picks a candidate whose measured resident growth
    # times the workers exceeds this (MB; None: no bound). fp32 weights cost
    # more memory than int8 (kokorod.engine.choice).
    engine_max_rss_mb: float | None = None
    # Fraction of each worker's time measured admission plans for (inf: off,
    # only --max-active-streams counts). See kokorod.daemon.admission.
    stream_utilisation: float = DEFAULT_UTILISATION
    # Admission's margin over the engine's measured speed: None ("auto") learns
    # it from late streams over a conservative RTF (kokorod.daemon.headroom); a
    # number is a fixed margin over the running RTF (1: admission as before).
    admission_margin: float | None = None
    # Wyoming server for Home Assistant (kokorod.frontends.wyoming): off unless
    # a URI is given; a non-loopback host also needs --insecure (no auth in Wyoming).
    wyoming_uri: str | None = None      # "tcp://127.0.0.1:10200" or "unix:///path"
    zeroconf: str | None = None         # advertise _wyoming._tcp under this name (None: off)
    # Pronunciation lexicon file (TOML or JSON, docs/pronunciation.md); reloaded on SIGHUP.
    lexicon_path: str | None = None
    # lang "auto": the voice that speaks a language detected in text whose
    # voice is of another (--voice-for fr=ff_siwis); unset languages keep
    # kokorod.text.detect.DEFAULT_VOICE_FOR.
    voice_for: tuple[tuple[str, str], ...] = ()
    # Rendered chunks kept for repeated phrases (kokorod.daemon.chunk_cache), in
    # MiB of audio plus per-entry overhead; 0 turns the cache off.
    chunk_cache_mb: float = 32.0

    def threads_per_worker(self) -> int | None:
        if self.engine_threads is not None or self.engine_workers == 1:
            return self.engine_threads
        return max(1, available_cpus() // self.engine_workers)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _streams(text: str) -> int | None:
    """``auto`` (measured admission alone) or a cap N >= 1."""
    return None if text.strip().lower() == "auto" else _positive_int(text)


def _non_negative_int(text: str) -> int:
    """``--max-queued``: 0 turns the request queue off (requests are refused like streams)."""
    value = _positive_int(text) if text.strip() != "0" else 0
    return value


def _number(text: str) -> float:
    """A flag's number; the validators below add its range."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


_LIMIT_TYPES = {"max_connection_buffer_bytes": _positive_int, "max_active_streams": _streams, "max_queued": _non_negative_int, "queue_timeout_s": _positive_seconds}


def _utilisation(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def _margin(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    value = _number(text)
    if not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be auto or a number of 1 or more, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _wyoming_uri(text: str) -> str:
    """``tcp://HOST:PORT`` (or ``unix:///path``), checked here so a typo fails
    before the model loads. Whether the host may be non-loopback is decided
    with --insecure (kokorod.frontends.wyoming.check_wyoming_config)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad URI {text!r}: {exc}") from None
    if parts.scheme == "unix" and parts.path:
        return text.strip()
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise argparse.ArgumentTypeError(f"expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:10200) or unix:///path, got {text!r}")
    return text.strip()


def _voice_for(text: str) -> tuple[str, str]:
    """LANG=VOICE, the language canonical (the voice is checked when the voices load)."""
    from kokorod.errors import InputError
    from kokorod.text.languages import resolve

    code, sep, voice = text.partition("=")
    try:
        if not sep or not voice.strip():
            raise InputError(f"{text!r}: expected LANG=VOICE", "e.g. --voice-for fr=ff_siwis")
        return resolve(code).code, voice.strip()
    except InputError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} ({exc.fix})" if exc.fix else exc.message) from None


def _lexicon_file(text: str) -> str:
    """A lexicon file, validated now (every entry, against the model's phoneme
    vocabulary), so a bad one fails before the model loads: argparse prints
    the one-line reason (file:line: entry ...) and exits with status 2."""
    from kokorod.text.lexicon import LexiconError, load_lexicon_file

    try:
        load_lexicon_file(text)
    except LexiconError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text


def add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=os.environ.get("KOKOROD_HOST", "127.0.0.1"), help="bind address (default loopback)")
    p.add_argument("--port", type=int, default=int(os.environ.get("KOKOROD_PORT", "8765")))
    p.add_argument("--voice", default="af_heart", help="default voice")
    p.add_argument("--token", default=None, help="require this bearer token (or $KOKOROD_TOKEN / --token-file)")
    p.add_argument("--token-file", default=os.environ.get("KOKOROD_TOKEN_FILE"), help="read the token from this file")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without a token")
    p.add_argument("--allow-origin", action="append", default=[], help="extra allowed browser Origin (repeatable)")
    p.add_argument("--log-json", action="store_true", help="structured JSON logs")
    p.add_argument("--max-ahead-s", type=float, default=ServerConfig.max_ahead_s, help="synthesis lookahead in seconds")
    p.add_argument("--first-audio-ms", type=_non_negative, default=ServerConfig.first_audio_ms, metavar="MS",
                   help="latency budget for an utterance's first chunk: cut at the most natural point the engine "
                        "is predicted to synthesize within it, from its measured speed (at least one word); 0: "
                        f"4-12 words whatever the speed (default {ServerConfig.first_audio_ms:g})")
    for name, doc in (("idle_timeout_s", "close a connection silent and not speaking for this long"),
                      ("ping_interval_s", "WebSocket keepalive ping interval"),
                      ("ping_timeout_s", "close when a ping gets no pong for this long"),
                      ("drain_timeout_s", "on SIGTERM, let speech finish for up to this long"),
                      ("http_head_timeout_s", "HTTP: a request head not complete this long after its first byte "
                                              "gets 408 (a total, not a gap between bytes)"),
                      ("http_body_timeout_s", "HTTP: a request body not complete this long after its head gets 408")):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(ServerConfig, name), help=doc)
    for f in fields(ServerLimits):
        kind = _LIMIT_TYPES.get(f.name, type(f.default))
        shown = "auto" if f.default is None else f.default
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, dest=f"limit_{f.name}",
                       metavar=_LIMIT_HELP[f.name][0], help=f"{_LIMIT_HELP[f.name][1]} (default {shown})")
    p.add_argument("--engine-workers", type=_positive_int, default=ServerConfig.engine_workers, metavar="N",
                   help="engine threads, each with its own engine session; the scheduler serves the most urgent "
                        f"stream first across all of them (default {ServerConfig.engine_workers})")
    p.add_argument("--engine-threads", type=_positive_int, default=None, metavar="N",
                   help="compute threads per engine worker (default: the cores divided among the workers)")
    p.add_argument("--engine-max-rss-mb", type=_non_negative, default=None, metavar="MB",
                   help="with --engine auto, never choose an engine whose measured resident memory (per worker, "
                        "times --engine-workers) exceeds MB; int8 is always allowed (default: no bound)")
    p.add_argument("--stream-utilisation", type=_utilisation, default=ServerConfig.stream_utilisation, metavar="U",
                   help="fraction of each engine worker's time admission plans streams for; the rest is headroom "
                        f"(default {ServerConfig.stream_utilisation}; inf: admit by --max-active-streams alone)")
    p.add_argument("--admission-margin", type=_margin, default=None, metavar="auto|M",
                   help="factor admission puts on each stream's measured engine time: auto (the default) starts at "
                        "1.5 over the RTF of long chunks under concurrency, rises when an admitted stream runs late "
                        "and falls slowly while streams share the engine on time; a number M is a fixed factor over "
                        "the running RTF (1: admission before the margin was learnt)")
    p.add_argument("--wyoming-uri", type=_wyoming_uri, default=None, metavar="tcp://HOST:PORT",
                   help="also serve the Wyoming protocol (Home Assistant) here, e.g. tcp://127.0.0.1:10200; "
                        "off by default. Wyoming has no authentication: a non-loopback host also needs --insecure "
                        "(docs/home-assistant.md)")
    p.add_argument("--lexicon", type=_lexicon_file, default=None, metavar="PATH",
                   help="pronunciation lexicon, TOML or JSON (word = phonemes, per language); checked at start, "
                        "reloaded on SIGHUP (docs/pronunciation.md)")
    p.add_argument("--voice-for", type=_voice_for, action="append", default=[], metavar="LANG=VOICE",
                   help="with lang auto (the default of the OpenAI API and Wyoming), the voice for text detected in "
                        "LANG when the requested voice is of another language; repeatable (defaults: "
                        "docs/protocol.md#languages)")
    p.add_argument("--cache-mb", type=_non_negative, default=ServerConfig.chunk_cache_mb, metavar="MB",
                   help="memory for rendered chunks, so a repeated phrase (a greeting, a prompt) starts at once "
                        f"without the engine; least recently used first out; 0: off (default {ServerConfig.chunk_cache_mb:g})")
    p.add_argument("--zeroconf", nargs="?", const="kokorod", default=None, metavar="NAME",
                   help="advertise the Wyoming server over mDNS as _wyoming._tcp (Home Assistant discovers it), "
                        "under NAME (default kokorod); needs a tcp:// --wyoming-uri")


def limits_from_args(args: argparse.Namespace) -> ServerLimits:
    return ServerLimits(**{f.name: getattr(args, f"limit_{f.name}") for f in fields(ServerLimits)})
