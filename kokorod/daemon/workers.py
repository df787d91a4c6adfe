"""Engine workers: one Synthesizer per engine worker thread, sharing voices and G2P.

An ONNX InferenceSession serves one run at a time (OnnxEngine locks it), so N
workers need N engines; voices (thread-safe) and the G2P bank (serialised by
its own locks) are loaded once and shared. ``WorkerSynthesizers`` looks like
one Synthesizer to the sessions: a call made on engine worker k goes to worker
k's synthesizer, and every completed synthesis is timed for the daemon's RTF
estimate.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

from kokorod.daemon.admission import RtfEstimator
from kokorod.daemon.scheduler import current_worker
from kokorod.speech.synthesizer import Synthesizer
from kokorod.speech.chunk import SpeechChunk

if TYPE_CHECKING:
    from kokorod.runtime import EngineOptions


class WorkerSynthesizers:
    """N synthesizers as one, routed by the engine worker that calls."""

    def __init__(self, synths: Sequence[Any], estimator: RtfEstimator | None = None) -> None:
        if not synths:
            raise ValueError("need at least one synthesizer")
        self.synths = list(synths)
        self.voices = self.synths[0].voices
        self.g2p = self.synths[0].g2p
        self.estimator = estimator

    def current(self) -> Any:
        """This worker's synthesizer (the first one off the engine threads)."""
        index = current_worker()
        return self.synths[0] if index is None else self.synths[index % len(self.synths)]

    @property
    def engine(self) -> Any:
        return self.current().engine

    def check_voice(self, voice: str) -> str:
        self.voices.parse(voice)
        return voice

    def synthesize(self, text: str, **kwargs: Any) -> SpeechChunk:
        started = time.perf_counter()
        chunk: SpeechChunk = self.current().synthesize(text, **kwargs)
        # Only completed runs get here: a cancelled or preempted one raised.
        if self.estimator is not None and chunk.samples:
            self.estimator.observe(time.perf_counter() - started, chunk.samples / chunk.sample_rate,
                                   float(kwargs.get("speed", 1.0)))
        return chunk


def build_worker_synthesizers(options: "EngineOptions", workers: int) -> list[Synthesizer]:
    """``workers`` synthesizers, each with an engine of its own built exactly as
    ``runtime.build_synthesizer`` builds one (every engine option applies), all
    sharing the first one's voices and G2P bank (the others' are never used; both
    load lazily, so building them costs nothing)."""
    from kokorod.runtime import build_synthesizer

    first = build_synthesizer(options)
    return [first] + [Synthesizer(build_synthesizer(options).engine, first.voices, first.g2p) for _ in range(workers - 1)]
