"""Where to pick an utterance up again after its connection was lost (sans-I/O).

A ``ResumeTracker`` follows one client-facing utterance across the daemon-side
utterances ("segments") that speak it: the first one, and one more per resume.
It is fed the text sent (``add_text``) and the events received (``observe``),
and answers two questions:

- ``resume_point()``: which source text has not been heard yet, the stream time
  (samples) already delivered, and the word/chunk/frame indices to continue
  from. A word counts as heard once audio up to its ``end`` has been received;
  the first word that is not is re-spoken from its start.
- ``observe(event)``: the event of the current segment remapped onto the
  utterance's one continuous timeline (offsets, times and indices continued,
  the client-facing utterance id).

Word events carry the word as written, so a word is found again in the source
by a forward search from a cursor. The search only ever finds the true place
or an earlier one (the first occurrence at or after the cursor), so a mistake
re-speaks a little, and never skips text. The resume position is then moved
back to the start of the whitespace-delimited token holding that word, so
inline markup (``[Zorblax](/zˈɔɹblæks/)``, ``**bold**``, links, inline code) is
never cut in the middle; a link or phoneme tag counts as one token even when
its bracketed text has spaces.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from kokorod.protocol.messages import SAMPLE_RATE, Audio, Chunk, Done, WordEvent

__all__ = ["ResumePoint", "ResumeTracker", "map_words"]

# Spans that must be re-sent whole: markdown links/images and misaki's
# [word](/phonemes/) (same shape), and inline code. Group "target" is the part
# that is never spoken, so it is hidden from the word search.
_ATOMIC = re.compile(
    r"!?\[[^\[\]\n]*\](?P<target>\([^()\n]*(?:\([^()\n]*\)[^()\n]*)*\))"
    r"|(?P<ticks>`+)[^`\n]+?(?P=ticks)"
)
# Fenced code blocks are skipped by the daemon (a `warning`), so no word event
# comes from them: a word found inside one would be found too early, and a
# resume cut inside a block would turn its closing fence into an opening one.
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.M)
_HIDDEN = "\x00"  # matches no word text
# How far past the cursor a word is looked for: skipped code blocks, emoji and
# markup sit between words; further than this the word is treated as not found.
_SEARCH_WINDOW_CHARS = 4000
_EDGE = "\"'“”‘’„()[]{}<>«»‹›,;:!?¿¡.…—–-*_`"


def _find(hay: str, needle: str, start: int, end: int) -> tuple[int, int] | None:
    """The first occurrence of ``needle`` in ``hay[start:end]``. Deliberately
    not "the first whole word": the true place always comes at or after the
    cursor, so the first occurrence is the true place or earlier, inside text
    that is not spoken (markup, a stripped HTML tag) between the previous word
    and this one; resuming there re-sends a little unspoken text, never a heard
    word, and never skips one."""
    if not needle:
        return None
    i = hay.find(needle, start, end)
    return (i, i + len(needle)) if i >= 0 else None


def _fenced_blocks(source: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block, fences included; an unclosed one
    runs to the end of the text."""
    blocks: list[tuple[int, int]] = []
    opened: tuple[int, str] | None = None
    for m in _FENCE.finditer(source):
        if opened is None:
            opened = (m.start(), m.group(1))
        elif m.group(1)[0] == opened[1][0] and len(m.group(1)) >= len(opened[1]):
            line_end = source.find("\n", m.end())
            blocks.append((opened[0], len(source) if line_end < 0 else line_end))
            opened = None
    if opened is not None:
        blocks.append((opened[0], len(source)))
    return blocks


def map_words(source: str, words: list[str], cursor: int = 0) -> list[tuple[int, int] | None]:
    """Each word's (start, end) in ``source``, searched in order from ``cursor``;
    None for a word not found (the cursor then stays where it was)."""
    hidden = list(source)
    for m in _ATOMIC.finditer(source):
        if m.group("target"):
            s, e = m.span("target")
            hidden[s:e] = _HIDDEN * (e - s)
    for start, end in _fenced_blocks(source):
        hidden[start:end] = _HIDDEN * (end - start)
    hay = "".join(hidden)
    folded = hay.casefold() if len(hay.casefold()) == len(hay) else None
    spans: list[tuple[int, int] | None] = []
    for word in words:
        end = min(len(hay), cursor + _SEARCH_WINDOW_CHARS)
        hit = _find(hay, word, cursor, end)
        if hit is None and folded is not None:
            hit = _find(folded, word.casefold(), cursor, end)
        if hit is None:
            core = word.strip(_EDGE)
            if core and core != word:
                hit = _find(hay, core, cursor, end)
        spans.append(hit)
        if hit is not None:
            cursor = hit[1]
    return spans


def _spans(source: str) -> list[tuple[int, int]]:
    return [m.span() for m in _ATOMIC.finditer(source)]


def _token_start(source: str, pos: int) -> int:
    """Start of the whitespace-delimited token holding ``pos``, with atomic spans
    (links, phoneme tags, inline code) never split."""
    spans = _spans(source)
    while True:
        inside = next((s for s, e in spans if s < pos < e), None)
        if inside is not None:
            pos = inside
        while pos > 0 and not source[pos - 1].isspace():
            pos -= 1
            if any(s < pos < e for s, e in spans):
                break  # walked into a span from its end: jump to its start above
        else:
            return pos


def _after_token(source: str, pos: int) -> int:
    """``pos`` moved out of an atomic span it is inside (to the span's end)."""
    return next((e for s, e in _spans(source) if s < pos < e), pos)


def speakable(text: str) -> bool:
    return any(c.isalnum() for c in text)


@dataclass(frozen=True, slots=True)
class ResumePoint:
    text: str            # the source text not heard yet (may be empty)
    source_offset: int   # where ``text`` starts in everything sent
    at_samples: int      # stream time already delivered, at the output rate
    sample_rate: int
    word_index: int      # the index the first re-spoken word gets
    chunk_index: int
    seq: int             # the next audio frame's seq
    final: bool          # all of the utterance's text has been given

    @property
    def at_s(self) -> float:
        return self.at_samples / self.sample_rate


@dataclass(slots=True)
class _Base:
    samples: int = 0
    word: int = 0
    chunk: int = 0
    seq: int = 0
    source: int = 0


class ResumeTracker:
    """One utterance's text and progress; see the module docstring."""

    def __init__(self, utterance: str, sample_rate: int = SAMPLE_RATE) -> None:
        self.utterance = utterance
        self.sample_rate = sample_rate
        self.final = False
        self.segments = 0           # segments started (resumes = segments - 1)
        self._parts: list[str] = []
        self._text = ""
        self._base = _Base()
        self._samples = 0           # delivered, on the continuous timeline
        self._seq = 0
        self._words_seen = 0        # next word index
        self._chunks_seen = 0
        self._events = 0            # events delivered, all segments
        # Words of the current segment: (index, text, end in samples).
        self._words: list[tuple[int, str, int]] = []

    # -- input ---------------------------------------------------------------

    def add_text(self, fragment: str, final: bool = False) -> None:
        if self.final and fragment:
            raise ValueError("text after final")
        if fragment:
            self._parts.append(fragment)
        self.final = self.final or final

    @property
    def text(self) -> str:
        """Everything sent for the utterance so far."""
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        return self._text

    @property
    def delivered_events(self) -> int:
        return self._events

    @property
    def has_audio(self) -> bool:
        return self._samples > 0 or self._seq > 0

    @property
    def samples(self) -> int:
        return self._samples

    def observe(self, event: Any) -> Any:
        """``event`` of the current segment, remapped onto the utterance's timeline."""
        b = self._base
        self._events += 1
        if isinstance(event, Audio):
            self.sample_rate = event.sample_rate
            out = dataclasses.replace(event, utterance=self.utterance, offset=event.offset + b.samples,
                                      seq=event.seq + b.seq)
            self._samples = max(self._samples, out.offset + out.samples)
            self._seq = out.seq + 1
            return out
        shift_s = b.samples / self.sample_rate
        if isinstance(event, WordEvent):
            out = dataclasses.replace(event, utterance=self.utterance, index=event.index + b.word,
                                      start=event.start + shift_s, end=event.end + shift_s)
            self._words.append((out.index, out.text, round(out.end * self.sample_rate)))
            self._words_seen = max(self._words_seen, out.index + 1)
            return out
        if isinstance(event, Chunk):
            out = dataclasses.replace(event, utterance=self.utterance, index=event.index + b.chunk,
                                      start=event.start + shift_s, end=event.end + shift_s)
            self._chunks_seen = max(self._chunks_seen, out.index + 1)
            return out
        if isinstance(event, Done):
            samples = event.samples + b.samples
            return dataclasses.replace(event, utterance=self.utterance, samples=samples,
                                       duration=samples / self.sample_rate)
        if getattr(event, "utterance", None) is not None:
            return dataclasses.replace(event, utterance=self.utterance)
        return event

    # -- resuming ------------------------------------------------------------

    def resume_point(self) -> ResumePoint:
        source = self.text
        b = self._base
        heard = 0  # words of this segment heard in full, in order
        for _, _, end in self._words:
            if end > self._samples:
                break
            heard += 1
        spans = map_words(source, [w[1] for w in self._words[:heard + 1]], b.source)
        if heard < len(self._words):
            word_index = self._words[heard][0]
            span = spans[heard]
            if span is None:  # not found: restart after the last word found
                pos = next((s[1] for s in reversed(spans[:heard]) if s is not None), b.source)
                pos = _after_token(source, pos)
            else:
                pos = max(b.source, self._cut_before(source, span[0], spans[:heard]))
        else:
            word_index = self._words_seen if self._words else b.word
            last = next((s for s in reversed(spans) if s is not None), None)
            pos = b.source if last is None else _after_token(source, last[1])
        # Backing up to a token start may take heard words along (markup that
        # cannot be cut): they are re-spoken, so they get their indices again.
        for (index, _, _), span in zip(self._words, spans):
            if span is not None and span[0] >= pos:
                word_index = min(word_index, index)
                break
        return ResumePoint(source[pos:], pos, self._samples, self.sample_rate, word_index,
                           self._chunks_seen if self._events else b.chunk, self._seq, self.final)

    @staticmethod
    def _cut_before(source: str, word_at: int, heard: list[tuple[int, int] | None]) -> int:
        start = _token_start(source, word_at)
        prev_end = next((s[1] for s in reversed(heard) if s is not None), None)
        if prev_end is None or prev_end <= start:
            return start
        # A heard word shares the token (CJK has no spaces; "well-known" may be
        # two words): cut right before the unheard one unless the token holds
        # markup, which must be re-sent whole (the heard part is then repeated).
        token = source[start:word_at]
        if _ATOMIC.search(source, start, _after_token(source, word_at + 1)) or any(c in token for c in "[]()`"):
            return start
        return word_at

    def start_segment(self, point: ResumePoint) -> None:
        """The next events come from a new daemon-side utterance speaking ``point.text``."""
        self._base = _Base(point.at_samples, point.word_index, point.chunk_index, point.seq, point.source_offset)
        self._words = []
        self.segments += 1
