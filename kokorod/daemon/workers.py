"""Engine workers: one Synthesizer per engine worker, sharing voices and G2P.

An ONNX InferenceSession serves one run at a time (OnnxEngine locks it), so N
workers need N engines; voices (thread-safe) and the G2P bank (serialised by
its own locks) are loaded once and shared. ``WorkerSynthesizers`` is one
``SpeechBackend`` to the sessions: each synthesis leases a free synthesizer for
its run (the scheduler runs at most one job per worker, so with one
synthesizer per worker a lease never waits), and every completed synthesis is
timed for the daemon's RTF estimate.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from kokorod.daemon.admission import RtfEstimator
from kokorod.speech.chunk import SpeechChunk
from kokorod.speech.synthesizer import Synthesizer, WordPhonemes

if TYPE_CHECKING:
    from kokorod.speech.build import EngineOptions
    from kokorod.text.languages import Language


class WorkerSynthesizers:
    """N synthesizers as one ``kokorod.speech.backend.SpeechBackend``."""

    def __init__(self, synths: Sequence[Any], estimator: RtfEstimator | None = None) -> None:
        if not synths:
            raise ValueError("need at least one synthesizer")
        self.synths = list(synths)
        self.estimator = estimator
        self._busy = [False] * len(self.synths)
        self._changed = threading.Condition()

    @property
    def voices(self) -> Any:
        return self.synths[0].voices  # shared by all (build_worker_synthesizers)

    @property
    def g2p(self) -> Any:
        return self.synths[0].g2p

    @contextlib.contextmanager
    def lease(self, index: int | None = None) -> Iterator[Any]:
        """A synthesizer for one blocking call: the first free one, or the one
        at ``index`` (the warm-up pays each engine's first run). Blocks while
        none (or that one) is free."""
        with self._changed:
            if index is None:
                while all(self._busy):
                    self._changed.wait()
                taken = self._busy.index(False)
            else:
                taken = index % len(self.synths)
                while self._busy[taken]:
                    self._changed.wait()
            self._busy[taken] = True
        try:
            yield self.synths[taken]
        finally:
            with self._changed:
                self._busy[taken] = False
                self._changed.notify_all()

    def check_voice(self, voice: str) -> str:
        self.voices.parse(voice)
        return voice

    def synthesize(self, text: str, **kwargs: Any) -> SpeechChunk:
        with self.lease() as synth:
            started = time.perf_counter()
            chunk: SpeechChunk = synth.synthesize(text, **kwargs)
            elapsed = time.perf_counter() - started
        # Only completed runs get here: a cancelled or preempted one raised.
        if self.estimator is not None and chunk.samples:
            self.estimator.observe(elapsed, chunk.samples / chunk.sample_rate, float(kwargs.get("speed", 1.0)))
        return chunk

    def phonemize(self, text: str, *, lang: "Language", lexicon: Any = None,
                  normalize: bool = True) -> list[WordPhonemes]:
        """G2P only (the shared bank and the model's vocabulary): no engine to lease."""
        result: list[WordPhonemes] = self.synths[0].phonemize(text, lang=lang, lexicon=lexicon, normalize=normalize)
        return result


def build_worker_synthesizers(options: "EngineOptions", workers: int) -> list[Synthesizer]:
    """``workers`` synthesizers, each with an engine of its own built exactly as
    ``runtime.build_synthesizer`` builds one (every engine option applies), all
    sharing the first one's voices and G2P bank (the others' are never used; both
    load lazily, so building them costs nothing)."""
    import dataclasses

    from kokorod.speech.build import build_synthesizer

    first = build_synthesizer(dataclasses.replace(options, workers=workers))
    # --engine auto chose (or read) the engine once; the other workers load that one.
    choice = getattr(first.engine, "choice", None)
    rest = dataclasses.replace(options, engine=choice.name) if choice is not None else options
    return [first] + [Synthesizer(build_synthesizer(rest).engine, first.voices, first.g2p) for _ in range(workers - 1)]
