"""Incremental sentence segmenter for streaming TTS (sans-I/O: no asyncio, no model).

Text arrives whole or as an LLM token stream; ``feed()`` returns the segments
that are complete *now*, ``flush()`` ends the utterance.  Each ``Segment``
carries its verbatim ``text`` (markdown included), the normalised ``spoken``
text for G2P ('' means: skip synthesis) and why it was cut.

Policy
------
*Where* a cut may happen.  Only at the start of a whitespace run that follows
a token (so never inside a word, number "3.50"/"1,000", URL, e-mail, time
"9:30"), or right after a CJK terminator (。！？), and never inside inline
code, a markdown link's ``[text]`` or its ``(target)``.  The whitespace goes
to the *next* segment, so ``''.join(s.text for s in segments)`` is the input
minus trailing whitespace.  A cut point is judged only once the next
non-whitespace character has arrived (or at ``flush()``): "3." + "50" is then
never cut, nor "Dr" + ". Smith", "U.S." + " economy", "..." + " and",
'."' + " Then".

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
  first 'sentence' or 'clause' point with >= ``first_min_words`` words; cut
  'forced' at the word gap after ``first_max_words`` words.
- Later segments: cut at a 'sentence' point once the segment has
  >= ``min_chunk_chars`` characters (short sentences are merged).  Their
  size limit ramps up: ``ramp_chars[k-1]`` for the k-th later segment, then
  ``max_chunk_chars`` (the next segment must be synthesised while the
  previous, short one plays).  Over the limit, cut at the last sentence point
  within it, else the last clause point, else the last word gap ('forced').
- Safety valve: a segment with no usable point (one giant token) is cut
  'forced' after ``2 * max_chunk_chars`` characters, even mid-token.
- Fenced code blocks are segments of their own with ``spoken=''`` (cut
  'forced' at a line end when longer than ``max_chunk_chars``).

The decisions depend only on the text, never on how it was fragmented, and
every character is scanned once (O(total length)).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kokorod.text.markdown import classify_line, fence_closes
from kokorod.text.normalize import STARTERS, Normalized, Replacement, normalize


@dataclass(frozen=True)
class Segment:
    index: int  # 0, 1, 2... per utterance
    text: str  # verbatim input (markdown included)
    spoken: str  # normalised text for G2P; '' -> skip synthesis
    boundary: str  # 'clause' | 'sentence' | 'paragraph' | 'forced' | 'final'
    spans: tuple[Replacement, ...] = ()  # spoken -> written mapping (see normalize)


_TERMINATORS = ".!?…。！？‼⁇⁈⁉"
_CJK_TERMINATORS = "。！？"
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


def _is_cjk(c: str) -> bool:
    return "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"


class _Point:
    """A possible cut: at ``pos`` (absolute offset), with ``words`` = words seen before it."""

    __slots__ = ("kind", "next_pos", "nl", "pos", "term", "title", "word_start", "words")

    def __init__(self, pos: int, kind: str, words: int, term: str = "", title: bool = False) -> None:
        self.pos, self.kind, self.words, self.term, self.title = pos, kind, words, term, title
        self.nl = 0  # newlines in the whitespace run after it
        self.next_pos: int | None = None  # first non-space character after it
        self.word_start: int | None = None  # set while waiting for the next word to complete


def _classify_token(tok: str) -> tuple[str, str, bool]:
    core = tok.rstrip(_CLOSERS)
    if not core:
        return "word", "", False
    if core in _DASHES or core[-1] in "—―" or core.endswith("--"):
        return "clause", "", False
    if core[-1] in _TERMINATORS:
        stem = core.rstrip(_TERMINATORS)
        term = core[len(stem):]
        if term == ".":
            w = stem.lstrip(_OPENERS)
            if w.lower() in _ABBREVS or _DOTTED.fullmatch(w):
                return "abbrev", term, w.lower() in _TITLES
        return "sentence", term, False
    if core[-1] in _CLAUSE_END:
        return "clause", "", False
    return "word", "", False


class Segmenter:
    def __init__(
        self,
        *,
        first_min_words: int = 4,
        first_max_words: int = 12,
        max_chunk_chars: int = 300,
        min_chunk_chars: int = 40,
        ramp_chars: tuple[int, ...] = (100, 200),
        normalizer: Callable[[str], Normalized] = normalize,
    ) -> None:
        if not 1 <= first_min_words <= first_max_words:
            raise ValueError("need 1 <= first_min_words <= first_max_words")
        self.first_min_words, self.first_max_words = first_min_words, first_max_words
        self.max_chunk_chars, self.min_chunk_chars = max_chunk_chars, min_chunk_chars
        self.ramp_chars = tuple(min(r, max_chunk_chars) for r in ramp_chars)
        self._hard_limit = 2 * max_chunk_chars
        self._normalize = normalizer
        self.reset()

    # ------------------------------------------------------------ public API
    def reset(self) -> None:
        self._buf = ""  # unemitted text; self._buf[0] is absolute offset self._base
        self._base = 0
        self._pos = 0  # next absolute offset to scan
        self._out: list[Segment] = []
        self._index = 0
        self._spoken = 0  # emitted segments with something to say
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
        self._cjk_after = False

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
        if tail[-1] in _CJK_TERMINATORS:
            return True
        token = tail.split()[-1]
        kind, term, _title = _classify_token(token)
        if kind != "sentence":
            return False
        stem = token.rstrip(_CLOSERS).rstrip(_TERMINATORS)
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
            if c.isspace():
                self._cjk_after = False
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

    def _text_char(self, i: int, c: str) -> None:
        p = self._pending
        if p is not None:
            if p.word_start is None:
                p.next_pos = i
                if c.isascii() and c.isupper() and p.kind == "abbrev" and not p.title and p.nl == 0:
                    p.word_start = i  # wait for the whole next word
                else:
                    self._pending = None
                    self._resolve(p, c, None)
            elif not (c.isascii() and c.isalpha()) or i - p.word_start >= _MAX_LOOKAHEAD_WORD:
                self._pending = None
                self._resolve(p, self._char(p.word_start), self._text(p.word_start, i))
        if self._cjk_after and c not in _CLOSERS:
            self._cjk_after = False
            point = _Point(i, "sentence", self._words)
            point.next_pos = i
            if self._content_at is not None and not self._protected():
                self._resolve(point, c, None)
        if c in _CJK_TERMINATORS:
            self._cjk_after = True
        if self._tok_start < 0:
            self._tok_start, self._tok_word = i, False
        if i > self._skip_until:
            if _is_cjk(c) or (not self._tok_word and c.isalnum()):
                self._words += 1
                self._tok_word = True
        if self._content_at is None:
            self._content_at = i
        if c == "`":
            self._ticks += 1
        elif not self._code_span:
            self._brackets_char(c)

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
        self._ws_start = i
        self._missed = False
        if self._content_at is None or i <= self._skip_until + 1:
            return
        if self._protected():
            self._missed = True
            return
        kind, term, title = _classify_token(self._text(start, i))
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
        self._cjk_after = False

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
            elif self._content_at is not None and i - self._content_at > self.max_chunk_chars:
                self._emit(i, "forced")
            self._line_start = True
            return i + 1
        j = self._buf.find("\n", i - self._base)
        end = self._base + (len(self._buf) if j < 0 else j)
        if self._content_at is not None:
            end = min(end, self._content_at + self._hard_limit)
        return max(i + 1, end)

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
        self._decide(p, kind)

    def _limit(self) -> int:
        k = self._spoken
        if k == 0 or k > len(self.ramp_chars):
            return self.max_chunk_chars
        return self.ramp_chars[k - 1]

    def _decide(self, p: _Point, kind: str) -> None:
        while self._content_at is not None and p.pos > self._content_at:
            if p.pos - self._content_at > self._limit():
                best = self._best_candidate()
                if best is not None:
                    self._cut(best, "forced" if best.kind == "word" else best.kind)
                    continue  # judge p again within the new segment
                self._cut(p, kind if kind != "word" else "forced")
                return
            words = p.words - self._seg_words
            first = self._spoken == 0
            if kind == "paragraph":
                boundary = kind
            elif first and kind in ("sentence", "clause") and words >= self.first_min_words:
                boundary = kind
            elif first and words >= self.first_max_words:
                boundary = "forced"
            elif not first and kind == "sentence" and p.pos - self._content_at >= self.min_chunk_chars:
                boundary = kind
            else:  # not now; remember it in case the segment outgrows its limit
                p.kind = kind
                self._cands.append(p)
                return
            self._cut(p, boundary)
            return

    def _best_candidate(self) -> _Point | None:
        for want in ("sentence", "clause", "word"):
            for q in reversed(self._cands):
                if q.kind == want:
                    return q
        return None

    def _over_limit(self, i: int, c: str) -> None:
        """Safety valve: the segment grew past the hard limit between points."""
        best = self._best_candidate()
        if best is not None:
            self._cut(best, "forced" if best.kind == "word" else best.kind)
        else:
            self._emit(i, "forced")
            self._content_at = None if c.isspace() else i

    def _cut(self, p: _Point, boundary: str) -> None:
        self._emit(p.pos, boundary)
        self._content_at = p.next_pos
        self._seg_words = p.words

    def _emit(self, end: int, boundary: str) -> None:
        text = self._text(self._base, end)
        spoken: str = ""
        spans: tuple[Replacement, ...] = ()
        if not self._seg_code:
            n = self._normalize(text)
            spoken, spans = n.spoken, n.spans
            if not any(ch.isalnum() for ch in spoken):
                spoken, spans = "", ()
            elif boundary in ("paragraph", "final") and spoken[-1] not in ".!?…:;,—":
                spoken += "."  # a heading or list item should sound finished
        self._out.append(Segment(self._index, text, spoken, boundary, spans))
        self._index += 1
        self._spoken += bool(spoken)
        self._buf = self._buf[end - self._base:]
        self._base = end
        self._content_at = None
        self._seg_words = self._words
        self._cands = [q for q in self._cands if q.pos > end]
