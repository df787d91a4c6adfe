"""Word times -> subtitle cues (WebVTT, SubRip). Sans-I/O: words in, cues out.

Subtitle conventions (BBC, Netflix, W3C guides) agree on the shape of a cue:
at most two lines of about 42 characters, on screen at most about 7 seconds,
and cut where the language pauses: a cue ends at a sentence end when it can,
else at a clause end (, ; : —), and only as a last resort between two words.
A new sentence starts a new cue unless the cue so far is too short to read
on its own.

Cues are built incrementally so a book of any length needs memory for one
cue only: ``feed()`` returns the cues that are complete now, ``flush()`` the
rest. A cue's start and end are exactly its first word's start and its last
word's end, in samples (the written file rounds them to milliseconds), so
captions never run outside the audio and agree with the word events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

LINE_CHARS = 42  # per line, the common broadcast/streaming limit
MAX_LINES = 2
MAX_CUE_S = 7.0
MIN_SENTENCE_CUE_CHARS = 16  # a shorter sentence joins the next one ("Yes." alone flashes by)
PAUSE_BREAK_S = 1.2  # a silence this long (a paragraph, a <break/>) ends the cue

_SENTENCE_END = ".!?…。！？"
_CLAUSE_END = ",;:—–、，；："
_CLOSERS = "\"'”’»)]}*_"

# How good a place the gap after a word is to end a cue (higher is better).
# After a PARAGRAPH (a heading, a paragraph's end) a cue always ends.
PARAGRAPH, SENTENCE, CLAUSE, WORD = 3, 2, 1, 0
_MARKUP = "*_`#"  # markdown emphasis/code marks around a word: not shown in a caption


@dataclass(frozen=True)
class TimedWord:
    """A written word and its span in samples on the output timeline.
    ``boundary`` is what follows it in the text: SENTENCE, CLAUSE or WORD."""

    text: str
    start: int
    end: int
    boundary: int = WORD


@dataclass(frozen=True)
class Cue:
    start: int  # samples
    end: int
    lines: tuple[str, ...]
    words: tuple[TimedWord, ...] = field(default=(), compare=False, repr=False)


def boundary_of(text: str, segment_end: str | None = None) -> int:
    """The break after a word, from its own punctuation or, for a segment's
    last word, from why the segmenter cut there."""
    core = text.rstrip(_CLOSERS)
    if segment_end in ("paragraph", "final", "break"):
        return PARAGRAPH
    if segment_end == "sentence" or (core and core[-1] in _SENTENCE_END):
        return SENTENCE
    if segment_end == "clause" or (core and core[-1] in _CLAUSE_END):
        return CLAUSE
    return WORD


def with_punctuation(written: str, words: list[str]) -> list[str]:
    """Each word as it stands in ``written`` (a segment's verbatim text): with
    the punctuation and quotes attached to it ("night," "“Yes!”"), markdown
    marks removed. Word events carry the bare written word; a caption needs
    the punctuation to read well and to show where sentences end. A word not
    found in order (a number spoken in words) is kept as the event has it."""
    out: list[str] = []
    cursor = 0
    for word in words:
        at = written.find(word, cursor) if word else -1
        if at < 0:
            out.append(word)
            continue
        start, end = at, at + len(word)
        while start > cursor and not written[start - 1].isspace():
            start -= 1  # an opening quote or bracket
        while end < len(written) and not written[end].isspace():
            end += 1  # closing punctuation
        nxt = [(written.find(w, at + len(word)) if w else -1) for w in words[len(out) + 1:len(out) + 2]]
        if nxt and 0 <= nxt[0] < end:
            end = nxt[0]  # the next word is glued to this one ("and/or", "A-B")
        token = written[start:end].strip(_MARKUP) if written[start:end].strip(_MARKUP) else word
        out.append(token)
        cursor = end
    return out


def split_lines(words: Iterable[str], line_chars: int = LINE_CHARS) -> tuple[str, ...]:
    """One line if it fits, else two: the split that keeps both lines within
    ``line_chars``, preferring one after a clause mark, then the most even.
    A word longer than a line (a URL) still gets a line of its own."""
    ws = list(words)
    one = " ".join(ws)
    if len(one) <= line_chars or len(ws) < 2:
        return (one,)
    best: tuple[tuple[int, int, int], int] | None = None
    for i in range(1, len(ws)):
        top, bottom = " ".join(ws[:i]), " ".join(ws[i:])
        fits = len(top) <= line_chars and len(bottom) <= line_chars
        clause = boundary_of(ws[i - 1]) > WORD
        key = (int(fits), int(clause and fits), -abs(len(top) - len(bottom)))
        if best is None or key > best[0]:
            best = (key, i)
    assert best is not None
    i = best[1]
    return (" ".join(ws[:i]), " ".join(ws[i:]))


def fits(words: list[TimedWord], sample_rate: int, line_chars: int = LINE_CHARS,
         max_cue_s: float = MAX_CUE_S) -> bool:
    """Whether these words make a cue within the limits."""
    if len(words) <= 1:
        return True  # a single word always makes a cue, however long
    if (words[-1].end - words[0].start) > max_cue_s * sample_rate:
        return False
    lines = split_lines((w.text for w in words), line_chars)
    return len(lines) <= MAX_LINES and all(len(line) <= line_chars for line in lines)


class CueBuilder:
    """Groups timed words into cues as they arrive (one cue held at a time)."""

    def __init__(self, sample_rate: int, *, line_chars: int = LINE_CHARS, max_cue_s: float = MAX_CUE_S) -> None:
        self.sample_rate = sample_rate
        self.line_chars = line_chars
        self.max_cue_s = max_cue_s
        self._words: list[TimedWord] = []

    def feed(self, word: TimedWord) -> list[Cue]:
        out: list[Cue] = []
        if self._words:
            gap = word.start - self._words[-1].end
            if gap >= PAUSE_BREAK_S * self.sample_rate:
                out.append(self._cue(len(self._words)))
        if self._words and not fits([*self._words, word], self.sample_rate, self.line_chars, self.max_cue_s):
            out.append(self._cue(self._best_cut()))
            # What was carried over may itself still be too long with the new word.
            while self._words and not fits([*self._words, word], self.sample_rate, self.line_chars,
                                           self.max_cue_s):
                out.append(self._cue(self._best_cut()))
        self._words.append(word)
        if word.boundary == PARAGRAPH:
            out.append(self._cue(len(self._words)))
        elif word.boundary == SENTENCE and len(" ".join(w.text for w in self._words)) >= MIN_SENTENCE_CUE_CHARS:
            out.append(self._cue(len(self._words)))
        return out

    def flush(self) -> list[Cue]:
        return [self._cue(len(self._words))] if self._words else []

    def _best_cut(self) -> int:
        """How many held words go into the cue being closed: up to the last
        sentence end, else the last clause end, as long as the cue keeps at
        least a third of what is held; else all of them."""
        n = len(self._words)
        for rank in (SENTENCE, CLAUSE):
            for i in range(n - 1, 0, -1):
                if self._words[i - 1].boundary >= rank and 3 * i >= n:
                    return i
        return n

    def _cue(self, count: int) -> Cue:
        taken, self._words = self._words[:count], self._words[count:]
        lines = split_lines((w.text for w in taken), self.line_chars)
        return Cue(taken[0].start, taken[-1].end, lines, tuple(taken))


def _clock(samples: int, sample_rate: int, sep: str) -> str:
    ms = (samples * 1000 + sample_rate // 2) // sample_rate  # integer arithmetic: no drift over hours
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class CaptionFormat:
    """Text of a WebVTT or SubRip file, cue by cue (the caller writes it)."""

    def __init__(self, kind: str, sample_rate: int) -> None:
        if kind not in ("vtt", "srt"):
            raise ValueError(f"captions must be .vtt or .srt, not {kind!r}")
        self.kind, self.sample_rate, self._count = kind, sample_rate, 0

    def header(self) -> str:
        return "WEBVTT\n\n" if self.kind == "vtt" else ""

    def cue(self, cue: Cue) -> str:
        self._count += 1
        sep = "." if self.kind == "vtt" else ","
        # A cue's text must not contain a blank line or (VTT) "-->"; words never hold newlines.
        lines = [line.replace("-->", "->") for line in cue.lines]
        times = f"{_clock(cue.start, self.sample_rate, sep)} --> {_clock(cue.end, self.sample_rate, sep)}"
        number = f"{self._count}\n" if self.kind == "srt" else ""
        return f"{number}{times}\n" + "\n".join(lines) + "\n\n"
