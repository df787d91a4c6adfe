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
``n <= first_audio_s * chars_per_s / first_pace - O``, but never so short that
the chunks after it cannot grow (below), and never less than one word (the
segmenter's rule). ``first_pace`` is the engine's expected pace, without the
margin later chunks are planned with: the budget is a latency target for one
run, while the margin guards every later chunk against an underrun. With the
margin in (pace 1.5x the measured one), a 250 ms budget bought 7-13
characters on an engine that makes "The library" in 226 ms, so greetings
went out as "Bonjour" | "à tous.". When the budget's cut would fall inside a
sentence at a word gap, the chunk may run on to the sentence's (or clause's)
end if that costs at most ``FIRST_SLACK`` times the budget: "Good morning,"
instead of "Good" | "morning,", for at most half the budget more. It runs on
only towards an end mark already received, so a token stream's first chunk
never waits for text.

*Later chunks.* Chunk k+1 is synthesized while chunks 1..k play (one stream's
chunks run one after another), so it must be ready before they run out:

    pace * sum_{i=2..k+1} (n_i + O) <= sum_{i=1..k} n_i

which bounds the next chunk by ``spoken / pace - later - k * O``. The
pauses played after chunks 1..k (zeros the seams insert at clause and
sentence ends, ``pause_s``) count as playback too, in characters' time. The fixed
``O`` is paid once per chunk, so tiny chunks make little progress: after a
first chunk ``n_1``, the second can be at least as long only if
``n_1 >= pace * O / (1 - pace)``. No chunk is planned below 1.5 times that
(``ramp_floor_chars``), so the ramp grows from it instead of shrinking into an
underrun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from kokorod.text.normalize import STARTERS

if TYPE_CHECKING:
    from kokorod.text.segment_profiles import SegmentProfile
    from kokorod.text.segment_scanner import CutPoint


RAMP_FLOOR_FACTOR = 1.5
# How far past its budget a first chunk may run to end at a clause or sentence
# rather than at a word gap inside one (ChunkBudget.first_chars, CutDecisions).
# A run's fixed cost dominates a short chunk's, so two more words cost ~20%
# more time than one (226 ms for "The library" against 279 ms for "Our
# quarterly results", bench/conv_gemm.py) while a lone first word is read as a
# sentence of its own (bench/chunking_quality.py).
FIRST_SLACK = 1.5


@dataclass(frozen=True)
class ChunkBudget:
    pace: float                # engine seconds per second of audio decoded, margin included
    chars_per_s: float = 1.0   # spoken characters per second of speech (this language, this speed)
    overhead_s: float = 0.0    # audio seconds each run decodes beyond its text's speech
    first_audio_s: float | None = None  # synthesis budget of the first chunk; None: the profile's word counts
    # Seconds of silence played after a chunk cut at each boundary kind (the
    # seams' pauses, exact zeros): playback time the next run may use too.
    pause_s: Mapping[str, float] = field(default_factory=dict)
    # The expected pace of the first chunk's run, without the planning margin
    # (None: ``pace``). Never above ``pace``.
    first_pace: float | None = None

    def __post_init__(self) -> None:
        if not (self.pace > 0 and math.isfinite(self.pace)):
            raise ValueError(f"pace must be a positive number, not {self.pace!r}")
        if self.first_pace is not None and not (0 < self.first_pace <= self.pace):
            raise ValueError(f"first_pace must be in (0, pace], not {self.first_pace!r}")
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

    def first_chars(self, slack: float = 1.0) -> float | None:
        """Spoken characters the first chunk may have (None: no time budget);
        ``slack``: within that many times the budget."""
        if self.first_audio_s is None:
            return None
        pace = self.first_pace if self.first_pace is not None else self.pace
        fits = slack * self.first_audio_s / pace * self.chars_per_s - self.overhead_chars
        return max(fits, self.ramp_floor_chars())

    def pause_chars(self, boundary: str) -> float:
        """The pause after a chunk cut at ``boundary``, in spoken characters' time."""
        return self.pause_s.get(boundary, 0.0) * self.chars_per_s

    def later_chars(self, later: int, spoken_chars: float, later_chars: int) -> float:
        """Characters the ``later``-th chunk after the first may have, given the
        playback of all chunks so far (spoken characters and their pauses, in
        characters) and the spoken characters of all but the first."""
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


# -- when to cut ----------------------------------------------------------------

def _forced(kind: str) -> str:
    """The boundary of a cut at a point of this kind."""
    return "forced" if kind in ("word", "numeral") else kind


class CutDecisions:
    """Whether a point the scanner found cuts, and where when a segment
    outgrows its limit; mixed into ``Segmenter`` (kokorod.text.segmenter
    describes the rules)."""

    profile: SegmentProfile
    budget: ChunkBudget | None
    _mid_sentence: bool

    def _resolve(self, p: CutPoint, c: str | None, word: str | None) -> None:
        lower = c is not None and c.islower()
        kind = p.kind
        if p.nl >= 2 or (p.nl == 1 and not lower and c is not None):
            kind = "paragraph"
        elif kind == "sentence" and lower:
            kind = "word" if p.term == "." else "clause"
        elif kind == "abbrev":
            if c is None:
                kind = "sentence"
            elif lower or c.isdigit() or (c.isalpha() and (p.title or (word or "").lower() not in STARTERS)):
                kind = "word"
            else:
                kind = "sentence"
        if kind in ("clause", "word") and c is not None and c.isdigit():
            # "Phone: 555-2187", "pages 10-12", "in 1990": the normaliser reads
            # digits from the words before them, so keep them together; such a
            # gap is the last resort for a forced cut.
            kind = "numeral"
        self._decide(p, kind)

    def _limit(self) -> int:
        k = self._spoken
        static = self.profile.max_chunk if k == 0 or k > len(self._ramp) else self._ramp[k - 1]
        b = self.budget
        if b is None:
            return static
        if k == 0:
            first = b.first_chars()
            return static if first is None else int(min(static, first))
        # Segment k+1 is synthesised while segments 1..k play, so it must not
        # take the engine longer than their audio (cut_policy). On a slow
        # engine (pace 0.6) this grows chunks ~1.7x per segment instead of
        # jumping from a short first clause to a 100-character second chunk,
        # which left the listener waiting for it. Never below the first
        # segment or the size that still lets chunks grow (when the stream is
        # behind, smaller runs would only add per-run overhead), and without a
        # time budget for the first chunk never below min_chunk either.
        budget = b.later_chars(k, self._spoken_chars + self._pause_chars, self._later_chars)
        floor = max(self._spoken_chars - self._later_chars, b.ramp_floor_chars())
        if b.first_audio_s is None:
            floor = max(self.profile.min_chunk, floor)
        return int(min(static, max(floor, budget)))

    def _timed_first(self) -> bool:
        """The first spoken chunk, sized by a latency budget rather than words."""
        return self._spoken == 0 and self.budget is not None and self.budget.first_audio_s is not None

    def _rank(self, q: CutPoint) -> int:
        """How natural a cut at ``q`` sounds (cut_policy.RANKS); word gaps are
        judged by the tokens around them, as far as they have arrived."""
        if q.kind != "word" or self.profile.unspaced:
            return RANKS.get(q.kind, RANKS["word"])
        start = q.pos
        while start > self._base and not self._is_space(self._char(start - 1)):
            start -= 1
        after: str | None = None
        if q.next_pos is not None:
            end = q.next_pos
            limit = self._base + len(self._buf)
            while end < limit and not self._is_space(self._char(end)):
                end += 1
            after = self._text(q.next_pos, end) if end < limit else None
        return RANKS[gap_kind(self._text(start, q.pos), after, self.profile.function_words)]

    def _decide(self, p: CutPoint, kind: str) -> None:
        while self._content_at is not None and p.pos > self._content_at:
            p.kind = kind
            if p.pos - self._content_at > self._limit():
                timed = self._timed_first()
                if timed and self._runs_on(p, kind):
                    if kind in ("sentence", "clause"):
                        self._cut(p, kind)
                    else:
                        self._cands.append(p)
                    return
                # A chunk below the ramp's floor would leave the next one no
                # time to be made (cut_policy): only longer cuts qualify.
                floor = int(self.budget.ramp_floor_chars()) if self.budget else 0
                best = self._best_candidate(floor, self._limit() if timed else None)
                if timed and best is None:
                    # Past the slack with no natural end: the budget's own cut,
                    # or the first word when even that is over it.
                    best = self._first_candidate(floor)
                # With a budget, a chunk never ends on "the" or before digits
                # when a word more avoids it: over the limit, a better cut at p
                # wins, and a weak p waits for the next point.
                budgeted = timed or self.budget is not None
                # Nor does it run past a sentence end to a word gap of the next
                # sentence ("a todos. Hoy | vamos"): the new sentence's first
                # word then ends the chunk with a sentence's fall (Whisper
                # heard "a todos hoy. Vamos"; that paragraph's DNSMOS was 3.22
                # against 3.34 cut at sentences, bench/first_audio_langs.py).
                # The sentence end is shorter than the ramp's floor, but its
                # pause (ChunkBudget.pause_s) buys the next run time.
                end = self._sentence_end_before(best.pos if best is not None else p.pos) if budgeted else None
                if end is not None and (best is None or self._rank(best) < RANKS["sentence"]):
                    self._cut(end, end.kind)
                    continue  # judge p again within the new segment
                # And when the best cut long enough is weak and p is weak too
                # ("opens at nine in | the"), p waits for the next point: the
                # ramp's floor had left only weak cuts, and the next word gap
                # is the first chance of a natural one (the hard limit bounds it).
                weak_best = best is not None and self._rank(best) <= RANKS["weak"]
                if weak_best and budgeted and self._rank(p) <= RANKS["weak"] and kind != "paragraph":
                    self._cands.append(p)
                    return
                if best is not None and not (budgeted and self._rank(best) <= RANKS["weak"] < self._rank(p)):
                    self._cut(best, _forced(best.kind))
                    continue  # judge p again within the new segment
                if budgeted and self._rank(p) <= RANKS["weak"] and kind != "paragraph":
                    self._cands.append(p)
                    return
                self._cut(p, _forced(kind))
                return
            words = p.words - self._seg_words
            first = self._spoken == 0
            if kind == "paragraph":
                boundary = kind
            elif self._timed_first():
                # Within the budget only a sentence end cuts at once: a clause
                # or a phrase waits in case the sentence still fits.
                if kind != "sentence":
                    self._cands.append(p)
                    return
                boundary = kind
            elif first and kind in ("sentence", "clause") and words >= self.profile.first_min:
                boundary = kind
            elif first and words >= self.profile.first_max and kind != "numeral":
                boundary = "forced"
            elif not first and kind == "sentence" and (p.pos - self._content_at >= self.profile.min_chunk
                                                        or (self._mid_sentence and self.budget is not None
                                                            and self.budget.first_audio_s is not None)):
                # With a time budget, the tail of a sentence the ramp cut inside
                # ("… | on weekdays.") ends at its sentence end instead of
                # taking the whole next sentence as well: that merged chunk was
                # the ramp's largest step (87 characters after 40 played), 41
                # ms from an underrun sent whole and 0.17-0.70 s late as a
                # token stream, whose next sentence must first arrive.
                boundary = kind
            else:  # not now; remember it in case the segment outgrows its limit
                self._cands.append(p)
                return
            self._cut(p, boundary)
            return

    def _runs_on(self, p: CutPoint, kind: str) -> bool:
        """Whether the first chunk, past its budget at ``p``, still runs on to
        the end of its clause or sentence (FIRST_SLACK): only while nothing
        inside the budget ends one, and within the slack."""
        if kind == "paragraph" or self.budget is None or self._content_at is None:
            return False
        slack = self.budget.first_chars(FIRST_SLACK)
        if slack is None:
            return False
        end = self._content_at + int(min(slack, self.profile.max_chunk))
        if p.pos > end:
            return False
        best = self._best_candidate(int(self.budget.ramp_floor_chars()), self._limit())
        if best is not None and self._rank(best) >= RANKS["clause"]:
            return False
        # It never waits for text to find out: from a token stream the rest of
        # the clause has not arrived when the budget runs out, and waiting for
        # it added 137 ms to a 20 words/s stream's first audio
        # (bench/first_audio.py, 357 -> 494 ms p50) without a longer chunk. So
        # it runs on only towards an end mark already received.
        return kind in ("sentence", "clause") or self._end_mark_between(p.pos, end)

    def _end_mark_between(self, start: int, end: int) -> bool:
        """Whether the text received holds a clause or sentence mark in
        [start, end] (a hint for _runs_on; the scanner still judges it)."""
        lo = max(start, self._base) - self._base
        hi = min(end + 1, self._base + len(self._buf)) - self._base
        marks = self._terminators + self._clause_end
        return any(c in marks for c in self._buf[lo:hi])

    def _first_candidate(self, min_chars: int = 0) -> CutPoint | None:
        """The earliest remembered point at least ``min_chars`` into the segment."""
        start = self._content_at if self._content_at is not None else self._base
        return next((q for q in self._cands if q.pos - start >= min_chars), None)

    def _sentence_end_before(self, pos: int) -> CutPoint | None:
        """The latest remembered sentence end of the segment before ``pos``."""
        start = self._content_at if self._content_at is not None else self._base
        ends = [q for q in self._cands if q.kind == "sentence" and start < q.pos < pos]
        return ends[-1] if ends else None

    def _best_candidate(self, min_chars: int = 0, max_chars: int | None = None) -> CutPoint | None:
        """The most natural remembered point at least ``min_chars`` (and at most
        ``max_chars``) into the segment, the latest of equals (the longest chunk)."""
        best: CutPoint | None = None
        best_rank = -1
        start = self._content_at if self._content_at is not None else self._base
        for q in self._cands:
            if q.pos - start < min_chars or (max_chars is not None and q.pos - start > max_chars):
                continue
            rank = self._rank(q)
            if rank >= best_rank:
                best, best_rank = q, rank
        return best

    def _over_limit(self, i: int, c: str) -> None:
        """Safety valve: the segment grew past the hard limit between points."""
        best = self._best_candidate()
        if best is not None:
            self._cut(best, _forced(best.kind))
        else:
            self._emit(i, "forced")
            self._content_at = None if self._is_space(c) else i

    def _cut(self, p: CutPoint, boundary: str) -> None:
        self._emit(p.pos, boundary)
        self._content_at = p.next_pos
        self._seg_words = p.words
