"""One segment's speech, with its edges shaped for the seam that follows.

Runs on an engine thread (it calls the model through the backend). The chunk
cache keys on exactly what ``render_segment`` reads (see
kokorod/daemon/chunk_cache.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kokorod.engine.base import CancelToken, FloatAudio
from kokorod.speech.backend import SpeechBackend
from kokorod.speech.chunk import SpeechChunk
from kokorod.speech.seams import pause_for_boundary, shape_chunk, speech_bounds
from kokorod.text.languages import Language
from kokorod.text.segmenter import Segment

# Segment boundaries → the seams module's pause kinds. ``final`` is text cut only
# because the utterance ended; if more follows after all, treat it as a sentence.
_PAUSE_KIND = {"clause": "clause", "sentence": "sentence", "paragraph": "paragraph", "forced": "forced", "final": "sentence"}


def seam_kind(segment: Segment, last: bool) -> str | None:
    """The natural pause after a segment's audio (a seams pause kind), or None.

    The last chunk of an utterance gets none, so ``done`` is not delayed by
    silence; before a <break/> the tag's pause replaces it (the plan's
    ``Pause`` step). Part of the chunk cache's key: the only way the seam
    changes a chunk."""
    if last or segment.boundary == "break":
        return None
    return _PAUSE_KIND.get(segment.boundary, "sentence")


@dataclass
class Rendered:
    chunk: SpeechChunk
    synth_s: float
    unspeakable: list[str]
    # What the engine decoded, before the seams: all of it, and the span of its
    # speech (kokorod.daemon.pacing learns the per-run overhead from the gap).
    decoded_samples: int = 0
    speech_samples: int = 0


def render_segment(
    synth: SpeechBackend, segment: Segment, *, voice: str, speed: float, lang: Language, last: bool,
    token: CancelToken, lexicon: Any = None,
) -> Rendered:
    """Speak one segment and shape its edges.

    The pause after a chunk depends on why the text was cut there (comma,
    sentence, paragraph); the last chunk of an utterance gets none, so ``done``
    is not delayed by silence.
    """
    started = time.perf_counter()
    extra = {} if lexicon is None else {"lexicon": lexicon}  # the session's pronunciation lexicon
    chunk = synth.synthesize(segment.spoken, voice=voice, speed=speed, cancel=token, replacements=segment.spans,
                             lang=lang, **extra)
    if not chunk.samples:  # nothing in it the voice could say (reported by the caller)
        return Rendered(chunk, time.perf_counter() - started, chunk.unspeakable)
    kind = seam_kind(segment, last)
    pause = pause_for_boundary(kind, speed) if kind is not None else 0
    shaped = shape_chunk(chunk, lead_in_samples=0, pause_samples=pause)
    bounds = speech_bounds(chunk.audio)
    speech = 0 if bounds is None else bounds[1] - bounds[0]
    return Rendered(shaped, time.perf_counter() - started, chunk.unspeakable, decoded_span(chunk.audio), speech)


def decoded_span(audio: FloatAudio) -> int:
    """Samples of a run's timeline the engine decoded. A trimming engine
    (kokorod.engine.trim) puts the edge frames it did not decode back as exact
    zeros, which a decoded frame practically never is, so the span from the
    first to the last nonzero sample is what it decoded; an engine that decodes
    everything gives (about) the whole timeline. Counting the whole timeline
    instead made the per-run overhead the pacing learns 0.4-0.7 s (the edge
    silence no longer decoded), and the first chunk's predicted time 1.4-1.8x
    what the engine took in French and English."""
    nonzero = np.flatnonzero(audio)
    return 0 if nonzero.size == 0 else int(nonzero[-1] - nonzero[0] + 1)
