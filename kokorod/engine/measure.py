"""Measuring the engine candidates this machine can run (``--engine auto``'s warm-up).

Each candidate is loaded and run once on the measuring sentences (its first
run pays its lazy set-up; its output is what the gate compares with int8's,
and its resident growth is read after it). Then all of them run the sentences
in interleaved rounds, so a burst of load elsewhere on the machine hits every
candidate alike; a candidate's figure is the median over rounds of CPU seconds
per second of audio (CPU time, not wall time: on a shared machine the wall
clock measures the neighbours).

The sentences are given as phonemes (en-us, misaki's), so measuring needs no
G2P and gives the same inputs on every machine.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import statistics
import time
from typing import Callable

import numpy as np

from kokorod.engine.base import SAMPLE_RATE, CancelToken, Engine, EngineOutput
from kokorod.engine.choice import REFERENCE, Measured
from kokorod.engine.gate import judge
from kokorod.engine.onnx_graph import cpu_isa
from kokorod.heap import release_free_heap

log = logging.getLogger("kokorod.engine")

# "Members can borrow up to ten books." (the warm-up's probe, 2.6 s), "Sure,
# let me check that for you." (2.2 s) and "The library opens at nine, and
# closes at six." (~3 s): typical first chunks. All three are gated; the
# rounds time the first (TIMED), so measuring stays a one-off cost of about
# 31 s of audio (the first try, three 5 s sentences in three rounds, cost
# 63 s of wall time on a loaded 2-core EPYC: too long for a start).
SENTENCES = (
    "mˈɛmbəɹz kæn bˈɑɹO ˌʌp tə tˈɛn bˈʊks.",
    "ʃˈʊɹ, lˈɛt mˌi ʧˈɛk ðˈæt fɔɹ ju.",
    "ðə lˈIbɹˌɛɹi ˈOpᵊnz æt nˈIn, ænd klˈOzᵻz æt sˈɪks.",
)
TIMED = 1  # sentences timed in each round (the first ones)
VOICE = "af_heart"
ROUNDS = 3
FP32 = "onnx-fp32"
OPENVINO = "openvino-split"


def candidate_status() -> list[tuple[str, bool, str]]:
    """(name, a candidate here?, why): every engine auto knows, in order."""
    out = [(REFERENCE, True, "onnxruntime, the int8 graph (the reference)"),
           (FP32, True, "onnxruntime, fp32 convolutions (dequantised from the int8 file)")]
    if importlib.util.find_spec("openvino") is None:
        out.append((OPENVINO, False, "openvino not installed (pip install 'kokorod[openvino]')"))
    elif "amx_bf16" not in cpu_isa().split("+"):
        out.append((OPENVINO, False, "this CPU has no AMX bf16 (amx_bf16 in /proc/cpuinfo)"))
    else:
        out.append((OPENVINO, True, "onnxruntime's int8 front, OpenVINO's bf16 decoder (AMX bf16 here)"))
    return out


def resident_bytes() -> int:
    """This process's resident set now (Linux; 0 elsewhere, so no bound applies)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def measuring_inputs(engine: Engine, style_for: Callable[[int], np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    vocab = engine.vocab
    out = []
    for text in SENTENCES:
        ids = [vocab[ch] for ch in text if ch in vocab]
        out.append(([0, *ids, 0], style_for(len(ids))))
    return out


def long_input(engine: Engine, style_for: Callable[[int], np.ndarray]) -> tuple[list[int], np.ndarray]:
    """The measuring sentences as one input (~8 s of audio), run once for the
    resident growth alone: an engine that keeps the buffers of the longest
    input it ran (OpenVINO: +408 MB after the short sentences, +525 MB after
    long chunks) must be charged for them against ``--engine-max-rss-mb``."""
    vocab = engine.vocab
    ids = [vocab[ch] for ch in " ".join(SENTENCES) if ch in vocab]
    return [0, *ids, 0], style_for(len(ids))


def load_candidate(name: str, build: Callable[[str], Engine], rss: Callable[[], int] = resident_bytes) -> tuple[Engine, int]:
    """``build(name)``, and the resident size before it (growth is read after its first runs)."""
    before = rss()
    engine = build(name)
    if not getattr(engine, "loaded_from_cache", True):
        # The first build of a graph (editing and optimising it) leaves far
        # more resident than the engine needs (fp32: +1246 MB, against +394 MB
        # loaded from the graph cache): load it again from the cache just
        # written and count only that.
        del engine
        release_free_heap()
        before = rss()
        engine = build(name)
    return engine, before


def first_outputs(engine: Engine, inputs: list[tuple[list[int], np.ndarray]],
                  cancel: CancelToken | None = None) -> list[EngineOutput]:
    """Each measuring sentence once: pays the engine's lazy set-up, and is what the gate compares."""
    return [engine.run(ids, style, 1.0, cancel) for ids, style in inputs]


def timed_run(engine: Engine, inputs: list[tuple[list[int], np.ndarray]], *, timed: int = TIMED,
              clock: Callable[[], float] = time.process_time, cancel: CancelToken | None = None) -> float:
    """CPU seconds per second of audio over the first ``timed`` sentences."""
    started, audio_s = clock(), 0.0
    for ids, style in inputs[:timed]:
        audio_s += engine.run(ids, style, 1.0, cancel).audio.size / SAMPLE_RATE
    return (clock() - started) / audio_s if audio_s > 0 else float("inf")


def figures(first: dict[str, list[EngineOutput]], per_round: dict[str, list[float]],
            growth: dict[str, int]) -> list[Measured]:
    """Every candidate's figures: the median round, and the gate against the reference's first outputs."""
    reference = [(o.audio, o.durations) for o in first[REFERENCE]]
    measured = []
    for name in per_round:
        gate = judge(reference, [(o.audio, o.durations) for o in first[name]])
        measured.append(Measured(name, statistics.median(per_round[name]), growth[name], gate.durations_equal,
                                 gate.log_mel_db))
    return measured


def measure(names: tuple[str, ...] | list[str], build: Callable[[str], Engine],
            style_for: Callable[[int], np.ndarray], *, rounds: int = ROUNDS,
            timed: int = TIMED, rss: Callable[[], int] = resident_bytes,
            clock: Callable[[], float] = time.process_time) -> tuple[list[Measured], dict[str, Engine]]:
    """Load, gate and time ``names`` (the reference first), all at once. Returns
    the figures and the loaded engines (the caller keeps the chosen one). A
    candidate that fails to load or run is left out (logged); the reference's
    failure raises. (The daemon runs the same steps one by one, when idle:
    kokorod.daemon.engine_tuning.)"""
    assert names and names[0] == REFERENCE, "the reference is measured first"
    engines: dict[str, Engine] = {}
    first: dict[str, list[EngineOutput]] = {}
    growth: dict[str, int] = {}
    inputs: list[tuple[list[int], np.ndarray]] = []
    for name in names:
        try:
            engine, before = load_candidate(name, build, rss)
            inputs = inputs or measuring_inputs(engine, style_for)
            first[name] = first_outputs(engine, inputs)
            engine.run(*long_input(engine, style_for), 1.0)
        except Exception as exc:
            if name == REFERENCE:
                raise
            log.warning("engine candidate %s left out: %s: %s", name, type(exc).__name__, exc)
            continue
        growth[name] = max(0, rss() - before)
        engines[name] = engine
    per_round: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            per_round[name].append(timed_run(engine, inputs, timed=timed, clock=clock))
    return figures(first, per_round, growth), engines
