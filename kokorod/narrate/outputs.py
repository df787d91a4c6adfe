"""Everything written for one audio file: the audio, its captions, its word
times and its chapters, all on that file's timeline (samples from its start).

Each part is written as it comes (captions cue by cue, word times word by
word) so memory stays flat however long the book; ``close()`` finishes all of
them into valid files, and is what runs on Ctrl-C or a failure too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from kokorod.narrate.captions import CaptionFormat, Cue, CueBuilder, TimedWord
from kokorod.narrate.chapters import Chapter
from kokorod.narrate.writer import AudioWriter


@dataclass(frozen=True)
class Targets:
    """Where one output goes: audio (with its format), optional captions and word times."""

    audio: Path
    fmt: str
    captions: Path | None = None
    words: Path | None = None


class Outputs:
    def __init__(self, targets: Targets, sample_rate: int) -> None:
        self.targets, self.sample_rate = targets, sample_rate
        self.chapters: list[Chapter] = []
        self.cues_written = 0
        self.last_cue: Cue | None = None
        self.audio = AudioWriter(targets.audio, targets.fmt, sample_rate)
        self._cues: CueBuilder | None = None
        self._captions: TextIO | None = None
        self._words: TextIO | None = None
        self._first_word = True
        try:
            if targets.captions is not None:
                self._format = CaptionFormat(targets.captions.suffix.lower().lstrip("."), sample_rate)
                self._cues = CueBuilder(sample_rate)
                self._captions = targets.captions.open("w", encoding="utf-8")
                self._captions.write(self._format.header())
            if targets.words is not None:
                self._words = targets.words.open("w", encoding="utf-8")
                self._words.write(f'{{"sample_rate": {sample_rate}, "words": [')
        except BaseException:
            self.close()
            raise

    @property
    def position(self) -> int:
        """Samples written so far: where the next audio starts on this file's timeline."""
        return self.audio.samples

    def start_chapter(self, index: int, title: str, at: int | None = None) -> None:
        """A chapter from ``at`` (default: here) on; the previous one ends where it starts."""
        start = self.position if at is None else at
        if self.chapters and self.chapters[-1].end < 0:
            self.chapters[-1].end = start
        self.chapters.append(Chapter(index, title, start))

    def add(self, audio: np.ndarray, words: list[TimedWord]) -> None:
        """Audio of one segment, and its words already on this file's timeline."""
        self.audio.write(audio)
        for w in words:
            if self._words is not None:
                sep = "" if self._first_word else ","
                self._first_word = False
                item = {"text": w.text, "start": round(w.start / self.sample_rate, 4),
                        "end": round(w.end / self.sample_rate, 4), "start_sample": w.start, "end_sample": w.end}
                self._words.write(sep + "\n  " + json.dumps(item, ensure_ascii=False))
            if self._cues is not None:
                self._write_cues(self._cues.feed(w))

    def _write_cues(self, cues: list[Cue]) -> None:
        assert self._captions is not None
        for cue in cues:
            self._captions.write(self._format.cue(cue))
            self.cues_written += 1
            self.last_cue = cue

    def close(self) -> list[Path]:
        """Finish every file (also after a failure); returns the paths written."""
        if self.chapters and self.chapters[-1].end < 0:
            self.chapters[-1].end = self.position
        written: list[Path] = []
        try:
            written = [self.targets.audio, *self.audio.close(self.chapters)]
        finally:
            if self._captions is not None:
                if self._cues is not None:
                    self._write_cues(self._cues.flush())
                self._captions.close()
                self._captions = None
                written.append(self.targets.captions)  # type: ignore[arg-type]
            if self._words is not None:
                self._words.write("\n]}\n")
                self._words.close()
                self._words = None
                written.append(self.targets.words)  # type: ignore[arg-type]
        return written
