"""Playing speech on the default output device, with words printed as they are heard.

``sounddevice`` (the ``audio`` extra) is optional, and PortAudio may be missing
or have no output device (CI, containers, SSH): then nothing plays and callers
fall back to writing a WAV file. Both entry points report that by returning
False/None instead of raising.

``StreamingPlayer`` takes audio as it arrives (from the daemon, or from
in-process synthesis) and plays it gaplessly through a callback stream; the
callback counts the samples it hands to the device, so "what is audible now"
comes from the stream clock, not from when frames happened to arrive.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, TextIO

import numpy as np

from kokorod.model_facts import SAMPLE_RATE
from kokorod.speech.chunk import Word


def _sounddevice() -> Any | None:
    """The sounddevice module when it loads and an output device exists."""
    try:
        import sounddevice as sd  # raises OSError when the PortAudio library is missing
    except (ImportError, OSError):
        return None
    try:
        sd.query_devices(kind="output")  # raises when there is no default output device
    except (OSError, ValueError, sd.PortAudioError):
        return None
    return sd


def word_line(text: str, start_s: float, end_s: float) -> str:
    """The `start end text` line `say` prints for every word."""
    return f"{start_s:8.3f} {end_s:8.3f}  {text}"


def _seconds(word: Any) -> tuple[float, float]:
    # kokorod.speech.chunk.Word counts 24 kHz samples; protocol WordEvents carry seconds.
    if isinstance(word, Word):
        return word.start / SAMPLE_RATE, word.end / SAMPLE_RATE
    return float(word.start), float(word.end)


class WordPrinter:
    """Holds words until playback reaches their start, then prints them."""

    def __init__(self, out: TextIO | None = None, before: Callable[[], None] | None = None) -> None:
        self._out = out
        self._before = before  # e.g. clear a status line sharing the terminal
        self._heap: list[tuple[float, int, str]] = []
        self._n = 0

    def add(self, word: Any) -> None:
        start, end = _seconds(word)
        heapq.heappush(self._heap, (start, self._n, word_line(word.text, start, end)))
        self._n += 1

    def print_due(self, position_s: float | None) -> None:
        """Print the words that start by ``position_s`` (None: all of them)."""
        out = self._out or sys.stdout
        printed = False
        while self._heap and (position_s is None or self._heap[0][0] <= position_s):
            if self._before is not None and not printed:
                self._before()
            print(heapq.heappop(self._heap)[2], file=out)
            printed = True
        if printed:
            out.flush()


class StreamingPlayer:
    """Gapless playback of audio fed piece by piece. Use ``open()``: it returns
    None when there is nothing to play on."""

    def __init__(self, sd: Any, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._lock = threading.Lock()
        self._pieces: deque[np.ndarray] = deque()
        self._head = 0           # read position inside _pieces[0]
        self._fed = 0            # samples fed so far
        self._handed = 0         # samples handed to the device so far
        self._last_handed = 0    # ... before the latest callback
        self._last_dac = 0.0     # monotonic time the latest callback's first sample sounds
        self._ended_input = False
        self._position = 0.0
        self._stream = sd.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", callback=self._callback)
        self._stream.start()

    @classmethod
    def open(cls, sample_rate: int) -> "StreamingPlayer | None":
        sd = _sounddevice()
        if sd is None:
            return None
        try:
            return cls(sd, sample_rate)
        except (OSError, ValueError, sd.PortAudioError):
            return None

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic()
        # outputBufferDacTime is on the stream's own clock; only its distance
        # from currentTime is meaningful here. Some backends report 0: assume
        # the nominal latency then.
        try:
            ahead = float(time_info.outputBufferDacTime) - float(time_info.currentTime)
        except (AttributeError, TypeError):
            ahead = -1.0
        if not 0.0 <= ahead < 2.0:
            ahead = float(getattr(self._stream, "latency", 0.0) or 0.0) if hasattr(self, "_stream") else 0.0
        out = outdata[:, 0]
        n = 0
        with self._lock:
            while n < frames and self._pieces:
                piece = self._pieces[0]
                take = min(piece.shape[0] - self._head, frames - n)
                out[n:n + take] = piece[self._head:self._head + take]
                n += take
                self._head += take
                if self._head >= piece.shape[0]:
                    self._pieces.popleft()
                    self._head = 0
            if n:
                # Anchor the clock only on callbacks that carry audio: silent ones
                # (underrun, or the end) would pin the position one latency behind
                # the last sample forever.
                self._last_handed = self._handed
                self._handed += n
                self._last_dac = now + ahead
        out[n:] = 0.0  # underrun or end: silence, and the clock stops with the audio

    def feed(self, audio: np.ndarray) -> None:
        """Queue float32 mono samples at ``sample_rate``; never blocks."""
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        if samples.shape[0]:
            with self._lock:
                self._pieces.append(samples)
                self._fed += samples.shape[0]

    def end_input(self) -> None:
        self._ended_input = True

    def position_s(self) -> float:
        """Seconds of the fed audio that have been heard by now (monotonic)."""
        with self._lock:
            since = (time.monotonic() - self._last_dac) * self.sample_rate
            pos = min(self._handed, self._last_handed + since)
        self._position = max(self._position, pos / self.sample_rate)
        return self._position

    @property
    def finished(self) -> bool:
        """All fed audio has been heard and no more will come."""
        return self._ended_input and self.position_s() * self.sample_rate >= self._fed - 1

    def wait(self, printer: WordPrinter | None = None, poll_s: float = 0.01) -> None:
        """Block until everything fed has been heard, printing words on the way."""
        while not self.finished:
            if printer is not None:
                printer.print_due(self.position_s())
            time.sleep(poll_s)
        if printer is not None:
            printer.print_due(None)

    def clear(self) -> None:
        """Drop what is queued but not yet heard (barge-in); the device stays open
        for what is fed next."""
        with self._lock:
            self._pieces.clear()
            self._head = 0
            self._fed = self._handed  # nothing left to wait for

    def stop(self) -> None:
        """Silence now and release the device."""
        self.clear()
        self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        try:
            (self._stream.abort if abort else self._stream.stop)()
            self._stream.close()
        except Exception:  # closing a device that vanished must not mask the real outcome
            pass


def play_or_none(audio: np.ndarray, sample_rate: int, words: Iterable[Any] | None) -> bool:
    """Play ``audio`` to its end; False (nothing played) when there is no device.
    With ``words``, print each (`start end text`) when it begins to sound."""
    player = StreamingPlayer.open(sample_rate)
    if player is None:
        return False
    printer = None
    if words is not None:
        printer = WordPrinter()
        for word in words:
            printer.add(word)
    try:
        player.feed(audio)
        player.end_input()
        player.wait(printer)
    except BaseException:
        player.stop()  # Ctrl-C: stop the sound at once, not at the end of the buffer
        raise
    player.close()
    return True
