"""A voice-assistant loop on kokorod: speak an LLM's answer while it is being
generated, and let the user interrupt it (barge-in).

    kokorod serve &                          # or: make run
    python clients/examples/voice_assistant.py [--output-dir wavs/] [--url URL] [--token T]

A fake LLM streams tokens at ~20 tokens/s; each token goes to the daemon as soon
as it exists, and the daemon starts talking at the first clause. A few seconds
in, the "user" asks something else: the new answer is a new utterance in
`interrupt` mode, so the daemon cancels the old one (we see its `cancelled`
event, reason `barge_in`), we drop the audio we had queued for it, stop the old
generation, and the new answer is spoken.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from pathlib import Path
from typing import AsyncIterator

import numpy as np

from kokorod.audio.wav import write_wav
from kokorod.client import (
    DEFAULT_URL, Audio, Cancelled, Chunk, Done, Error, KokorodClient, WordEvent, audio_of, connect,
)
from kokorod.audio.playback import StreamingPlayer

ANSWERS = {
    "Tell me about the Moon.": (
        "The Moon is Earth's only natural satellite. It is about a quarter of Earth's width, "
        "and it takes roughly twenty seven days to orbit us. Its surface is covered in craters, "
        "mountains and wide dark plains that early astronomers mistook for seas."
    ),
    "Actually, what time is sunset?": "Sunset today is at six forty two in the evening. Enjoy the view!",
}


async def fake_llm(answer: str, tokens_per_s: float = 20.0) -> AsyncIterator[str]:
    """Yields word-sized tokens (with their spaces) like a streaming LLM API."""
    for token in re.findall(r"\S+\s*", answer):
        await asyncio.sleep(1 / tokens_per_s)
        yield token


async def assistant_turn(client: KokorodClient, turn: int, question: str, player: StreamingPlayer | None,
                         output_dir: Path | None) -> None:
    uid = f"turn-{turn}"
    print(f"[user] {question}")
    events = client.stream(uid)  # subscribe first; speak() then sends tokens as the LLM yields them
    # mode="interrupt" (the default): this new utterance cancels whatever is speaking.
    speaking = asyncio.create_task(client.speak(fake_llm(ANSWERS[question]), utterance=uid, mode="interrupt"))
    audio: list[np.ndarray] = []
    async for event in events:
        if isinstance(event, Chunk):
            print(f"  [{uid}] chunk {event.index} at {event.start:.2f}s: {event.text.strip()!r}")
        elif isinstance(event, WordEvent):
            print(f"  [{uid}]   word {event.start:6.2f}s {event.text}")
        elif isinstance(event, Audio):
            audio.append(audio_of(event))
            if player is not None:
                player.feed(audio[-1])
        elif isinstance(event, Cancelled):
            heard_s = sum(a.size for a in audio) / client.ready.sample_rate
            print(f"  [{uid}] cancelled ({event.reason}) after {heard_s:.2f}s of audio")
            if player is not None:
                player.clear()   # the daemon stopped sending; drop what we still had queued
            speaking.cancel()    # and stop generating an answer nobody will hear
        elif isinstance(event, Done):
            print(f"  [{uid}] done: {event.duration:.2f}s of audio")
        elif isinstance(event, Error):
            print(f"  [{uid}] error {event.code}: {event.message}")
    (outcome,) = await asyncio.gather(speaking, return_exceptions=True)
    if isinstance(outcome, Exception):  # e.g. the connection dropped while sending
        raise outcome
    if output_dir is not None and audio:
        path = output_dir / f"{uid}.wav"
        write_wav(path, np.concatenate(audio), client.ready.sample_rate)
        print(f"  [{uid}] wrote {path}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("KOKOROD_URL", DEFAULT_URL))
    parser.add_argument("--token", default=os.environ.get("KOKOROD_TOKEN"))
    parser.add_argument("--output-dir", type=Path, default=None, help="save each turn's audio as a WAV")
    parser.add_argument("--barge-in-after", type=float, default=4.0, help="seconds before the user interrupts")
    args = parser.parse_args()
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)

    async with connect(args.url, token=args.token) as client:
        print(f"connected: kokorod {client.ready.version}, voice {client.ready.voice}")
        player = StreamingPlayer.open(client.ready.sample_rate)  # None without a sound device
        questions = list(ANSWERS)
        first = asyncio.create_task(assistant_turn(client, 1, questions[0], player, args.output_dir))
        await asyncio.sleep(args.barge_in_after)  # ... the user starts talking over the answer
        await assistant_turn(client, 2, questions[1], player, args.output_dir)
        await first
        if player is not None:
            player.end_input()
            while not player.finished:
                await asyncio.sleep(0.05)
            player.close()


if __name__ == "__main__":
    asyncio.run(main())
