"""Daemon settings, plain dataclasses. Every bound carries its unit in its name.

The flags that set them are read in kokorod.cli.serve (the daemon never
imports the command line)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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
