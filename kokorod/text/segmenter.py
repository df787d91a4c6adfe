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

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from kokorod.text.breaks import break_tag_end, parse_break
from kokorod.text.cut_policy import RANKS, ChunkBudget, gap_kind
from kokorod.text.markdown import classify_line, fence_closes
from kokorod.text.normalize import STARTERS, Normalized, Replacement, normalize
from kokorod.text.segment_profiles import SegmentProfile, segment_profile

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


_TERMINATORS = ".!?…。！？‼⁇⁈⁉"
_CLAUSE_END = ",;:、，；："
_CLOSERS = "\"'”’»)]}*_~`"
_OPENERS = "\"'“‘«([{*_~`"
_DASHES = frozenset({"-", "--", "–", "—", "―"})
_TITLES = frozenset("mr mrs ms mx dr prof rev hon fr sgt capt lt gen gov sen rep pres messrs".split())
_ABBREVS = _TITLES | frozenset(
    """st jr sr inc ltd co corp bros llc etc vs v cf al approx ca dept univ fig figs eq eqs no nos
    vol vols pp p ch chap sec ave blvd rd mt ft jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
_DOTTED = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")  # U.S, e.g, a.m, J (initials)
_MAX_LOOKAHEAD_WORD = 20  # sentence starters are short; stop waiting after this
_SPOKEN_FINISHED = ".!?…:;,—"
# Unspaced profiles: marks that end a sentence/clause only right after a CJK
# character ("你好?我" but not "3.5", "a.b", "9:30").
_AFTER_CJK_SENTENCE = ".?!"
_AFTER_CJK_CLAUSE = ",;:…—"
_AFTER_CJK = _AFTER_CJK_SENTENCE + _AFTER_CJK_CLAUSE
# Gaps next to these count as touching text (quotes, brackets) in unspaced profiles.
_GAP_OPENERS = "“‘([{"
_GAP_CLOSERS = "”’)]}"


def _is_cjk(c: str) -> bool:
    return "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"


class _Point:
    """A possible cut: at ``pos`` (absolute offset), with ``words`` = units (words, or
    characters for unit 'chars') seen before it."""

    __slots__ = ("kind", "next_pos", "nl", "pos", "term", "title", "word_start", "words")

    def __init__(self, pos: int, kind: str, words: int, term: str = "", title: bool = False) -> None:
        self.pos, self.kind, self.words, self.term, self.title = pos, kind, words, term, title
        self.nl = 0  # newlines in the whitespace run after it
        self.next_pos: int | None = None  # first non-space character after it
        self.word_start: int | None = None  # set while waiting for the next word to complete


def _forced(kind: str) -> str:
    """The boundary of a cut at a point of this kind."""
    return "forced" if kind in ("word", "numeral") else kind


class Segmenter:
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
        self._terminators = _TERMINATORS + prof.terminators
        self._clause_end = _CLAUSE_END + prof.clause_marks
        self._closers = _CLOSERS + prof.closers
        self._openers = _OPENERS + prof.openers
        self._titles = _TITLES | prof.titles
        self._abbrevs = _ABBREVS | prof.titles | prof.abbrevs
        self._squash = bool(prof.glue or prof.nobreak)  # tokens may contain whitespace
        self._finished = _SPOKEN_FINISHED + prof.terminators + prof.clause_marks
        self._gap_openers = prof.openers + _GAP_OPENERS
        self._gap_closers = prof.closers + _GAP_CLOSERS
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
        self._content_at: int | None = None  # first non-space offset of the current segment
        self._seg_words = 0  # self._words at the start of the current segment
        self._seg_code = False
        self._cands: list[_Point] = []  # points of the current segment not cut at
        self._pending: _Point | None = None
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

    def _tail_token(self, tail: str) -> str:
        """The last token of ``tail`` as the scanner forms it (no-break spaces
        and glued marks included, whitespace squashed)."""
        glue, start = self.profile.glue, len(tail)
        while True:
            while start > 0 and not self._is_space(tail[start - 1]):
                start -= 1
            gap = len(tail[:start].rstrip())
            if not (glue and tail[start] in glue and gap and "\n" not in tail[gap:start]):
                break
            start = gap
        token = tail[start:]
        return "".join(token.split()) if self._squash else token

    def _is_space(self, c: str) -> bool:
        return c.isspace() and c not in self.profile.nobreak

    def _classify(self, tok: str) -> tuple[str, str, bool]:
        if self._squash:
            tok = "".join(tok.split())
        core = tok.rstrip(self._closers)
        if not core:
            return "word", "", False
        if core in _DASHES or core[-1] in "—―" or core.endswith("--"):
            return "clause", "", False
        if core[-1] in self._terminators:
            stem = core.rstrip(self._terminators)
            term = core[len(stem):]
            if term == ".":
                w = stem.lstrip(self._openers)
                if w.lower() in self._abbrevs or _DOTTED.fullmatch(w):
                    return "abbrev", term, w.lower() in self._titles
            return "sentence", term, False
        if core[-1] in self._clause_end:
            return "clause", "", False
        return "word", "", False

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

    # ------------------------------------------------------------- scanning
    def _char(self, pos: int) -> str:
        return self._buf[pos - self._base]

    def _text(self, start: int, end: int) -> str:
        return self._buf[max(start, self._base) - self._base:end - self._base]

    def _scan(self, final: bool) -> None:
        i = self._pos
        while i < self._base + len(self._buf):
            c = self._buf[i - self._base]
            if self._content_at is not None and self._pending is None and i - self._content_at >= self._hard_limit:
                self._over_limit(i, c)
                continue
            if self._fence is not None:
                nxt = self._scan_code(i, c, final)
                if nxt < 0:
                    break  # need the rest of the line to tell a closing fence
                i = nxt
                continue
            if c != "`" and self._ticks:
                self._end_ticks()
            if c == "<" and not self._code_span:
                end = break_tag_end(self._buf, i - self._base, final)
                if end is None:
                    break  # maybe a <break/> tag split across fragments: wait for the rest
                if end:
                    tag_end = self._base + end  # absolute; _emit then moves the base there
                    self._take_break(i, tag_end)
                    i = tag_end
                    continue
            if c.isspace() and c not in self.profile.nobreak:
                self._run, self._prev, self._in_latin = "", "", False
                p = self._pending
                if p is not None and p.word_start is not None:
                    self._pending = None
                    self._resolve(p, self._char(p.next_pos), self._text(p.word_start, i))  # type: ignore[arg-type]
                if self._tok_start >= 0:
                    self._end_token(i)
                if c == "\n":
                    self._newline(i)
                i += 1
                continue
            if self._line_start:
                if self._pending is not None:  # first character of a new line decides the break
                    p, self._pending = self._pending, None
                    p.next_pos = i
                    self._resolve(p, c, None)
                kind = self._classify_line(i, final)
                if kind is None:
                    break  # need more input to tell a fence / list marker
                self._line_start = False
                if kind == "fence":
                    continue
            self._text_char(i, c)
            i += 1
        self._pos = i

    def _take_break(self, i: int, end: int) -> None:
        """A <break/> tag at [i, end): cut there, whatever the policy would have
        chosen, and give the segment before it the pause (the tag's own text goes
        with it, verbatim; the normaliser drops it like any tag)."""
        ms, note = parse_break(self._text(i, end))
        self._pending = None  # the cut at the tag replaces a point just before it
        if self._tok_start >= 0:  # "word<break/>": the word ends here
            self._last_tok, self._tok_start = (self._tok_start, self._tok_word), -1
        self._run, self._prev, self._in_latin = "", "", False
        self._emit(end, "break", pause_after_ms=ms, notes=(note,) if note else ())

    def _text_char(self, i: int, c: str) -> None:
        p = self._pending
        if p is not None:
            if p.word_start is None:
                p.next_pos = i
                if c in self.profile.glue and p.nl == 0:
                    # "Bonjour !" / "है ।": the mark belongs to the token before,
                    # so the gap is no point; re-open that token to classify both.
                    self._pending = None
                    self._tok_start, self._tok_word = self._last_tok
                elif c.isascii() and c.isupper() and p.kind == "abbrev" and not p.title and p.nl == 0:
                    p.word_start = i  # wait for the whole next word
                else:
                    self._pending = None
                    self._resolve(p, c, None)
            elif not (c.isascii() and c.isalpha()) or i - p.word_start >= _MAX_LOOKAHEAD_WORD:
                self._pending = None
                self._resolve(p, self._char(p.word_start), self._text(p.word_start, i))
        if not self._marks(i, c) and self.profile.unspaced and self._gap(self._prev, c):
            self._point_here(i, "word", c)
        if self._tok_start < 0:
            self._tok_start, self._tok_word = i, False
        if i > self._skip_until:
            if self.profile.unit == "chars":
                self._count_char(c)
            elif _is_cjk(c) or (not self._tok_word and c.isalnum()):
                self._words += 1
                self._tok_word = True
        if self._content_at is None:
            self._content_at = i
        if c == "`":
            self._ticks += 1
        elif not self._code_span:
            self._brackets_char(c)
        self._prev = c

    def _point_here(self, i: int, kind: str, c: str) -> None:
        """A point between two non-space characters: its next character is known, judge it now."""
        point = _Point(i, kind, self._words)
        point.next_pos = i
        if self._content_at is not None and not self._protected():
            self._resolve(point, c, None)

    def _mark_kind(self, c: str, prev: str) -> str:
        prof = self.profile
        if c in prof.cut_sentence:
            return "sentence"
        if c in prof.cut_clause:
            return "clause"
        if prof.unspaced and c in _AFTER_CJK and (_is_cjk(prev) or (self._run and prof.mark_runs)):
            return "sentence" if c in _AFTER_CJK_SENTENCE else "clause"
        return ""

    def _marks(self, i: int, c: str) -> bool:
        """Track runs of marks that allow a cut without whitespace ("你好。」然后");
        True if ``c`` is part of one or a point was put before it."""
        if self._run:
            if c in self._closers:
                return True
            kind = self._mark_kind(c, self._prev) if self.profile.mark_runs else ""
            if kind:  # "？！", "……。": one run, cut after its last mark
                self._run = "sentence" if "sentence" in (kind, self._run) else "clause"
                self._run_ascii = self._run_ascii and c in _AFTER_CJK
                return True
            run, self._run = self._run, ""
            if not (self._run_ascii and c.isascii() and c.isalnum()):  # not "百度.com"
                self._point_here(i, run, c)
                self._start_run(c)
                return True
        return self._start_run(c)

    def _start_run(self, c: str) -> bool:
        kind = self._mark_kind(c, self._prev)
        if kind:
            self._run, self._run_ascii = kind, c in _AFTER_CJK
        return bool(kind)

    def _gap(self, prev: str, c: str) -> bool:
        """Unspaced text: may a forced cut fall between ``prev`` and ``c``?  Yes
        where the boundary touches a CJK character (or a CJK bracket) and is
        neither inside a Latin word/number nor between an opener and its text."""
        if not prev:
            return False
        hp, hc = _is_cjk(prev), _is_cjk(c)
        wp, wc = prev.isalnum() and not hp, c.isalnum() and not hc
        if not (hp or wp or prev in self._gap_closers) or not (hc or wc or c in self._gap_openers):
            return False
        return hp or hc or prev in self.profile.closers or c in self.profile.openers

    def _count_char(self, c: str) -> None:
        # unit 'chars': each CJK character is one unit, so is each Latin word or number
        if _is_cjk(c):
            self._words += 1
            self._in_latin = False
        elif c.isalnum():
            if not self._in_latin:
                self._words += 1
            self._in_latin = True
        else:
            self._in_latin = False

    def _brackets_char(self, c: str) -> None:
        if self._after_bracket:
            self._after_bracket = False
            if c == "(":
                self._link_paren = 1
                return
        if self._link_paren:
            self._link_paren += (c == "(") - (c == ")")
        elif c == "[":
            self._brackets += 1
        elif c == "]" and self._brackets:
            self._brackets -= 1
            self._after_bracket = self._brackets == 0

    def _protected(self) -> bool:
        return bool(self._code_span or self._brackets or self._link_paren)

    def _end_ticks(self) -> None:
        run, self._ticks = self._ticks, 0
        if not run:
            return
        if not self._code_span:
            self._code_span = run
        elif self._code_span == run:
            self._code_span = 0

    def _end_token(self, i: int) -> None:
        start, self._tok_start = self._tok_start, -1
        self._last_tok = (start, self._tok_word)
        self._ws_start = i
        self._missed = False
        if self._content_at is None or i <= self._skip_until + 1:
            return
        if self._protected():
            self._missed = True
            return
        token = self._text(start, i)
        glue_after = self.profile.glue_after
        if glue_after and not token.strip(glue_after):
            self._missed = True  # no point after "«" in "« Bonjour"; a newline still breaks
            return
        kind, term, title = self._classify(token)
        self._pending = _Point(i, kind, self._words, term, title)

    def _newline(self, i: int) -> None:
        # Inline code and links do not span lines here; an unclosed '[' or '`'
        # must not suppress every cut for the rest of the text.
        self._code_span = self._brackets = self._link_paren = 0
        self._after_bracket = False
        if self._pending is None and self._missed and self._content_at is not None:
            self._pending = _Point(self._ws_start, "word", self._words)
        self._missed = False
        if self._pending is not None:
            self._pending.nl += 1
        self._line_start = True
        self._run, self._prev, self._in_latin = "", "", False

    def _classify_line(self, i: int, final: bool) -> str | None:
        """At a line's first non-space character: fence opener, list marker or text."""
        kind = classify_line(self._buf, i - self._base, final)
        if kind is None:
            return None
        if kind[0] == "fence":
            if self._content_at is not None and self._content_at < i:
                # Normally the newline's 'paragraph' point already cut the text
                # before; if there was no point there, cut it here.
                self._emit(i, "paragraph")
            self._fence, self._fence_closing, self._seg_code = (self._buf[i - self._base], kind[1]), False, True
            self._content_at = i
        elif kind[0] == "marker":
            self._skip_until = i + kind[1] - 1
        return kind[0]

    def _scan_code(self, i: int, c: str, final: bool) -> int:
        """Inside a fenced block: only line ends and the closing fence matter."""
        if self._content_at is None and not c.isspace():
            self._content_at = i
        if self._line_start and c != "\n":
            if c in " \t\r":
                return i + 1
            closing = fence_closes(self._buf, i - self._base, self._fence, final)  # type: ignore[arg-type]
            if closing is None:
                return -1
            self._fence_closing, self._line_start = closing, False
        if c == "\n":
            if self._fence_closing:
                self._fence, self._fence_closing = None, False
                self._emit(i, "paragraph")
                self._seg_code = False
            elif self._content_at is not None and i - self._content_at > self.profile.max_chunk:
                self._emit(i, "forced")
            self._line_start = True
            return i + 1
        if self._content_at is None:
            return i + 1  # whitespace after a mid-line cut: the segment starts at the next non-space
        j = self._buf.find("\n", i - self._base)
        end = self._base + (len(self._buf) if j < 0 else j)
        return max(i + 1, min(end, self._content_at + self._hard_limit))

    # ------------------------------------------------------------- deciding
    def _resolve(self, p: _Point, c: str | None, word: str | None) -> None:
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
        budget = b.later_chars(k, self._spoken_chars, self._later_chars)
        floor = max(self._spoken_chars - self._later_chars, b.ramp_floor_chars())
        if b.first_audio_s is None:
            floor = max(self.profile.min_chunk, floor)
        return int(min(static, max(floor, budget)))

    def _timed_first(self) -> bool:
        """The first spoken chunk, sized by a latency budget rather than words."""
        return self._spoken == 0 and self.budget is not None and self.budget.first_audio_s is not None

    def _rank(self, q: _Point) -> int:
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

    def _decide(self, p: _Point, kind: str) -> None:
        while self._content_at is not None and p.pos > self._content_at:
            p.kind = kind
            if p.pos - self._content_at > self._limit():
                timed = self._timed_first()
                # A chunk below the ramp's floor would leave the next one no
                # time to be made (cut_policy): only longer cuts qualify.
                best = self._best_candidate(int(self.budget.ramp_floor_chars()) if self.budget else 0)
                # With a budget, a chunk never ends on "the" or before digits
                # when a word more avoids it: over the limit, a better cut at p
                # wins, and a weak p waits for the next point.
                budgeted = timed or self.budget is not None
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
            elif not first and kind == "sentence" and p.pos - self._content_at >= self.profile.min_chunk:
                boundary = kind
            else:  # not now; remember it in case the segment outgrows its limit
                self._cands.append(p)
                return
            self._cut(p, boundary)
            return

    def _best_candidate(self, min_chars: int = 0) -> _Point | None:
        """The most natural remembered point at least ``min_chars`` into the
        segment, the latest of equals (the longest chunk)."""
        best: _Point | None = None
        best_rank = -1
        start = self._content_at if self._content_at is not None else self._base
        for q in self._cands:
            if q.pos - start < min_chars:
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

    def _cut(self, p: _Point, boundary: str) -> None:
        self._emit(p.pos, boundary)
        self._content_at = p.next_pos
        self._seg_words = p.words

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
        self._spoken += bool(spoken)
        self._buf = self._buf[end - self._base:]
        self._base = end
        self._content_at = None
        self._seg_words = self._words
        self._cands = [q for q in self._cands if q.pos > end]
