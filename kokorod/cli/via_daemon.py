"""``say`` and ``pipe`` through a running daemon, as a client of its WebSocket
protocol (kokorod.client).

Both commands behave the same whichever side synthesizes: audio plays as it
arrives (or goes to a WAV with -o, or when there is no sound device), words
print as `start end text` lines, Ctrl-C stops the speech at once (the daemon is
told to cancel) and exits 130. The one difference a user can see is the status
line on stderr (TTY only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from kokorod.cli.async_run import first_of, first_text_at, interruptible
from kokorod.cli.console import Console, report_warnings
from kokorod.cli.speech_sink import Sink
from kokorod.errors import KokorodError

TOKEN_ENV = "KOKOROD_TOKEN"


def _token(args: argparse.Namespace) -> str | None:
    return getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None


async def speak_via_daemon(args: argparse.Namespace, fragments: Any, default_wav: str, console: Console) -> int:
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
                        latency_ms = (time.monotonic() - first_text_at(fragments, started)) * 1000
                        console.status(f"speaking (first audio after {latency_ms:.0f} ms)")
                    sink.audio(audio_of(event))
                elif isinstance(event, WordEvent):
                    if event.index > shown:
                        shown = event.index
                        sink.word(event.text, event.start, event.end)
                elif isinstance(event, Warning):
                    report_warnings(console, [event])
                elif isinstance(event, Error):
                    raise KokorodServerError(event)
                elif isinstance(event, Cancelled):
                    raise KokorodError(f"the daemon stopped the speech ({event.reason})")

        clock = asyncio.create_task(sink.clock())
        try:
            await first_of(sender, asyncio.create_task(consume()))
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
        return await interruptible(work(), interrupted, console)
    finally:
        await client.close()


def try_remote_say(args: argparse.Namespace) -> int | None:
    """Speak ``args.text`` through the daemon; None when no daemon answers."""
    from kokorod.client import DaemonUnavailable

    console = Console()
    try:
        return asyncio.run(speak_via_daemon(args, args.text, "kokorod-say.wav", console))
    except DaemonUnavailable:
        return None
    finally:
        console.end()
