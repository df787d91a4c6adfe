"""Prometheus metrics (one registry per daemon, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
_RTF_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("kokorod_open_connections", "Open WebSocket connections", registry=r)
        self.connections_total = Counter("kokorod_connections_total", "Accepted WebSocket connections", registry=r)
        self.connections_refused = Counter("kokorod_connections_refused_total", "Connections refused", ["reason"], registry=r)
        self.utterances_started = Counter("kokorod_utterances_started_total", "Utterances started", registry=r)
        self.utterances_done = Counter("kokorod_utterances_completed_total", "Utterances spoken to the end", registry=r)
        self.utterances_cancelled = Counter("kokorod_utterances_cancelled_total", "Utterances cancelled", ["reason"], registry=r)
        self.utterances_failed = Counter("kokorod_utterances_failed_total", "Utterances ended by an error", registry=r)
        self.utterances_refused = Counter("kokorod_utterances_refused_total", "Utterances refused (limits, overload)", ["reason"], registry=r)
        self.active_streams = Gauge("kokorod_active_streams", "Utterances speaking or queued, daemon-wide", registry=r)
        self.queue_depth = Gauge("kokorod_engine_queue_depth", "Synthesis jobs waiting or running", registry=r)
        self.ttfa = Histogram("kokorod_time_to_first_audio_seconds", "First text received to first audio frame queued", buckets=_LATENCY_BUCKETS_S, registry=r)
        self.rtf = Histogram("kokorod_synthesis_rtf", "Synthesis time / audio duration per chunk", buckets=_RTF_BUCKETS, registry=r)
        self.underruns = Counter("kokorod_underruns_total", "Chunks that arrived after the listener's audio ran out", registry=r)
        self.engine_errors = Counter("kokorod_engine_errors_total", "Synthesis failures", registry=r)
        self.protocol_errors = Counter("kokorod_protocol_errors_total", "Error events sent to clients", ["code"], registry=r)
        self.audio_seconds = Counter("kokorod_audio_seconds_total", "Seconds of audio streamed", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
