"""The segmenter's cut policy: how long the next chunk may be, from time, and
which of the possible cuts inside that length sounds most natural.

Sans-I/O, for kokorod.text.segmenter: the daemon measures its engine and the
model's speaking rate and passes them in as plain numbers; nothing here reads
a clock.

The cost model. A run of the engine over ``n`` spoken characters decodes their
speech, ``n / chars_per_s`` seconds of audio, plus ``overhead_s`` seconds it
decodes beyond the text on every run (the model's pad tokens and the silence
around the speech). The engine makes audio at ``pace`` engine seconds per
second decoded, so the run costs ``pace * (n / chars_per_s + overhead_s)``.
Counted in characters, with ``O = overhead_s * chars_per_s``:

    cost(n) = pace * (n + O) / chars_per_s

*First chunk.* It is as long as fits a latency budget ``first_audio_s``:
``n <= first_audio_s * chars_per_s / pace - O``, but never so short that the
chunks after it cannot grow (below), and never less than one word (the
segmenter's rule).

*Later chunks.* Chunk k+1 is synthesized while chunks 1..k play (one stream's
chunks run one after another), so it must be ready before they run out:

    pace * sum_{i=2..k+1} (n_i + O) <= sum_{i=1..k} n_i

which bounds the next chunk by ``spoken / pace - later - k * O``. The fixed
``O`` is paid once per chunk, so tiny chunks make little progress: after a
first chunk ``n_1``, the second can be at least as long only if
``n_1 >= pace * O / (1 - pace)``. No chunk is planned below 1.5 times that
(``ramp_floor_chars``), so the ramp grows from it instead of shrinking into an
underrun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


RAMP_FLOOR_FACTOR = 1.5


@dataclass(frozen=True)
class ChunkBudget:
    pace: float                # engine seconds per second of audio decoded, margin included
    chars_per_s: float = 1.0   # spoken characters per second of speech (this language, this speed)
    overhead_s: float = 0.0    # audio seconds each run decodes beyond its text's speech
    first_audio_s: float | None = None  # synthesis budget of the first chunk; None: the profile's word counts

    def __post_init__(self) -> None:
        if not (self.pace > 0 and math.isfinite(self.pace)):
            raise ValueError(f"pace must be a positive number, not {self.pace!r}")
        if not (self.chars_per_s > 0 and math.isfinite(self.chars_per_s)):
            raise ValueError(f"chars_per_s must be a positive number, not {self.chars_per_s!r}")
        if not self.overhead_s >= 0:
            raise ValueError(f"overhead_s must be >= 0, not {self.overhead_s!r}")

    @property
    def overhead_chars(self) -> float:
        return self.overhead_s * self.chars_per_s

    def ramp_floor_chars(self) -> float:
        """The shortest chunk to start a ramp from: 1.5 times the size after
        which the next could only be as long, so the next can be
        (0.5 + pace) / (1.5 pace) times longer (1.33x at pace 0.5, 1.11x at
        0.75; twice the size gave first chunks of ~60 characters on an engine at
        RTF 0.5, no faster than 4-12 words) and cuts that land a word short of
        their limit do not stall the ramp. 0 when the engine cannot keep up at
        all: then no size avoids an underrun, and the budget alone decides."""
        if self.pace >= 1.0:
            return 0.0
        return RAMP_FLOOR_FACTOR * self.pace * self.overhead_chars / (1.0 - self.pace)

    def first_chars(self) -> float | None:
        """Spoken characters the first chunk may have (None: no time budget)."""
        if self.first_audio_s is None:
            return None
        fits = self.first_audio_s / self.pace * self.chars_per_s - self.overhead_chars
        return max(fits, self.ramp_floor_chars())

    def later_chars(self, later: int, spoken_chars: int, later_chars: int) -> float:
        """Characters the ``later``-th chunk after the first may have, given the
        spoken characters of all chunks so far and of all but the first."""
        return spoken_chars / self.pace - later_chars - later * self.overhead_chars


# -- which cut ------------------------------------------------------------------

# Ranks of a cut point, best first. A word gap is judged by its neighbours: a
# phrase starts before a function word ("I looked | at the map"), and a chunk
# that ends on one ("I looked at | the map") sounds cut off, so that gap is
# weak. A gap before digits is the last resort ("Phone: | 555-2187" is read
# from its cue).
RANKS = {"sentence": 5, "clause": 4, "phrase": 3, "word": 2, "weak": 1, "numeral": 0}
_STRIP = "\"'“”‘’«»()[]{}*_~`¿¡.,;:!?…-–—"


_CLOSERS = "\"'”’»)]}*_"
_ENDS = ".!?…"


def _bare(token: str) -> str:
    return token.strip(_STRIP).lower()


def gap_kind(before: str, after: str | None, function_words: frozenset[str]) -> str:
    """'phrase', 'word' or 'weak' for a word gap between the tokens ``before``
    and ``after`` (None: the next token is not complete yet)."""
    if _bare(before) in function_words:
        return "weak"
    if after is not None and after.rstrip(_CLOSERS)[-1:] in _ENDS:
        # "… a few minutes | ago.": a sentence's last word alone is read as a
        # fragment of its own ("a go").
        return "weak"
    if after is not None and _bare(after) in function_words:
        return "phrase"
    return "word"
