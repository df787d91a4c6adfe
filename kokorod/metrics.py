"""Prometheus metrics (one registry per daemon, so tests can run several)."""

from __future__ import annotations

import asyncio
import math
import os
import threading
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

_LATENCY_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
# Seconds a request waited for its stream slot (0: admitted at once).
_QUEUE_WAIT_BUCKETS_S = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_RTF_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)
_TASK_DIR = "/proc/self/task"

if TYPE_CHECKING:
    from kokorod.daemon.admission import Plan
    from kokorod.daemon.chunk_cache import ChunkCache
    from kokorod.engine.choice import Choice


class ChunkCacheCollector:
    """The rendered-chunk cache's counters, read at scrape time (the cache
    counts for itself; zeros while it is off or not built yet)."""

    def __init__(self) -> None:
        self.cache: "ChunkCache | None" = None

    def collect(self) -> Iterator[Metric]:
        from kokorod.daemon.chunk_cache import CacheStats

        s = self.cache.stats() if self.cache is not None else CacheStats()
        lookups = s.hits + s.misses
        yield CounterMetricFamily("kokorod_chunk_cache_hits", "Chunks served from the rendered-chunk cache (no engine run)", value=s.hits)
        yield CounterMetricFamily("kokorod_chunk_cache_misses", "Chunk lookups that had to run the engine", value=s.misses)
        yield CounterMetricFamily("kokorod_chunk_cache_evictions", "Cached chunks dropped to stay within --cache-mb", value=s.evictions)
        yield GaugeMetricFamily("kokorod_chunk_cache_bytes", "Bytes the chunk cache holds (audio plus per-entry overhead)", value=s.bytes_held)
        yield GaugeMetricFamily("kokorod_chunk_cache_max_bytes", "The chunk cache's bound (0: off)", value=s.max_bytes)
        yield GaugeMetricFamily("kokorod_chunk_cache_entries", "Chunks in the cache", value=s.entries)
        yield GaugeMetricFamily("kokorod_chunk_cache_hit_ratio", "Hits / lookups since start (NaN before the first)",
                                value=s.hits / lookups if lookups else math.nan)


class EngineChoiceCollector:
    """The engine in use and the candidates --engine auto measured (set once loaded)."""

    def __init__(self) -> None:
        self.choice: "Choice | None" = None

    def collect(self) -> Iterator[Metric]:
        c = self.choice
        if c is None:
            return
        yield InfoMetricFamily("kokorod_engine", "The engine in use; source: measured (this run), cached (an earlier "
                               "run's measurement), pending (int8 until measured, after ready while idle), forced "
                               "(--engine) or default", value={
                                   "engine": c.name, "source": c.source, "reason": c.reason})
        families = {
            "cpu": GaugeMetricFamily("kokorod_engine_candidate_cpu_per_audio_seconds", "Each measured engine "
                                     "candidate's CPU seconds per second of audio (median over rounds)", labels=["engine"]),
            "rss": GaugeMetricFamily("kokorod_engine_candidate_rss_bytes", "Each candidate's resident growth when "
                                     "loaded and run", labels=["engine"]),
            "gate": GaugeMetricFamily("kokorod_engine_candidate_log_mel_db", "Each candidate's worst log-mel distance "
                                      "to the int8 engine's audio (the quality gate's figure)", labels=["engine"]),
            "passed": GaugeMetricFamily("kokorod_engine_candidate_gate_passed", "1 when the candidate passed the "
                                        "quality gate (durations equal, audio close to int8's)", labels=["engine"]),
        }
        for m in c.measured:
            families["cpu"].add_metric([m.name], m.cpu_per_audio_s)
            families["rss"].add_metric([m.name], m.rss_bytes)
            families["gate"].add_metric([m.name], m.log_mel_db)
            families["passed"].add_metric([m.name], 1.0 if m.gate_passed else 0.0)
        yield from families.values()


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge("kokorod_open_connections", "Open sessions: WebSocket connections and in-process front-end sessions (OpenAI HTTP, Wyoming)", registry=r)
        self.connections_total = Counter("kokorod_connections_total", "Accepted WebSocket connections", registry=r)
        self.connections_refused = Counter("kokorod_connections_refused_total", "Connections refused (reason: auth, "
                                           "not_ready, capacity: --max-connections, per_ip: --max-connections-per-ip)",
                                           ["reason"], registry=r)
        self.connections_accepted = Gauge("kokorod_connection_slots", "Open sockets of every protocol (WebSocket, "
                                          "HTTP, Wyoming) counted against --max-connections", registry=r)
        self.accept_errors = Counter("kokorod_accept_errors_total", "Connections the OS could not accept "
                                     "(errno: EMFILE is the fd limit, see docs/operations.md)", ["errno"], registry=r)
        self.timeouts = Counter("kokorod_http_timeouts_total", "HTTP connections closed at a deadline (phase: head, "
                                "body)", ["phase"], registry=r)
        self.connections_cut = Counter("kokorod_connections_closed_total", "Connections the daemon closed because the "
                                        "client did not read (reason: buffer_bytes, not_reading) or sent an "
                                        "oversized Wyoming event (oversized_event)", ["reason"], registry=r)
        self.idle_closed = Counter("kokorod_idle_disconnects_total", "Connections closed by the idle timeout", registry=r)
        self.utterances_started = Counter("kokorod_utterances_started_total", "Utterances started", registry=r)
        self.utterances_done = Counter("kokorod_utterances_completed_total", "Utterances spoken to the end", registry=r)
        self.utterances_cancelled = Counter("kokorod_utterances_cancelled_total", "Utterances cancelled", ["reason"], registry=r)
        self.utterances_failed = Counter("kokorod_utterances_failed_total", "Utterances ended by an error", registry=r)
        self.utterances_refused = Counter("kokorod_utterances_refused_total", "Utterances refused (limits, overload)", ["reason"], registry=r)
        self.active_streams = Gauge("kokorod_active_streams", "Connections with an utterance speaking or queued (stream slots in use)", registry=r)
        self.queue_depth = Gauge("kokorod_engine_queue_depth", "Synthesis jobs waiting or running", registry=r)
        self.ttfa = Histogram("kokorod_time_to_first_audio_seconds", "First text received to first audio frame queued", buckets=_LATENCY_BUCKETS_S, registry=r)
        self.rtf = Histogram("kokorod_synthesis_rtf", "Synthesis time / audio duration per chunk", buckets=_RTF_BUCKETS, registry=r)
        self.underruns = Counter("kokorod_underruns_total", "Chunks that arrived after the listener's audio ran out", registry=r)
        self.engine_errors = Counter("kokorod_engine_errors_total", "Synthesis failures", registry=r)
        self.warnings = Counter("kokorod_warnings_total", "Warning events sent (text not spoken)", ["code"], registry=r)
        self.protocol_errors = Counter("kokorod_protocol_errors_total", "Error events sent to clients", ["code"], registry=r)
        # lang "auto" (kokorod.text.detect): "switched" counts text spoken in its own
        # language rather than the voice's (a corrected mismatch); lang is what was spoken.
        self.language_auto = Counter("kokorod_language_auto_total", "Utterances with lang auto, by outcome: switched "
                                     "(the text's language, not the voice's), same, undecided (too short or unsure: "
                                     "the voice's kept)", ["outcome", "lang"], registry=r)
        self.audio_seconds = Counter("kokorod_audio_seconds_total", "Seconds of audio streamed", registry=r)
        # Sampled at scrape time. They exist so leaks (tasks or threads left behind
        # by a client that vanished mid-synthesis) are visible from outside.
        self.send_backlog = Gauge("kokorod_send_backlog_seconds", "Audio queued in the daemon for clients, not yet handed to their sockets", registry=r)
        self.ready = Gauge("kokorod_ready", "1 once the model is loaded and warm-up synthesis worked", registry=r)
        self.tasks = Gauge("kokorod_tasks", "Live asyncio tasks in the daemon's loop", registry=r)
        self.threads = Gauge("kokorod_threads", "Live Python threads", registry=r)
        self.engine_threads = Gauge("kokorod_engine_threads", "Live engine (synthesis) threads", registry=r)
        self.os_threads = Gauge("kokorod_os_threads", "OS threads of the process (ONNX Runtime's pool included; Linux)", registry=r)
        # Admission (kokorod.daemon.admission), sampled at scrape time.
        self.rtf_estimate = Gauge("kokorod_rtf_estimate", "Measured engine seconds per second of audio at 1x (warm-up, then a running average over synthesis jobs)", registry=r)
        self.capacity_streams = Gauge("kokorod_capacity_streams", "Streams at 1x admitted at once with the current RTF estimate (-1: no bound)", registry=r)
        self.stream_demand = Gauge("kokorod_stream_demand_workers", "Engine time the active streams need as admission counts it, in workers (sum of each stream's conservative RTF at its speed x the margin)", registry=r)
        self.admission_rtf = Gauge("kokorod_admission_rtf", "The conservative RTF admission plans with at 1x: the highest of the running figure, long chunks' and chunks run while streams shared the engine", registry=r)
        self.admission_margin = Gauge("kokorod_admission_margin", "Admission's factor over kokorod_admission_rtf: learnt from late streams (up) and on-time shared service (slowly down), or fixed by --admission-margin", registry=r)
        self.late_chunks = Gauge("kokorod_admission_late_chunks", "Chunks that reached an admitted stream's listener after its audio ran out, since start (what raises the margin)", registry=r)
        self.background_requests = Gauge("kokorod_background_requests", "Background requests (priority background: not admitted, run on engine time no stream needs) running or waiting", registry=r)
        self.background_jobs = Gauge("kokorod_background_engine_jobs", "Background synthesis jobs waiting or running on the engine", registry=r)
        self.background_preemptions = Gauge("kokorod_background_preemptions", "Background runs stopped to make room for live work, since start", registry=r)
        self.background_audio = Counter("kokorod_background_audio_seconds_total", "Seconds of audio made for background requests", registry=r)
        self.capacity_bound = Gauge("kokorod_capacity_bound_workers", "Engine time admission plans for: workers x utilisation bound (-1: measured admission off)", registry=r)
        # The request queue (kokorod.daemon.request_queue): requests waiting for a slot.
        self.request_queue_depth = Gauge("kokorod_request_queue_depth", "Requests (OpenAI, Wyoming synthesize, speak with admission queue) waiting for a stream slot", registry=r)
        self.request_queue_wait = Histogram("kokorod_request_queue_wait_seconds", "Time a request waited for its stream slot (0: admitted at once)", buckets=_QUEUE_WAIT_BUCKETS_S, registry=r)
        self.request_queue_timeouts = Counter("kokorod_request_queue_timeouts_total", "Requests refused after waiting --queue-timeout-s for a slot", registry=r)
        self.request_queue_full = Counter("kokorod_request_queue_full_total", "Requests refused because --max-queued were already waiting", registry=r)
        self.engine_workers = Gauge("kokorod_engine_workers", "Engine workers (threads with their own engine session)", registry=r)
        self.chunk_cache = ChunkCacheCollector()  # its cache is set when the daemon builds one
        r.register(self.chunk_cache)
        self.engine_choice = EngineChoiceCollector()  # its choice is set when the daemon has loaded the engine
        r.register(self.engine_choice)
        # process_resident_memory_bytes, process_open_fds, ... (Linux only; no-op elsewhere).
        ProcessCollector(registry=r)

    def sample_runtime(self, *, queue_depth: int, ready: bool, send_backlog_s: float = 0.0, background_jobs: int = 0,
                       background_preemptions: int = 0) -> None:
        from kokorod.daemon.scheduler import engine_threads

        self.queue_depth.set(queue_depth)
        self.background_jobs.set(background_jobs)
        self.background_preemptions.set(background_preemptions)
        self.send_backlog.set(send_backlog_s)
        self.ready.set(1 if ready else 0)
        self.tasks.set(len(asyncio.all_tasks()))
        self.threads.set(threading.active_count())
        self.engine_threads.set(len(engine_threads()))
        try:
            self.os_threads.set(len(os.listdir(_TASK_DIR)))
        except OSError:  # not Linux
            pass

    def sample_capacity(self, plan: "Plan") -> None:
        self.rtf_estimate.set(plan.rtf if plan.rtf is not None else math.nan)
        self.capacity_streams.set(plan.max_streams if plan.max_streams is not None else -1)
        self.stream_demand.set(plan.demand)
        self.admission_rtf.set(plan.admission_rtf if plan.admission_rtf is not None else math.nan)
        self.admission_margin.set(plan.margin)
        self.late_chunks.set(plan.late_events)
        self.background_requests.set(plan.background)
        bound = plan.workers * plan.utilisation
        self.capacity_bound.set(bound if math.isfinite(bound) else -1)
        self.engine_workers.set(plan.workers)
        self.active_streams.set(plan.active)

    def render(self) -> bytes:
        return generate_latest(self.registry)
