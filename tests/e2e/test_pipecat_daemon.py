"""KokorodTTSService in a real pipecat pipeline against a real daemon: the audio
that comes out is intelligible, the word frames' times match what a recogniser
hears, an interruption stops the audio within 100 ms of stream time and cancels
the utterance on the daemon, a context whose connection drops (or whose daemon
dies) goes on where the listener was on a new connection, and one refused as
overloaded is retried until it is spoken."""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (  # noqa: E402
    EndFrame, Frame, InterruptionFrame, LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame,
    TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame, TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from support.asr import median_start_error_s, normalize_words, transcribe, word_error_rate  # noqa: E402
from support.daemon import DaemonProcess, Peer  # noqa: E402
from kokorod.client.failover import FailoverPolicy  # noqa: E402
from kokorod.integrations.pipecat import KokorodTTSService  # noqa: E402
from kokorod.protocol.messages import Audio, Cancel, Speak  # noqa: E402

pytestmark = pytest.mark.slow

RATE_HZ = 24000
TOKEN = "pipecat-test-3b9e41"
SENTENCES = ("The little boat sailed across the quiet lake while the children watched from the shore. "
             "Later that evening, everyone gathered by the fire to share stories about the day.")
LONG = ("The museum opens at ten in the morning, and the guided tours start every half hour after that. "
        "Tickets cost twelve dollars for adults, and children under five get in for free. ") * 6
STORY = ("The old lighthouse keeper climbed the winding stairs every evening before sunset. "
         "He polished the great lens until it sparkled, then lit the lamp and watched the ships pass. "
         "One stormy night a small fishing boat lost its way among the rocks near the harbour. "
         "The keeper signalled with his lantern, and the sailors steered toward the calm water. "
         "In the morning the whole village came to thank him with bread, cheese and fresh apples.")
WAIT_S = 180.0


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess("--token", TOKEN, "--stream-utilisation", "inf")
    try:
        yield d
    finally:
        assert d.stop() == 0, d.log()[-3000:]


class Recorder(FrameProcessor):
    """The end of the pipeline: keeps every downstream frame. Direct mode, so a
    frame is seen the moment the service pushes it (word PTS are set then too)."""

    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self.frames: list[Frame] = []
        self.changed = asyncio.Event()
        # context id -> clock (ns) when its word clock started: pipecat starts it on the
        # first audio, then pushes the words that came before, then that audio.
        self.word_clock_start: dict[str, int] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, (TTSAudioRawFrame, TTSTextFrame)) and frame.context_id not in self.word_clock_start:
                self.word_clock_start[frame.context_id] = self.get_clock().get_time()
            self.frames.append(frame)
            self.changed.set()
        await self.push_frame(frame, direction)

    async def until(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    def of(self, kind: type, context_id: str | None = None, since: int = 0) -> list[Any]:
        return [f for f in self.frames[since:] if isinstance(f, kind)
                and (context_id is None or getattr(f, "context_id", None) == context_id)]

    def stopped(self, context_id: str) -> bool:
        return bool(self.of(TTSStoppedFrame, context_id))

    def audio(self, context_id: str) -> np.ndarray:
        pcm = b"".join(f.audio for f in self.of(TTSAudioRawFrame, context_id))
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    def words(self, context_id: str) -> list[tuple[str, float]]:
        """(word, start in seconds on the context's audio) from the word frames' PTS."""
        base = self.word_clock_start[context_id]
        return [(f.text, (f.pts - base) / 1e9) for f in self.of(TTSTextFrame, context_id) if f.pts]


class Bot:
    def __init__(self, tts: KokorodTTSService) -> None:
        self.tts = tts
        self.out = Recorder()
        self.worker = PipelineWorker(Pipeline([tts, self.out]), params=PipelineParams(audio_out_sample_rate=RATE_HZ),
                                     cancel_on_idle_timeout=False)
        self.started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(_worker: Any, _frame: Any) -> None:
            self.started.set()

    async def push(self, *frames: Frame) -> None:
        for frame in frames:
            await self.worker.queue_frame(frame)

    async def say_as_llm(self, text: str) -> None:
        """An LLM reply, token by token (words with their leading spaces)."""
        await self.push(LLMFullResponseStartFrame())
        for token in re.findall(r"\s*\S+", text):
            await self.push(LLMTextFrame(token))
        await self.push(LLMFullResponseEndFrame())

    def contexts(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.out.of(TTSAudioRawFrame):
            seen.setdefault(f.context_id, None)
        return list(seen)


@contextlib.asynccontextmanager
async def running(url: str | list[str], **kwargs: Any) -> AsyncIterator[Bot]:
    bot = Bot(KokorodTTSService(url=url, token=TOKEN, **kwargs))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(bot.worker)
    run = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(WAIT_S):
            await bot.started.wait()
        yield bot
        await bot.push(EndFrame())
        async with asyncio.timeout(WAIT_S):
            await asyncio.shield(run)
    finally:
        if not run.done():
            await bot.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


def counter(daemon: DaemonProcess, name: str, **labels: str) -> float:
    """One sample of the daemon's /metrics (0 when it has none yet)."""
    request = urllib.request.Request(daemon.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = urllib.request.urlopen(request, timeout=10).read().decode()
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}{{{re.escape(selector)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def cancelled_total(daemon: DaemonProcess, reason: str) -> float:
    return counter(daemon, "kokorod_utterances_cancelled_total", reason=reason)


def check_heard(bot: Bot, context_id: str, reference: str) -> None:
    audio = bot.out.audio(context_id)
    text, heard = transcribe(audio, RATE_HZ)
    wer = word_error_rate(reference, text)
    words = bot.out.words(context_id)
    median, matched = median_start_error_s(words, heard)
    print(f"WER {wer:.3f}, word times off by {median * 1000:.0f} ms (median of {matched}): {text}")
    assert wer < 0.2, text
    assert matched >= len(reference.split()) // 2, (words, heard)
    assert median < 0.25
    # Every word frame lies on the audio it describes (the zero is read just after
    # pipecat's own, so a word at 0 may come out a hair negative).
    assert all(-0.01 <= start <= len(audio) / RATE_HZ for _, start in words), words


async def test_llm_tokens_are_spoken_with_word_frames(daemon: DaemonProcess) -> None:
    async with running(daemon.url) as bot:
        await bot.say_as_llm(SENTENCES)
        await bot.out.until(lambda: len(bot.contexts()) == 1 and bot.out.stopped(bot.contexts()[0]))
        ctx = bot.contexts()[0]
        check_heard(bot, ctx, SENTENCES)
        spoken = " ".join(f.text for f in bot.out.of(TTSTextFrame, ctx))
        assert word_error_rate(SENTENCES, spoken) == 0, spoken
        # The transport schedules word frames by PTS, so their order against the audio is
        # free; the context's one stop frame comes last.
        assert isinstance([f for f in bot.out.frames if getattr(f, "context_id", None) == ctx][-1], TTSStoppedFrame)
        assert len(bot.out.of(TTSStoppedFrame, ctx)) == 1


async def test_speak_frame_in_sentence_mode_at_16khz(daemon: DaemonProcess) -> None:
    """A TTSSpeakFrame, sentence aggregation, and a pipeline rate the daemon resamples to."""
    from pipecat.services.tts_service import TextAggregationMode

    async with running(daemon.url, sample_rate=16000, text_aggregation_mode=TextAggregationMode.SENTENCE) as bot:
        await bot.push(TTSSpeakFrame(SENTENCES))
        await bot.out.until(lambda: len(bot.contexts()) == 1 and bot.out.stopped(bot.contexts()[0]))
        ctx = bot.contexts()[0]
        frames = bot.out.of(TTSAudioRawFrame, ctx)
        assert {f.sample_rate for f in frames} == {16000}
        audio = np.frombuffer(b"".join(f.audio for f in frames), dtype="<i2").astype(np.float32) / 32768.0
        text, _ = transcribe(audio, 16000)
        assert word_error_rate(SENTENCES, text) < 0.2, text


async def test_interruption_stops_audio_and_cancels_the_utterance(daemon: DaemonProcess) -> None:
    before = cancelled_total(daemon, "cancel")
    async with running(daemon.url) as bot:  # 20 ms frames, the service's default
        await bot.say_as_llm(LONG)
        await bot.out.until(lambda: sum(len(f.audio) // 2 for f in bot.out.of(TTSAudioRawFrame)) >= RATE_HZ // 2)
        ctx = bot.contexts()[0]
        mark = len(bot.out.frames)
        await bot.push(InterruptionFrame())
        await bot.out.until(lambda: bool(bot.out.of(InterruptionFrame, since=mark)))
        # The daemon heard a cancel for that utterance (not a barge-in, not a disconnect).
        async with asyncio.timeout(WAIT_S):
            while (cancelled_total(daemon, "cancel") < before + 1
                   or f"utterance={ctx} outcome=cancel" not in daemon.log()):
                await asyncio.sleep(0.1)
        # Speak again: its audio proves the service works on, and bounds the wait
        # for any late audio of the interrupted context.
        await bot.push(TTSSpeakFrame("Sorry, go ahead."))
        await bot.out.until(lambda: any(c != ctx and bot.out.stopped(c) for c in bot.contexts()))
        late = sum(len(f.audio) // 2 for f in bot.out.of(TTSAudioRawFrame, ctx, since=mark))
        print(f"interrupted after {len(bot.out.audio(ctx)) / RATE_HZ:.2f} s of audio; {late} samples after it")
        assert late <= RATE_HZ // 10  # 100 ms of stream time
        assert len(bot.out.audio(ctx)) < RATE_HZ * 20  # far short of the whole text
        after = [f for f in bot.out.frames[mark:] if isinstance(f, (TTSAudioRawFrame, InterruptionFrame))]
        assert not [f for f in after[after.index(next(f for f in after if isinstance(f, InterruptionFrame))):]
                    if isinstance(f, TTSAudioRawFrame) and f.context_id == ctx]


async def test_a_fast_llm_is_paced_not_dropped() -> None:
    """Tokens far faster than the daemon takes messages: every word is still spoken."""
    d = DaemonProcess("--token", TOKEN, "--messages-per-s", "10", "--message-burst", "10")
    try:
        async with running(d.url) as bot:
            errors: list[str] = []

            @bot.tts.event_handler("on_connection_error")
            async def _error(_tts: Any, error: str) -> None:
                errors.append(error)

            await bot.say_as_llm(SENTENCES)  # ~30 tokens at once, 3x the daemon's burst
            await bot.out.until(lambda: len(bot.contexts()) == 1 and bot.out.stopped(bot.contexts()[0]))
            text, _ = transcribe(bot.out.audio(bot.contexts()[0]), RATE_HZ)
            assert word_error_rate(SENTENCES, text) < 0.2, text
            assert counter(d, "kokorod_protocol_errors_total", code="rate_limited") == 0
            assert not errors
    finally:
        assert d.stop() == 0, d.log()[-3000:]


class Cutter:
    """A TCP relay to the daemon whose connections the test can drop at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.accepted = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/stream"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def logged(daemon: DaemonProcess, text: str) -> None:
    """Wait for ``text`` in the daemon's log (its line per utterance comes as it ends)."""
    async with asyncio.timeout(WAIT_S):
        while text not in daemon.log():
            await asyncio.sleep(0.1)


def samples_of(bot: Bot, context_id: str) -> int:
    return sum(len(f.audio) // 2 for f in bot.out.of(TTSAudioRawFrame, context_id))


async def speak_until_cut(bot: Bot, text: str, cut: Callable[[], None], as_llm: bool = False) -> tuple[str, int]:
    """Speak ``text``, and ``cut`` once a second of it has arrived: (context, samples
    then). ``as_llm``: LLM tokens, the second half of them pushed after the cut."""
    tokens = re.findall(r"\s*\S+", text)
    if as_llm:
        await bot.push(LLMFullResponseStartFrame(), *[LLMTextFrame(t) for t in tokens[:len(tokens) // 2]])
    else:
        await bot.push(TTSSpeakFrame(text))
    await bot.out.until(lambda: bool(bot.contexts()) and samples_of(bot, bot.contexts()[0]) >= RATE_HZ)
    ctx = bot.contexts()[0]
    cut()
    cut_samples = samples_of(bot, ctx)
    if as_llm:  # the rest of the turn arrives while the service reconnects
        await bot.push(*[LLMTextFrame(t) for t in tokens[len(tokens) // 2:]], LLMFullResponseEndFrame())
    return ctx, cut_samples


def check_resumed(bot: Bot, ctx: str, text: str, cut_samples: int) -> None:
    """One context from start to end: each word of ``text`` once and in order in
    its word frames, their times rising across the seam, and the whole text heard."""
    assert bot.contexts() == [ctx]
    assert len(bot.out.of(TTSStoppedFrame, ctx)) == 1
    total = samples_of(bot, ctx)
    print(f"cut after {cut_samples / RATE_HZ:.2f} s of {total / RATE_HZ:.2f} s")
    assert cut_samples < total // 2  # the connection went mid-utterance, well before its end
    spoken = [f.text for f in bot.out.of(TTSTextFrame, ctx)]
    assert normalize_words(" ".join(spoken)).split() == normalize_words(text).split(), spoken
    starts = [start for _, start in bot.out.words(ctx)]
    assert len(starts) == len(spoken)
    assert all(b >= a for a, b in zip(starts, starts[1:])), starts
    # The timeline went on rather than restarting at 0: words after the seam
    # are timed after the audio that came before it.
    assert starts[-1] > cut_samples / RATE_HZ + 1.0
    heard, _ = transcribe(bot.out.audio(ctx), RATE_HZ)
    wer = word_error_rate(text, heard)
    print(f"WER {wer:.3f}: {heard}")
    assert wer <= 0.2, heard


async def test_the_context_goes_on_after_the_connection_drops_mid_turn(daemon: DaemonProcess) -> None:
    """An LLM turn whose connection drops mid-utterance, with half of its tokens still to come."""
    cutter = Cutter(daemon.port)
    url = await cutter.start()
    try:
        async with running(url) as bot:
            ctx, cut_samples = await speak_until_cut(bot, STORY, cutter.drop, as_llm=True)
            await bot.out.until(lambda: bot.out.stopped(ctx))
            assert cutter.accepted >= 2  # a new connection
            await logged(daemon, f"utterance={ctx}#1")  # under a fresh daemon-side id
            check_resumed(bot, ctx, STORY, cut_samples)
            # The service works on: the next reply is a context of its own. (Its word
            # clock starts after the last word of the first one, which this test's
            # pipeline, faster than real time, reached early: no PTS check here.)
            await bot.push(TTSSpeakFrame(SENTENCES))
            await bot.out.until(lambda: len(bot.contexts()) == 2 and bot.out.stopped(bot.contexts()[1]))
            heard, _ = transcribe(bot.out.audio(bot.contexts()[1]), RATE_HZ)
            assert word_error_rate(SENTENCES, heard) < 0.2, heard
    finally:
        await cutter.close()


async def test_a_killed_daemon_is_replaced_by_the_next_url(daemon: DaemonProcess) -> None:
    doomed = DaemonProcess("--token", TOKEN, "--stream-utilisation", "inf")
    try:
        async with running([doomed.url, daemon.url]) as bot:
            ctx, cut_samples = await speak_until_cut(bot, STORY, doomed.proc.kill)
            await bot.out.until(lambda: bot.out.stopped(ctx))
            assert bot.tts.url == daemon.url
            await logged(daemon, f"utterance={ctx}#1")
            check_resumed(bot, ctx, STORY, cut_samples)
    finally:
        doomed.stop()  # killed: its exit status is the signal's


async def test_overloaded_is_retried_on_a_new_connection_until_spoken() -> None:
    """One stream at a time, held by another client: the context is refused, retried
    with backoff on new connections, and spoken once the other client lets go; with
    the retries used up first, it ends without audio."""
    d = DaemonProcess("--token", TOKEN, "--stream-utilisation", "inf", "--max-active-streams", "1")
    holder: Peer | None = None
    draining: asyncio.Task[Any] | None = None
    try:
        holder = await Peer.connect(d.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        await holder.send(Speak("hold", LONG, final=True))
        await holder.until(lambda e: isinstance(e, Audio))
        draining = asyncio.create_task(holder.until(lambda e: False, timeout=WAIT_S * 2))
        # Retries are bounded: used up, the refusal ends the context (silent, stopped).
        async with running(d.url, overload_policy=FailoverPolicy(max_retries=1, backoff_base_s=0.1)) as quitter:
            await quitter.push(TTSSpeakFrame("Hello there."))
            await quitter.out.until(lambda: bool(quitter.out.of(TTSStoppedFrame)))
            assert not quitter.out.of(TTSAudioRawFrame)
        assert counter(d, "kokorod_utterances_refused_total", reason="overloaded") == 2  # the first try, one retry
        policy = FailoverPolicy(max_retries=50, retry_budget_s=WAIT_S, backoff_base_s=0.2, backoff_max_s=1.0)
        async with running(d.url, overload_policy=policy) as bot:
            await bot.push(TTSSpeakFrame(SENTENCES))
            async with asyncio.timeout(WAIT_S):
                while counter(d, "kokorod_utterances_refused_total", reason="overloaded") < 4:
                    await asyncio.sleep(0.1)
            assert not bot.contexts() and not bot.out.of(TTSStoppedFrame)  # not spoken yet, and not failed
            await holder.send(Cancel(utterance="hold"))
            await bot.out.until(lambda: len(bot.contexts()) == 1 and bot.out.stopped(bot.contexts()[0]))
            check_heard(bot, bot.contexts()[0], SENTENCES)
    finally:
        if draining is not None:
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await draining
        if holder is not None:
            await holder.close()
        assert d.stop() == 0, d.log()[-3000:]
