"""Where ``say`` and ``pipe`` send speech as it arrives: the speakers (words
printed as playback reaches them), else a WAV written at the end (with -o, or
when there is no sound device). The same sink for the daemon and in-process."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import numpy as np

from kokorod.audio.playback import StreamingPlayer, WordPrinter, word_line
from kokorod.cli.console import Console


class Sink:
    """Where the speech goes: the speakers as it arrives, else a WAV at the end."""

    def __init__(self, args: argparse.Namespace, sample_rate: int, default_wav: str, console: Console) -> None:
        self.args, self.console, self.sample_rate = args, console, sample_rate
        self.player = None if args.output else StreamingPlayer.open(sample_rate)
        if self.player is None and not args.output:
            args.output = default_wav
            console.clear()
            print(f"no sound device; writing {args.output}", file=sys.stderr)
        self.printer = WordPrinter(before=console.clear) if self.player is not None and args.words else None
        self.parts: list[np.ndarray] = []
        self.words: list[tuple[str, float, float]] = []
        self.first_audio: float | None = None
        self.broken_pipe = False

    def audio(self, samples: np.ndarray) -> None:
        if self.first_audio is None:
            self.first_audio = time.monotonic()
        if self.player is not None:
            self.player.feed(samples)
        else:
            self.parts.append(samples)

    def word(self, text: str, start_s: float, end_s: float) -> None:
        self.words.append((text, start_s, end_s))
        if self.printer is not None:
            self.printer.add(_TimedWord(text, start_s, end_s))

    async def clock(self) -> None:
        """Print words as playback reaches them (runs while the stream does)."""
        try:
            while self.printer is not None and self.player is not None:
                self.printer.print_due(self.player.position_s())
                await asyncio.sleep(0.01)
        except BrokenPipeError:  # raised again by finish(), where the caller handles it
            self.broken_pipe = True

    async def finish(self) -> None:
        if self.broken_pipe:
            raise BrokenPipeError()
        if self.player is not None:
            self.player.end_input()
            while not self.player.finished:
                if self.printer is not None:
                    self.printer.print_due(self.player.position_s())
                await asyncio.sleep(0.01)
            if self.printer is not None:
                self.printer.print_due(None)
            self.player.close()
            self.console.end()
            return
        from kokorod.audio.wav import write_wav

        audio = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.float32)
        write_wav(self.args.output, audio, self.sample_rate)
        self.console.end()
        print(f"wrote {self.args.output} ({audio.shape[0] / self.sample_rate:.2f} s, {len(self.words)} words)")
        for text, start, end in self.words:
            print(word_line(text, start, end))
        sys.stdout.flush()

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()


class _TimedWord:
    __slots__ = ("text", "start", "end")

    def __init__(self, text: str, start: float, end: float) -> None:
        self.text, self.start, self.end = text, start, end
