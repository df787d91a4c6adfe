"""``kokorod pipe`` in this process, when no daemon answers (or with --local):
stdin is segmented as it arrives and each segment spoken through the same
pipeline as ``say`` and the daemon, on a worker thread the event loop never
waits on; Ctrl-C cancels the synthesis already running."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque

from kokorod.cli.async_run import first_of, first_text_at, interruptible
from kokorod.cli.console import Console, report_warnings
from kokorod.cli.speech_sink import Sink
from kokorod.cli.stdin_text import StdinText


async def local_pipe(args: argparse.Namespace, text: StdinText, console: Console) -> int:
    from kokorod.engine.base import SAMPLE_RATE, CancelToken
    from kokorod.speech.build import EngineOptions, build_synthesizer
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
                report_warnings(console, placed.warnings)
                if sink.first_audio is None and placed.audio.shape[0]:  # from the text, or the model being ready
                    since = max(first_text_at(text, loaded_at), loaded_at)
                    latency_ms = (time.monotonic() - since) * 1000
                    console.status(f"speaking in-process (first audio after {latency_ms:.0f} ms)")
                for w in placed.words:
                    sink.word(w.text, w.start / SAMPLE_RATE, w.end / SAMPLE_RATE)
                if placed.audio.shape[0]:
                    sink.audio(placed.audio)

        clock = asyncio.create_task(sink.clock())
        try:
            await first_of(reader, asyncio.create_task(synthesize()))
            await sink.finish()
        finally:
            clock.cancel()
            await asyncio.gather(clock, return_exceptions=True)
        return 0

    try:
        return await interruptible(work(), interrupted, console)
    finally:
        reader.cancel()
