"""``kokorod serve``: its flags, checked as they are read (a bad value fails
before the model loads, with argparse's one-line reason and status 2), and the
``ServerConfig`` they make; the daemon itself starts in kokorod.app."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields

from kokorod.cli.options import add_engine_args
from kokorod.config import ServerConfig, ServerLimits


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("serve", help="run the WebSocket daemon")
    add_server_args(p)
    add_engine_args(p)
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from kokorod.app import run_server
    from kokorod.speech.build import EngineOptions

    config = config_from_args(args)
    return run_server(config, EngineOptions.from_args(args, threads=config.threads_per_worker()),
                      verbose=getattr(args, "verbose", False))


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


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    from kokorod.auth import load_token

    return ServerConfig(
        host=args.host, port=args.port, voice=args.voice, max_ahead_s=args.max_ahead_s,
        first_audio_ms=args.first_audio_ms,
        token=load_token(args.token, args.token_file), insecure=args.insecure,
        allowed_origins=tuple(args.allow_origin), log_json=args.log_json, limits=limits_from_args(args),
        idle_timeout_s=args.idle_timeout_s, ping_interval_s=args.ping_interval_s,
        ping_timeout_s=args.ping_timeout_s, drain_timeout_s=args.drain_timeout_s,
        http_head_timeout_s=args.http_head_timeout_s, http_body_timeout_s=args.http_body_timeout_s,
        engine_workers=args.engine_workers, engine_threads=args.engine_threads,
        engine_max_rss_mb=args.engine_max_rss_mb,
        stream_utilisation=args.stream_utilisation, admission_margin=args.admission_margin,
        wyoming_uri=args.wyoming_uri, zeroconf=args.zeroconf,
        lexicon_path=args.lexicon, voice_for=tuple(args.voice_for), chunk_cache_mb=args.cache_mb,
    )
