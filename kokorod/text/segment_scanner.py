"""The segmenter's scanner: reads text character by character, once, and finds
the points where a cut may fall and of what kind (kokorod.text.segmenter
describes the rules). Which of them cut is decided by
``kokorod.text.cut_policy.CutDecisions``; both are mixed into ``Segmenter``,
which owns the state they share (set in ``Segmenter.reset``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kokorod.text.breaks import break_tag_end, comment_end, parse_break
from kokorod.text.markdown import classify_line, fence_closes

if TYPE_CHECKING:
    from kokorod.text.segment_profiles import SegmentProfile


TERMINATORS = ".!?…。！？‼⁇⁈⁉"
CLAUSE_END = ",;:、，；："
CLOSERS = "\"'”’»)]}*_~`"
OPENERS = "\"'“‘«([{*_~`"
_DASHES = frozenset({"-", "--", "–", "—", "―"})
TITLES = frozenset("mr mrs ms mx dr prof rev hon fr sgt capt lt gen gov sen rep pres messrs".split())
ABBREVS = TITLES | frozenset(
    """st jr sr inc ltd co corp bros llc etc vs v cf al approx ca dept univ fig figs eq eqs no nos
    vol vols pp p ch chap sec ave blvd rd mt ft jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
_DOTTED = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")  # U.S, e.g, a.m, J (initials)
_MAX_LOOKAHEAD_WORD = 20  # sentence starters are short; stop waiting after this
SPOKEN_FINISHED = ".!?…:;,—"
# Unspaced profiles: marks that end a sentence/clause only right after a CJK
# character ("你好?我" but not "3.5", "a.b", "9:30").
_AFTER_CJK_SENTENCE = ".?!"
_AFTER_CJK_CLAUSE = ",;:…—"
_AFTER_CJK = _AFTER_CJK_SENTENCE + _AFTER_CJK_CLAUSE
# Gaps next to these count as touching text (quotes, brackets) in unspaced profiles.
GAP_OPENERS = "“‘([{"
GAP_CLOSERS = "”’)]}"


def _is_cjk(c: str) -> bool:
    return "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"


class CutPoint:
    """A possible cut: at ``pos`` (absolute offset), with ``words`` = units (words, or
    characters for unit 'chars') seen before it."""

    __slots__ = ("kind", "next_pos", "nl", "pos", "term", "title", "word_start", "words")

    def __init__(self, pos: int, kind: str, words: int, term: str = "", title: bool = False) -> None:
        self.pos, self.kind, self.words, self.term, self.title = pos, kind, words, term, title
        self.nl = 0  # newlines in the whitespace run after it
        self.next_pos: int | None = None  # first non-space character after it
        self.word_start: int | None = None  # set while waiting for the next word to complete


class SegmentScanner:
    """Finding cut points; mixed into ``Segmenter``."""

    profile: SegmentProfile

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
                end = comment_end(self._buf, i - self._base, final)
                if end is None:
                    break  # an HTML comment not closed yet: never cut inside it
                if end:
                    # No cut point inside: the comment stays whole in one
                    # segment, and the normaliser drops it with a warning.
                    i = self._base + end
                    continue
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
        point = CutPoint(i, kind, self._words)
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
        self._pending = CutPoint(i, kind, self._words, term, title)

    def _newline(self, i: int) -> None:
        # Inline code and links do not span lines here; an unclosed '[' or '`'
        # must not suppress every cut for the rest of the text.
        self._code_span = self._brackets = self._link_paren = 0
        self._after_bracket = False
        if self._pending is None and self._missed and self._content_at is not None:
            self._pending = CutPoint(self._ws_start, "word", self._words)
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
