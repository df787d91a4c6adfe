"""kokorod as the TTS of a pipecat pipeline: an LLM's tokens in, speech and
word-timed text frames out, and a barge-in that cancels the answer mid-sentence.

    pip install 'kokorod[pipecat]'
    kokorod serve &                                  # or: make run
    python clients/examples/pipecat_kokorod.py [--out answer.wav] [--play] [--url URL] [--token T]

The pipeline is ``FakeLLM -> KokorodTTSService -> Listener``. The fake LLM streams
an answer at ~20 tokens/s; kokorod starts talking at its first clause. Two
seconds of audio in, the "user" interrupts: the service cancels that utterance on
the daemon, and a short second answer is spoken. The Listener prints each word
frame at its time and writes everything heard to a WAV. ``--play`` also plays it
through pipecat's local audio transport (needs ``pip install 'pipecat-ai[local]'``,
i.e. PyAudio); without a sound device, the WAV is the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    EndFrame, Frame, InterruptionFrame, LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame,
    TTSAudioRawFrame, TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from kokorod.audio.wav import write_wav
from kokorod.integrations.pipecat import DEFAULT_URL, KokorodTTSService

RATE_HZ = 24000
FIRST = ("The Moon is Earth's only natural satellite. It is about a quarter of Earth's width, and it takes "
         "roughly twenty seven days to orbit us. Its surface is covered in craters and wide dark plains.")
SECOND = "Sure, sunset today is at six forty two in the evening."


class Listener(FrameProcessor):
    """Stands in for a transport: keeps the audio, prints words at their times."""

    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self.pcm = bytearray()
        self.samples_by_context: dict[str, int] = {}
        self.first_audio_ns: dict[str, int] = {}
        self.heard_enough = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.pcm += frame.audio
            ctx = frame.context_id or ""
            self.samples_by_context[ctx] = self.samples_by_context.get(ctx, 0) + len(frame.audio) // 2
            if self.samples_by_context[ctx] >= 2 * frame.sample_rate:
                self.heard_enough.set()
        if isinstance(frame, (TTSAudioRawFrame, TTSTextFrame)) and frame.context_id:
            # pipecat starts a context's word clock at its first audio (the words
            # before it are pushed first), so this is that clock's zero.
            self.first_audio_ns.setdefault(frame.context_id, self.get_clock().get_time())
        if isinstance(frame, TTSTextFrame) and frame.pts and frame.context_id:
            # pts is when the transport should show the word: first audio + the word's start.
            start_s = max(0.0, (frame.pts - self.first_audio_ns[frame.context_id]) / 1e9)
            print(f"  [{frame.context_id[:8]}] {start_s:6.2f}s {frame.text}")
        elif isinstance(frame, InterruptionFrame):
            print("  -- interrupted --")
        await self.push_frame(frame, direction)


async def llm_answer(worker: PipelineWorker, text: str, tokens_per_s: float = 20.0) -> None:
    """What an LLM service pushes: start, tokens (with their leading spaces), end."""
    await worker.queue_frame(LLMFullResponseStartFrame())
    for token in re.findall(r"\s*\S+", text):
        await worker.queue_frame(LLMTextFrame(token))
        await asyncio.sleep(1 / tokens_per_s)
    await worker.queue_frame(LLMFullResponseEndFrame())


def output_transport() -> Any:
    from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams

    return LocalAudioTransport(LocalAudioTransportParams(audio_out_enabled=True)).output()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("KOKOROD_URL", DEFAULT_URL))
    ap.add_argument("--token", default=os.environ.get("KOKOROD_TOKEN"))
    ap.add_argument("--voice", default="af_heart")
    ap.add_argument("--out", default="pipecat_kokorod.wav", help="WAV of everything the listener received")
    ap.add_argument("--play", action="store_true", help="also play through pipecat's local audio transport")
    args = ap.parse_args()

    tts = KokorodTTSService(url=args.url, token=args.token,
                            settings=KokorodTTSService.Settings(voice=args.voice))
    listener = Listener()
    stages: list[FrameProcessor] = [tts, listener]
    if args.play:
        try:
            stages.append(output_transport())
        except Exception as e:  # ImportError without PyAudio; OSError without a device
            print(f"not playing ({e}); writing {args.out} only")
    worker = PipelineWorker(Pipeline(stages), params=PipelineParams(audio_out_sample_rate=RATE_HZ),
                            cancel_on_idle_timeout=False)

    @tts.event_handler("on_connection_error")
    async def _no_daemon(_tts: Any, error: str) -> None:
        print(f"kokorod at {args.url}: {error} (is `kokorod serve` running?)")

    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker: Any, _frame: Any) -> None:
        started.set()

    async def conversation() -> None:
        await started.wait()  # frames queued before the StartFrame would be dropped
        if tts.ready is None:  # it connects at setup: no daemon there
            await worker.cancel()
            return
        print(f"connected: kokorod {tts.ready.version}, voice {args.voice}")
        print("[user] Tell me about the Moon.")
        answer = asyncio.create_task(llm_answer(worker, FIRST))
        try:
            await asyncio.wait_for(listener.heard_enough.wait(), timeout=120)
        except TimeoutError:
            print("no audio came back; giving up")
        answer.cancel()  # the LLM stops generating the old answer, as a real pipeline would
        print("[user] Actually, what time is sunset?")
        await worker.queue_frame(InterruptionFrame())
        await llm_answer(worker, SECOND)
        await worker.queue_frame(EndFrame())  # ends once the second answer has played

    runner = WorkerRunner(handle_sigint=True)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), conversation())
    if not listener.pcm:
        raise SystemExit(1)
    audio = np.frombuffer(bytes(listener.pcm), dtype="<i2").astype(np.float32) / 32768.0
    write_wav(args.out, audio, RATE_HZ)
    print(f"wrote {args.out}: {len(audio) / RATE_HZ:.2f} s of audio")


if __name__ == "__main__":
    asyncio.run(main())
