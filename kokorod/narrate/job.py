"""A narration job: blocks of text in, audio files (with captions, word times
and chapters) out, one segment at a time.

Sans-I/O in the sense that matters: the job does not know where the text
comes from, who synthesizes (the model in this process, or the daemon), or
whether a terminal watches. ``Renderer`` turns one segment into audio and
words; ``run`` is handed a ``call`` that runs each render off the caller's
thread, so Ctrl-C lands at once. Memory is bounded by one block of text, one
segment's audio and one caption cue, whatever the length of the book.

Everything on one timeline per output file, in integer samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, TypeVar

import numpy as np

from kokorod.narrate.captions import TimedWord, boundary_of, with_punctuation
from kokorod.narrate.outputs import Outputs
from kokorod.narrate.reader import Block
from kokorod.text.segmenter import Segment, Segmenter
from kokorod.speech.chunk import Word

CHAPTER_GAP_MS = 1000  # silence before a chapter's heading, on top of the paragraph pause
T = TypeVar("T")


class Renderer(Protocol):
    def render(self, segment: Segment, last: bool) -> tuple[np.ndarray, list[Word], list[str]]:
        """One segment's audio (float32 at the job's rate, its pause after it included), its
        words relative to its start, and written words that could not be spoken."""
        ...


@dataclass
class Progress:
    """What the progress bar shows; updated after every segment."""

    bytes_done: int = 0
    bytes_total: int | None = None
    audio_samples: int = 0
    render_s: float = 0.0  # wall time spent synthesizing
    chapter: str = ""


@dataclass
class Summary:
    files: list[Path] = field(default_factory=list)
    audio_samples: int = 0
    words: int = 0
    chapters: int = 0
    finished: bool = False
    stopped_at: int | None = None  # character offset of the first text not in the audio
    stopped_text: str = ""  # the start of that segment


def _direct(fn: Callable[[], T]) -> T:
    return fn()


class Narration:
    def __init__(self, blocks: Iterable[Block], renderer: Renderer, segmenter: Callable[[], Segmenter],
                 open_outputs: Callable[[int, str], Outputs], *, sample_rate: int, split: bool = False,
                 title: str = "", bytes_total: int | None = None,
                 report: Callable[[str], None] = lambda _m: None,
                 on_progress: Callable[[Progress], None] = lambda _p: None) -> None:
        self._blocks, self._renderer, self._new_segmenter = blocks, renderer, segmenter
        self._open, self._rate, self._split, self._title = open_outputs, sample_rate, split, title
        self._report, self._on_progress = report, on_progress
        self.progress = Progress(bytes_total=bytes_total)
        self.summary = Summary()
        self._outputs: Outputs | None = None
        self._chapter_index = 0
        self._seg = segmenter()
        self._run_offset = 0  # character offset of the current segmenter run's first character
        self._run_chars = 0  # characters of the run's segments seen so far
        self._held: tuple[Segment, int] | None = None  # the segment seen last, with its offset: is it the last?
        self._gap_before_next = False

    # --------------------------------------------------------------- driving
    def run(self, call: Callable[[Callable[[], T]], T] = _direct) -> Summary:  # type: ignore[assignment]
        """Speak everything. On an exception (KeyboardInterrupt included) the
        files are closed valid and ``summary.stopped_at`` says where the audio
        ends in the text, then the exception goes on."""
        self._call = call
        try:
            fresh = True
            for block in self._blocks:
                if fresh:
                    self._run_offset, fresh = block.offset, False
                if block.kind == "heading":
                    self._end_run(last=False)
                    self._run_offset = block.offset
                    self._begin_chapter(block.title)
                for segment in self._seg.feed(block.text):
                    self._take(segment)
                self.progress.bytes_done = block.bytes_done
            self._end_run(last=True)
            self.summary.finished = True
        except BaseException:
            if self._held is not None:
                self.summary.stopped_at = self._held[1]
                self.summary.stopped_text = " ".join(self._held[0].text.split())[:60]
            else:
                self.summary.stopped_at = self._run_offset + self._run_chars
            raise
        finally:
            self._close_outputs()
        return self.summary

    def _take(self, segment: Segment) -> None:
        offset = self._run_offset + self._run_chars
        self._run_chars += len(segment.text)
        if self._held is not None:
            self._speak(self._held[0], last=False)
        self._held = (segment, offset)

    def _end_run(self, *, last: bool) -> None:
        for segment in self._seg.flush():
            self._take(segment)
        if self._held is not None:
            self._speak(self._held[0], last=last)
            self._held = None
        self._seg = self._new_segmenter()
        self._run_chars = 0

    # --------------------------------------------------------------- outputs
    def _begin_chapter(self, title: str) -> None:
        if self._chapter_index == 0 and self._outputs is not None and self._outputs.position > 0:
            # Text before the first heading is a chapter of its own (a preface).
            self._chapter_index = 1
            self._outputs.start_chapter(1, self._title or "Opening", at=0)
            self.summary.chapters += 1
        self._chapter_index += 1
        self.progress.chapter = title
        if self._split and self._outputs is not None:
            self._close_outputs()
        if self._outputs is None:
            self._outputs = self._open(self._chapter_index, title)
        elif self._outputs.position > 0:
            self._gap_before_next = True
        self._outputs.start_chapter(self._chapter_index, title)
        self.summary.chapters += 1

    def _ensure_outputs(self) -> Outputs:
        if self._outputs is None:
            self._outputs = self._open(max(self._chapter_index, 1), self._title)
        return self._outputs

    def _close_outputs(self) -> None:
        if self._outputs is not None:
            outputs, self._outputs = self._outputs, None
            self.summary.files.extend(outputs.close())

    # ---------------------------------------------------------------- speech
    def _speak(self, segment: Segment, *, last: bool) -> None:
        started = time.monotonic()
        audio, words, unspoken = self._call(lambda: self._renderer.render(segment, last))
        self.progress.render_s += time.monotonic() - started
        for piece in (*segment.dropped, *unspoken):  # what the normaliser dropped, what the voice could not say
            self._report(f"not spoken: {piece}")
        if segment.code and segment.text.strip():
            self._report(f"not spoken (code): {' '.join(segment.text.split())[:60]}")
        if not audio.size:
            return
        out = self._ensure_outputs()
        if self._gap_before_next:
            self._gap_before_next = False
            gap = CHAPTER_GAP_MS * self._rate // 1000
            out.add(np.zeros(gap, np.float32), [])
            self.progress.audio_samples += gap
            self.summary.audio_samples += gap
        at = out.position
        shown = with_punctuation(segment.text, [w.text for w in words])
        timed = [TimedWord(text, w.start + at, w.end + at,
                           boundary_of(text, segment.boundary if i == len(words) - 1 else None))
                 for i, (w, text) in enumerate(zip(words, shown))]
        out.add(audio, timed)
        self.summary.audio_samples += int(audio.shape[0])
        self.summary.words += len(words)
        self.progress.audio_samples += int(audio.shape[0])
        self._on_progress(self.progress)
