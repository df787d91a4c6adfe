"""kokorod as a LiveKit Agents TTS, driven the way AgentSession drives it, with
no LiveKit server: an LLM's tokens go in with push_text() as they are
generated, audio frames and timed words come out, and the result is a WAV.

    pip install 'kokorod[livekit]'
    kokorod serve &                                     # or: make run
    python clients/examples/livekit_kokorod.py -o answer.wav
    python clients/examples/livekit_kokorod.py --barge-in-after-s 2   # aclose() mid-sentence

In an agent it is one line: ``AgentSession(tts=kokorod.integrations.livekit.TTS(), ...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from pathlib import Path
from typing import AsyncIterator

import numpy as np
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.utils import is_given

from kokorod.audio.wav import write_wav
from kokorod.client import DEFAULT_URL
from kokorod.integrations.livekit import TTS

ANSWER = ("The Moon is Earth's only natural satellite. It takes roughly twenty seven days to orbit us, "
          "and its surface is covered in craters, mountains and wide dark plains")  # no final full stop: end_input says it


async def fake_llm(text: str, tokens_per_s: float = 20.0) -> AsyncIterator[str]:
    """Sub-word tokens like a real LLM's ("sat", "ellite"), with their spaces."""
    for token in re.findall(r"\s*\S{1,4}", text):
        await asyncio.sleep(1 / tokens_per_s)
        yield token


async def main(url: str, token: str | None, voice: str, out: Path, barge_in_after_s: float | None) -> None:
    tts = TTS(url=url, token=token, voice=voice)
    tts.prewarm()  # connect now rather than on the first token
    stream = tts.stream()

    async def feed() -> None:
        async for piece in fake_llm(ANSWER):
            stream.push_text(piece)
        stream.end_input()  # the LLM is done: speak the rest, even without a full stop

    feeder = asyncio.create_task(feed())
    frames: list[np.ndarray] = []
    started = time.perf_counter()
    audio_s = 0.0
    try:
        async for ev in stream:
            if not frames:
                print(f"first audio after {time.perf_counter() - started:.2f} s")
            frames.append(np.frombuffer(ev.frame.data, dtype=np.int16))
            audio_s += ev.frame.duration
            for word in ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, []):
                if is_given(word.start_time):
                    print(f"  {word.start_time:6.2f}-{word.end_time:6.2f}  {str(word).strip()}")
            if ev.is_final:
                print(f"segment {ev.segment_id} complete")
            if barge_in_after_s is not None and audio_s >= barge_in_after_s:
                print(f"barge-in after {audio_s:.2f} s of audio: aclose() cancels the utterance on the daemon")
                break
    finally:
        await stream.aclose()
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await tts.aclose()
    pcm = np.concatenate(frames).astype(np.float32) / 32768 if frames else np.zeros(0, np.float32)
    write_wav(out, pcm, tts.sample_rate)
    print(f"wrote {out}: {pcm.size / tts.sample_rate:.2f} s at {tts.sample_rate} Hz")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("KOKOROD_URL", DEFAULT_URL))
    parser.add_argument("--token", default=os.environ.get("KOKOROD_TOKEN"))
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("-o", "--output", type=Path, default=Path("livekit_kokorod.wav"))
    parser.add_argument("--barge-in-after-s", type=float, default=None,
                        help="stop (aclose) after this much audio, as an interrupting user would")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.token, args.voice, args.output, args.barge_in_after_s))
