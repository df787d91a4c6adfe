"""Incremental sentence segmenter for streaming TTS (sans-I/O: no asyncio, no model).

Text arrives whole or as an LLM token stream; ``feed()`` returns the segments
that are complete *now*, ``flush()`` ends the utterance.  Each ``Segment``
carries its verbatim ``text`` (markdown included), the normalised ``spoken``
text for G2P ('' means: skip synthesis) and why it was cut.

Policy
------
*Where* a cut may happen.  Only at the start of a whitespace run that follows
a token (so never inside a word, number "3.50"/"1,000", URL, e-mail, time
"9:30"), or right after a mark that needs no whitespace (CJK 。！？, see
*Languages*), and never inside inline code, a markdown link's ``[text]`` or
its ``(target)``.  The whitespace goes to the *next* segment, so
``''.join(s.text for s in segments)`` is the input minus trailing whitespace.
A cut point is judged only once the next non-whitespace character has arrived
(or at ``flush()``): "3." + "50" is then never cut, nor "Dr" + ". Smith",
"U.S." + " economy", "..." + " and", '."' + " Then".

*What kind* of point it is, from the token before it and what follows:

- token ends in . ! ? … (then optionally closers ``" ' ” ’ ) ] * _``) ->
  'sentence', unless a lowercase letter follows ("Wait... what": a 'clause'
  for ! ? …, nothing for a bare '.', which is an unknown abbreviation there);
- the '.' ends a known abbreviation (Dr. e.g. U.S. Inc. a.m. No. ...) or a
  single letter -> not a sentence end if a lowercase letter or digit follows
  ("No. 5"); if a capital follows: titles (Mr. Dr. Prof. ...) never end a
  sentence, the others do only if the next word is a common sentence starter
  ("in the U.S. Then he left" = 2 sentences, "the U.S. Army" = 1);
- , ; : or a dash token (- -- – —) -> 'clause';
- a newline -> 'paragraph' (a hard break: headings, list items, table rows
  are each their own segment), except a single newline followed by a
  lowercase letter, which is a soft wrap treated as a space; a blank line is
  always 'paragraph';
- anything else -> a plain word gap, usable for 'forced' cuts.

*When* to cut:

- 'paragraph' points always cut.
- First spoken segment of the utterance (time to first audio): cut at the
  first 'sentence' or 'clause' point with >= ``first_min`` units (words, or
  characters for zh/ja); cut 'forced' at the first point with >= ``first_max``.
- Later segments: cut at a 'sentence' point once the segment has
  >= ``min_chunk`` characters (short sentences are merged).  Their size
  limit ramps up: ``ramp[k-1]`` for the k-th later segment, then
  ``max_chunk`` (the next segment must be synthesised while the previous,
  short one plays).  With a ``pace`` (see below) the limit is also kept
  small enough for the engine to make each segment while the ones before it
  play.  Over the limit, cut at the last sentence point within
  it, else the last clause point, else the last word gap ('forced').
- Safety valve: a segment with no usable point (one giant token) is cut
  'forced' after ``2 * max_chunk`` characters, even mid-token.
- A pause tag ``<break time="500ms"/>`` (see ``breaks``; not in inline code or
  a fenced block) always cuts, right after the tag, 'break'; the segment ends
  with the tag and carries its pause. A '<' that may still become a tag holds
  the scan until the tag is complete or cannot be one.
- Fenced code blocks are segments of their own with ``spoken=''`` (cut
  'forced' at a line end when longer than ``max_chunk``).

*Languages.*  A ``SegmentProfile`` (see ``segment_profiles``) sets the numbers
above and adds marks to the built-in sets; the default is English, exactly as
described here.  Beyond extra terminators, closers and abbreviations:

- openers (Spanish ¿ ¡) are skipped when looking up an abbreviation;
- ``glue`` marks after whitespace join the token before, so the gap before
  them is no point ("Bonjour ! Ça va ?" is cut after "!", "है ।" after "।");
  a token of ``glue_after`` openers ("«") has no point after it; ``nobreak``
  spaces (U+00A0, U+202F) are part of the token, never a cut;
- ``cut_sentence`` / ``cut_clause`` marks (CJK 。，, the danda) allow a cut
  right after them and their closers although no whitespace follows; with
  ``mark_runs`` consecutive marks ("？！", "……。") are one run;
- ``unspaced`` (zh, ja): ASCII . ? ! , ; : (and … —) directly after a CJK
  character count as such marks unless a Latin letter or digit follows, and
  every boundary that touches a CJK character (not one inside a Latin word or
  number, nor between an opener and its text) is a word gap for forced cuts.

The decisions depend only on the text, never on how it was fragmented, and
every character is scanned once (O(total length)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from kokorod.text.cut_policy import ChunkBudget, CutDecisions
from kokorod.text.normalize import Normalized, Replacement, normalize
from kokorod.text.segment_profiles import SegmentProfile, segment_profile
from kokorod.text.segment_scanner import (
    ABBREVS, CLAUSE_END, CLOSERS, GAP_CLOSERS, GAP_OPENERS, OPENERS, SPOKEN_FINISHED, TERMINATORS, TITLES, CutPoint,
    SegmentScanner,
)

__all__ = ["ChunkBudget", "Segment", "SegmentProfile", "Segmenter", "segment_profile"]


@dataclass(frozen=True)
class Segment:
    index: int  # 0, 1, 2... per utterance
    text: str  # verbatim input (markdown included)
    spoken: str  # normalised text for G2P; '' -> skip synthesis
    boundary: str  # 'clause' | 'sentence' | 'paragraph' | 'forced' | 'break' | 'final'
    spans: tuple[Replacement, ...] = ()  # spoken -> written mapping (see normalize)
    dropped: tuple[str, ...] = ()  # written text the normaliser removed as unspeakable
    code: bool = False  # a fenced code block (not spoken, on purpose)
    pause_after_ms: int = 0  # silence after this segment's audio, from a <break/> tag (boundary 'break')
    notes: tuple[str, ...] = ()  # markup not taken as written (a break's time clamped or not understood)


class Segmenter(SegmentScanner, CutDecisions):
    """Text in (whole or fragment by fragment), segments out: the public API and
    the state the scanner (segment_scanner.py) and the cut decisions
    (cut_policy.py) share."""

    def __init__(
        self,
        *,
        profile: SegmentProfile | None = None,
        first_min_words: int | None = None,
        first_max_words: int | None = None,
        max_chunk_chars: int | None = None,
        min_chunk_chars: int | None = None,
        ramp_chars: tuple[int, ...] | None = None,
        normalizer: Callable[[str], Normalized] = normalize,
    ) -> None:
        """``profile`` defaults to English; the other keywords override its
        numbers (``first_min_words`` sets ``first_min`` whatever its unit)."""
        # How fast the engine feeding this stream is (kokorod.text.cut_policy),
        # or None for the profile's word counts and ramp alone. Set by the
        # owner at any time; it applies to the cuts made after that.
        self.budget: ChunkBudget | None = None
        names = ("first_min", "first_max", "max_chunk", "min_chunk", "ramp")
        given = (first_min_words, first_max_words, max_chunk_chars, min_chunk_chars, ramp_chars)
        prof = replace(profile or SegmentProfile(), **{n: v for n, v in zip(names, given) if v is not None})
        self.profile = prof
        self._ramp = tuple(min(r, prof.max_chunk) for r in prof.ramp)
        self._hard_limit = 2 * prof.max_chunk
        self._normalize = normalizer
        # The built-in (English) sets plus the profile's marks, merged once.
        self._terminators = TERMINATORS + prof.terminators
        self._clause_end = CLAUSE_END + prof.clause_marks
        self._closers = CLOSERS + prof.closers
        self._openers = OPENERS + prof.openers
        self._titles = TITLES | prof.titles
        self._abbrevs = ABBREVS | prof.titles | prof.abbrevs
        self._squash = bool(prof.glue or prof.nobreak)  # tokens may contain whitespace
        self._finished = SPOKEN_FINISHED + prof.terminators + prof.clause_marks
        self._gap_openers = prof.openers + GAP_OPENERS
        self._gap_closers = prof.closers + GAP_CLOSERS
        self.reset()

    # ------------------------------------------------------------ public API
    @property
    def pace(self) -> float | None:
        return None if self.budget is None else self.budget.pace

    @pace.setter
    def pace(self, pace: float | None) -> None:
        """A planning RTF alone, characters standing in for audio seconds."""
        self.budget = None if pace is None or not pace > 0 else ChunkBudget(pace)

    def reset(self) -> None:
        self._buf = ""  # unemitted text; self._buf[0] is absolute offset self._base
        self._base = 0
        self._pos = 0  # next absolute offset to scan
        self._out: list[Segment] = []
        self._index = 0
        self._spoken = 0  # emitted segments with something to say
        self._spoken_chars = 0  # their spoken characters, all of them
        self._later_chars = 0   # ... and those of all but the first
        self._pause_chars = 0.0  # the pauses played after them, in characters' time (ChunkBudget.pause_chars)
        self._content_at: int | None = None  # first non-space offset of the current segment
        self._seg_words = 0  # self._words at the start of the current segment
        self._mid_sentence = False  # the last spoken cut was inside a sentence (a clause or word gap)
        self._seg_code = False
        self._cands: list[CutPoint] = []  # points of the current segment not cut at
        self._pending: CutPoint | None = None
        self._words = 0
        self._tok_start = -1  # start of the current token, -1 inside whitespace
        self._tok_word = False
        self._ws_start = 0
        self._missed = False  # the current whitespace run started inside protection
        self._line_start = True
        self._skip_until = -1  # list-marker characters are neither words nor points
        self._fence: tuple[str, int] | None = None
        self._fence_closing = False
        self._ticks = 0
        self._code_span = 0
        self._brackets = 0
        self._link_paren = 0
        self._after_bracket = False
        self._run = ""  # kind of the no-whitespace mark run just scanned ('sentence'/'clause'), '' if none
        self._run_ascii = False  # the run is ASCII marks after CJK: no cut if a Latin letter/digit follows
        self._prev = ""  # the previous character if it was not whitespace (for CJK gaps)
        self._in_latin = False  # inside a Latin word or number (unit 'chars')
        self._last_tok = (-1, False)  # start and _tok_word of the last token, to re-open it for glue

    @property
    def pending_chars(self) -> int:
        return len(self._buf)

    def ends_with_sentence(self) -> bool:
        """Whether the buffered text ends in an unambiguous sentence end.

        A streaming caller whose input has stalled (an LLM pausing for a tool
        call) may then ``flush()`` instead of holding a finished sentence until
        the next word arrives. Tails that more text could still change say no:
        "$3." (a decimal may follow), "Dr." / "U.S." (abbreviations), or an open
        code fence, code span or link.
        """
        tail = self._buf.rstrip()
        if not tail or self._fence is not None or self._code_span or self._brackets or self._link_paren:
            return False
        core = tail.rstrip(self._closers)
        if core and core[-1] in self.profile.cut_sentence:
            return True
        token = self._tail_token(tail)
        kind, term, _title = self._classify(token)
        if kind != "sentence":
            return False
        stem = token.rstrip(self._closers).rstrip(self._terminators)
        return not (term == "." and stem[-1:].isdigit())

    def feed(self, fragment: str) -> list[Segment]:
        if fragment:
            self._buf += fragment
            self._scan(final=False)
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Segment]:
        self._scan(final=True)
        self._end_ticks()
        p, self._pending = self._pending, None
        if p is not None and p.word_start is not None:  # the text ends inside the next word
            self._resolve(p, self._char(p.word_start), self._text(p.word_start, self._pos))
        # A point followed only by whitespace is not judged: the rest is 'final'.
        if self._content_at is not None:
            self._emit(self._pos, "final")
        out = self._out
        self.reset()
        return out

    def _emit(self, end: int, boundary: str, *, pause_after_ms: int = 0, notes: tuple[str, ...] = ()) -> None:
        text = self._text(self._base, end)
        spoken: str = ""
        spans: tuple[Replacement, ...] = ()
        dropped: tuple[str, ...] = ()
        if not self._seg_code:
            n = self._normalize(text)
            spoken, spans, dropped = n.spoken, n.spans, n.dropped
            if not any(ch.isalnum() for ch in spoken):
                spoken, spans = "", ()
            elif boundary in ("paragraph", "final") and spoken[-1] not in self._finished:
                spoken += self.profile.full_stop  # a heading or list item should sound finished
        self._out.append(Segment(self._index, text, spoken, boundary, spans, dropped, self._seg_code, pause_after_ms,
                                 notes))
        self._index += 1
        if spoken:
            if self._spoken:
                self._later_chars += len(spoken)
            self._spoken_chars += len(spoken)
            if self.budget is not None:
                self._pause_chars += (self.budget.pause_chars(boundary)
                                      + pause_after_ms / 1000 * self.budget.chars_per_s)
        self._spoken += bool(spoken)
        if spoken:
            self._mid_sentence = boundary in ("clause", "forced")
        self._buf = self._buf[end - self._base:]
        self._base = end
        self._content_at = None
        self._seg_words = self._words
        self._cands = [q for q in self._cands if q.pos > end]
