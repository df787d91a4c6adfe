"""The progress bar of a narration job on stderr (rich), and nothing when
stderr is not a terminal or ``--quiet`` was given: a log file or a pipe gets
only the final summary line.

Shows the percent of the text done (bytes of the input consumed; a pipe has
no size, so then only what is known), the audio written, the real-time speed
(seconds of audio per second of synthesis) and rich's ETA.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from kokorod.narrate.job import Progress


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class ProgressBar:
    def __init__(self, *, quiet: bool, sample_rate: int, stream: TextIO | None = None) -> None:
        self._err = stream or sys.stderr
        self.enabled = not quiet and bool(getattr(self._err, "isatty", lambda: False)())
        self._rate = sample_rate
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[audio]} audio, {task.fields[speed]}"),
                            TimeRemainingColumn(), console=Console(file=self._err), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("narrating", total=None, audio="0:00:00", speed="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def update(self, p: Progress) -> None:
        if self._bar is None:
            return
        audio_s = p.audio_samples / self._rate
        speed = f"{audio_s / p.render_s:.1f}x real time" if p.render_s > 0 else ""
        self._bar.update(self._task, total=p.bytes_total, completed=p.bytes_done, audio=_clock(audio_s),
                         speed=speed, description=(p.chapter[:24] or "narrating"))

    def message(self, text: str) -> None:
        """A line above the bar (text not spoken, say), or plain stderr without one."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self._err)
