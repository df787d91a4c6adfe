"""``say`` and ``pipe`` through a running daemon, and ``pipe``'s in-process fallback.

Both commands behave the same whichever side synthesizes: audio plays as it
arrives (or goes to a WAV with -o, or when there is no sound device), words
print as `start end text` lines, Ctrl-C stops the speech at once and exits 130.
The one difference a user can see is the status line on stderr (TTY only).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import os
import sys
import threading
import time
from typing import Any, AsyncIterator, Awaitable

import numpy as np

from kokorod.errors import InputError, KokorodError
from kokorod.playback import StreamingPlayer, WordPrinter, word_line

TOKEN_ENV = "KOKOROD_TOKEN"
_READ_BYTES = 4096  # os.read returns whatever is there, up to this: partial lines go out at once


class Console:
    """A one-line status on stderr when it is a terminal; silent otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self._err = stream or sys.stderr
        self.enabled = bool(getattr(self._err, "isatty", lambda: False)())
        self._shown = ""

    def status(self, text: str) -> None:
        if self.enabled:
            self._shown = "kokorod: " + text
            self._err.write("\r\x1b[K" + self._shown)
            self._err.flush()

    def clear(self) -> None:
        """Blank the line so other output (words on the same terminal) starts clean."""
        if self.enabled and self._shown:
            self._err.write("\r\x1b[K")
            self._err.flush()
            self._shown = ""

    def end(self) -> None:
        if self.enabled and self._shown:
            self._err.write("\n")
            self._err.flush()
            self._shown = ""


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


def _token(args: argparse.Namespace) -> str | None:
    return getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None


async def _interruptible(work: Awaitable[int], on_interrupt: Any, console: Console) -> int:
    """Run ``work``; on Ctrl-C (asyncio.run cancels the main task) clean up, then
    let the cancellation go on: asyncio.run turns it into KeyboardInterrupt, which
    the CLI reports as exit 130. A closed stdout ends quietly."""
    try:
        return await work
    except asyncio.CancelledError:
        await on_interrupt()
        console.end()
        raise
    except BrokenPipeError:
        await on_interrupt()
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _first_of(*tasks: "asyncio.Task[Any]") -> None:
    """Wait for all tasks; the first failure cancels the others and is raised."""
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # nothing outlives the caller
        raise
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


# --------------------------------------------------------------------------
# Through the daemon


async def _remote(args: argparse.Namespace, fragments: Any, default_wav: str, console: Console) -> int:
    """Raises DaemonUnavailable (before anything is read or played) when no daemon answers."""
    from kokorod.client import Audio, Cancelled, Error, KokorodClient, KokorodServerError, WordEvent, audio_of
    from kokorod.protocol.messages import Warning

    client = await KokorodClient.connect(args.url, token=_token(args))
    uid: str | None = None
    sink: Sink | None = None

    async def interrupted() -> None:
        if sink is not None:
            sink.stop()
        try:  # tell the daemon, so it stops synthesizing now rather than when it notices the socket
            if uid is not None:
                await asyncio.wait_for(client.cancel(uid), 2)
            await asyncio.wait_for(client.close(), 2)
        except (KokorodError, asyncio.TimeoutError):
            pass

    async def work() -> int:
        nonlocal uid, sink
        console.status(f"connected to {args.url}")
        sink = Sink(args, client.ready.sample_rate, default_wav, console)
        uid = "say-" + os.urandom(6).hex()
        started = time.monotonic()
        stream = client.stream(uid)  # before speaking: buffers from the first event on
        sender = asyncio.create_task(client.speak(fragments, utterance=uid, voice=args.voice, speed=args.speed,
                                                  lang=args.lang))

        async def consume() -> None:
            shown = -1  # after a resume, a word cut mid-audio comes again with its index: show it once
            async for event in stream:
                if isinstance(event, Audio):
                    if sink.first_audio is None:
                        latency_ms = (time.monotonic() - _t0(fragments, started)) * 1000
                        console.status(f"speaking (first audio after {latency_ms:.0f} ms)")
                    sink.audio(audio_of(event))
                elif isinstance(event, WordEvent):
                    if event.index > shown:
                        shown = event.index
                        sink.word(event.text, event.start, event.end)
                elif isinstance(event, Warning):
                    _report_warnings(console, [event])
                elif isinstance(event, Error):
                    raise KokorodServerError(event)
                elif isinstance(event, Cancelled):
                    raise KokorodError(f"the daemon stopped the speech ({event.reason})")

        clock = asyncio.create_task(sink.clock())
        try:
            await _first_of(sender, asyncio.create_task(consume()))
            await sink.finish()
        except KokorodError:
            sink.stop()
            raise
        finally:
            clock.cancel()
            await asyncio.gather(clock, return_exceptions=True)
        await client.close()
        return 0

    try:
        return await _interruptible(work(), interrupted, console)
    finally:
        await client.close()


def _t0(fragments: Any, default: float) -> float:
    """Latency counts from the first text, not from when we started waiting for stdin."""
    return getattr(fragments, "first_text_at", None) or default


def try_remote_say(args: argparse.Namespace) -> int | None:
    """Speak ``args.text`` through the daemon; None when no daemon answers."""
    from kokorod.client import DaemonUnavailable

    console = Console()
    try:
        return asyncio.run(_remote(args, args.text, "kokorod-say.wav", console))
    except DaemonUnavailable:
        return None
    finally:
        console.end()


# --------------------------------------------------------------------------
# pipe


class StdinText:
    """stdin as text fragments, as soon as they are written (no waiting for a
    newline or EOF). A daemon thread does the blocking reads, so Ctrl-C never
    waits on it; pieces that piled up meanwhile are joined into one."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.first_text_at: float | None = None
        threading.Thread(target=self._read, name="kokorod-stdin", daemon=True).start()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except OSError:
                data = b""
            text = decoder.decode(data, final=not data)
            try:
                if text:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, text)
                if not data:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
                    return
            except RuntimeError:  # the loop is gone (interrupted): nobody listens any more
                return

    async def __aiter__(self) -> AsyncIterator[str]:
        started = False
        held = ""  # leading whitespace: not worth an utterance on its own
        while True:
            piece = await self._queue.get()
            eof = piece is None
            parts = [piece] if piece is not None else []
            while not eof and not self._queue.empty():
                more = self._queue.get_nowait()
                eof = more is None
                if more is not None:
                    parts.append(more)
            text = "".join(parts)
            if not started:
                held += text
                if held.strip():
                    started, text, held = True, held, ""
                    self.first_text_at = time.monotonic()
            if started and text:
                yield text
            if eof:
                break
        if not started:
            raise InputError("there was no text on stdin", 'pipe some in, e.g. echo "Hello" | kokorod pipe')


def run_remote_pipe(args: argparse.Namespace) -> int:
    """``kokorod pipe``: through the daemon when one answers, else in-process."""
    from kokorod.client import DaemonUnavailable

    console = Console()

    async def main() -> int:
        text = StdinText()  # one reader for either path: stdin cannot be read twice
        if not args.local:
            try:
                return await _remote(args, text, "kokorod-pipe.wav", console)
            except DaemonUnavailable:
                pass
        return await _local_pipe(args, text, console)

    try:
        return asyncio.run(main())
    finally:
        console.end()


def _report_warnings(console: Console, warnings: Any) -> None:
    """As ``say --local`` does: every piece of text not spoken (or a markup
    note), on stderr, from the daemon's ``warning`` events or the in-process
    pipeline's ``Warn`` steps alike."""
    from kokorod.speech.local import warning_line

    for warn in warnings:
        console.clear()
        print(warning_line(warn.code, warn.text, warn.message), file=sys.stderr)


async def _local_pipe(args: argparse.Namespace, text: StdinText, console: Console) -> int:
    from collections import deque

    from kokorod.engine.base import SAMPLE_RATE, CancelToken
    from kokorod.runtime import EngineOptions, build_synthesizer
    from kokorod.speech.local import LocalSpeech, language_for
    from kokorod.speech.plan import is_last
    from kokorod.text import languages
    from kokorod.text.per_language import segmenter_for
    from kokorod.text.segmenter import Segment

    console.status("no daemon answers; loading the model in-process")
    lang = languages.resolve(args.lang) if args.lang else languages.for_voice(args.voice or "af_heart")
    token = CancelToken()
    # Segments not yet spoken; a deque, not a queue: whether a segment is the
    # last sound depends on what is queued after it (kokorod.speech.plan.is_last).
    segments: deque[Segment] = deque()
    arrived = asyncio.Event()
    eof = False

    async def read() -> None:
        nonlocal eof
        segmenter = segmenter_for(lang)
        async for piece in text:
            segments.extend(segmenter.feed(piece))
            arrived.set()
        segments.extend(segmenter.flush())
        eof = True
        arrived.set()

    reader = asyncio.create_task(read())
    sink: Sink | None = None

    async def interrupted() -> None:
        token.cancel()  # stops a synthesis already running on the worker thread
        reader.cancel()
        if sink is not None:
            sink.stop()

    async def work() -> int:
        nonlocal sink
        # stdin is read while the model loads; empty stdin fails without waiting for it.
        loading = asyncio.create_task(asyncio.to_thread(build_synthesizer, EngineOptions.from_args(args)))
        await asyncio.wait({loading, reader}, return_when=asyncio.FIRST_EXCEPTION)
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
        synth = await loading
        loaded_at = time.monotonic()
        voice = args.voice or "af_heart"
        synth.check_voice(voice)
        speech = LocalSpeech(synth, voice=voice, speed=args.speed, lang=language_for(synth, voice, args.lang),
                             token=token, keep_audio=False)
        sink = Sink(args, SAMPLE_RATE, "kokorod-pipe.wav", console)
        console.status("in-process (no daemon)" + ("; waiting for text" if text.first_text_at is None else ""))

        async def synthesize() -> None:
            while True:
                if not segments:
                    if eof:
                        return
                    arrived.clear()
                    await arrived.wait()
                    continue
                # The same pipeline as `say` and the daemon: pauses, and text not spoken is said.
                segment = segments.popleft()
                placed = await asyncio.to_thread(speech.speak, segment, last=is_last(eof, segments))
                _report_warnings(console, placed.warnings)
                if sink.first_audio is None and placed.audio.shape[0]:  # from the text, or the model being ready
                    since = max(_t0(text, loaded_at), loaded_at)
                    latency_ms = (time.monotonic() - since) * 1000
                    console.status(f"speaking in-process (first audio after {latency_ms:.0f} ms)")
                for w in placed.words:
                    sink.word(w.text, w.start / SAMPLE_RATE, w.end / SAMPLE_RATE)
                if placed.audio.shape[0]:
                    sink.audio(placed.audio)

        clock = asyncio.create_task(sink.clock())
        try:
            await _first_of(reader, asyncio.create_task(synthesize()))
            await sink.finish()
        finally:
            clock.cancel()
            await asyncio.gather(clock, return_exceptions=True)
        return 0

    try:
        return await _interruptible(work(), interrupted, console)
    finally:
        reader.cancel()
