"""Every entry point runs the one speech pipeline (kokorod.speech).

The same text, with a <break/>, an emoji no voice can say and a word from the
lexicon file, goes through the daemon's session (an in-process peer), `kokorod
say --local`, `kokorod pipe --local`, and `say` / `pipe` through a daemon
running in this process. The engine is a tone per phoneme (fast and
deterministic); G2P, voices, lexicon, segmenter, plan, seams and timelines are
the real ones. They must agree on the words, the warnings, and the audio's
length (exactly in-process; through the daemon, the first chunk may be cut
elsewhere, which moves one seam pause).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from kokorod import cli
from kokorod.audio.wav import read_wav
from kokorod.config import ServerConfig
from kokorod.engine.base import SAMPLE_RATE
from kokorod.protocol.messages import Audio, Chunk, Done, Error, Ready, Speak, Warning, WordEvent
from kokorod.speech.synthesizer import Synthesizer
from support.tone_engine import ToneEngine

TEXT = 'Hello there. <break time="2s"/> General Kenobi. 🦄 and Zorblax'
WORDS = ["Hello", "there", "General", "Kenobi", "and", "Zorblax"]
LEXICON = '[en-us]\nZorblax = "zˈɔɹblæks"\n'
@pytest.fixture(scope="module")
def lexicon_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lexicon") / "lexicon.toml"
    path.write_text(LEXICON, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tone_synth(lexicon_file: Path) -> Synthesizer:
    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.assets.voices import VoiceStore
    from kokorod.engine.onnx_engine import load_vocab
    from kokorod.text.g2p import G2PBank
    from kokorod.text.lexicon import load_lexicon_file

    voices = VoiceStore(resolve_cache_dir(None) / "voices", fetch_missing=False)
    if not (resolve_cache_dir(None) / "voices" / "af_heart.bin").exists():
        pytest.skip("voices not fetched (kokorod fetch)")
    bank = G2PBank()
    bank.lexicons.file = load_lexicon_file(lexicon_file)
    return Synthesizer(ToneEngine(dict(load_vocab())), voices, bank)


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, tone_synth: Synthesizer) -> Synthesizer:
    """`say --local` and `pipe --local` load the tone synthesizer."""
    import kokorod.speech.build

    monkeypatch.setattr(kokorod.speech.build, "build_synthesizer", lambda _options: tone_synth)
    monkeypatch.delenv("KOKOROD_TOKEN", raising=False)
    monkeypatch.delenv("KOKOROD_URL", raising=False)
    return tone_synth


class Heard:
    def __init__(self, seconds: float, words: list[tuple[float, str]], unspoken: list[str]) -> None:
        self.seconds, self.words, self.unspoken = seconds, words, unspoken

    def __repr__(self) -> str:
        return f"Heard({self.seconds:.3f} s, {self.words}, {self.unspoken})"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path, stdin: str | None = None) -> Heard:
    wav = tmp_path / f"{argv[0]}-{len(list(tmp_path.iterdir()))}.wav"
    if stdin is not None:
        source = tmp_path / "stdin.txt"
        source.write_text(stdin, encoding="utf-8")
        monkeypatch.setattr("sys.stdin", source.open("r", encoding="utf-8"))
    capsys.readouterr()
    assert cli.main([*argv, "--words", "-o", str(wav)]) == 0
    out, err = capsys.readouterr()
    audio, rate = read_wav(wav)
    words = [(float(p[0]), p[2]) for p in (line.split() for line in out.splitlines()) if len(p) == 3]
    unspoken = [line.removeprefix("not spoken: ") for line in err.splitlines() if line.startswith("not spoken: ")]
    return Heard(len(audio) / rate, words, unspoken)


@pytest.fixture
def daemon(tone_synth: Synthesizer, lexicon_file: Path) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    """A real Daemon (WebSocket server, session, scheduler, warm-up) on the tone
    synthesizer, on its own event loop in a thread, as a separate process would be."""
    from kokorod.app import App

    config = ServerConfig(port=0, first_audio_ms=0, chunk_cache_mb=0, lexicon_path=str(lexicon_file))
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        d = App(config)
        await d.start(lambda: tone_synth)
        holder["daemon"], holder["stop"] = d, asyncio.Event()
        started.set()
        await holder["stop"].wait()
        await d.shutdown()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # seen by the test, not lost in the thread
            holder["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="test-daemon")
    thread.start()
    assert started.wait(120), "the daemon did not start"
    assert "error" not in holder, holder.get("error")
    try:
        yield holder["daemon"], loop
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(60)
        loop.close()
        assert not thread.is_alive()


async def through_session(d: Any) -> Heard:
    """The daemon's session itself, through its in-process peer."""
    async with d.local_peer() as peer:
        peer.send(Speak(utterance="u1", text=TEXT, final=True))
        return await through_peer(peer)


async def through_peer(peer: Any) -> Heard:
    words: list[tuple[float, str]] = []
    unspoken: list[str] = []
    async for event in peer.events():
        if isinstance(event, WordEvent):
            words.append((event.start, event.text))
        elif isinstance(event, Warning):
            unspoken.append(event.text)
        elif isinstance(event, Done):
            return Heard(event.samples / SAMPLE_RATE, words, unspoken)
        elif isinstance(event, Error):
            raise AssertionError(event)
        else:
            assert isinstance(event, (Audio, Chunk, Ready)), event
    raise AssertionError("no done")


def check_agree(results: dict[str, Heard], reference: str, *, tolerance_s: dict[str, float]) -> None:
    print(results)  # shown with -s
    ref = results[reference]
    assert [w for _, w in ref.words] == WORDS, results
    assert ref.unspoken == ["🦄"], results
    said = dict((w, t) for t, w in ref.words)
    assert said["General"] - said["there"] > 2.0, results  # the 2 s pause is on the timeline
    for name, heard in results.items():
        assert [w for _, w in heard.words] == WORDS, (name, results)
        assert heard.unspoken == ref.unspoken, (name, results)
        assert abs(heard.seconds - ref.seconds) <= tolerance_s.get(name, 0.0), (name, results)


def test_say_and_pipe_in_process_are_identical(in_process: Synthesizer, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    results = {
        "say --local": run_cli(["say", "--local", TEXT], capsys, monkeypatch, tmp_path),
        "pipe --local": run_cli(["pipe", "--local"], capsys, monkeypatch, tmp_path, stdin=TEXT + "\n"),
    }
    check_agree(results, "say --local", tolerance_s={})
    # The lexicon file's word reached the model: its phonemes, as written there.
    engine = in_process.engine
    assert isinstance(engine, ToneEngine)
    vocab = engine.vocab
    zorblax = [vocab[ch] for ch in "zˈɔɹblæks"]
    assert any(zorblax == ids[i:i + len(zorblax)] for ids in engine.phonemes for i in range(len(ids))), \
        "the lexicon's phonemes for Zorblax were not used"


def test_the_daemon_session_say_and_pipe_through_it_agree_with_in_process(
        in_process: Synthesizer, daemon: tuple[Any, asyncio.AbstractEventLoop], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    running, loop = daemon
    url = f"ws://127.0.0.1:{running.port}/v1/stream"
    results = {"say --local": run_cli(["say", "--local", TEXT], capsys, monkeypatch, tmp_path)}
    future = asyncio.run_coroutine_threadsafe(through_session(running.daemon), loop)
    results["daemon session"] = future.result(60)
    results["say via daemon"] = run_cli(["say", TEXT, "--url", url], capsys, monkeypatch, tmp_path)
    results["pipe via daemon"] = run_cli(["pipe", "--url", url], capsys, monkeypatch, tmp_path, stdin=TEXT + "\n")
    # One message, one segmentation: identical. pipe sends what stdin gave as it
    # came; a stall flush on a slow machine may cut elsewhere and move a seam pause.
    check_agree(results, "say --local", tolerance_s={"pipe via daemon": 0.6})


async def test_the_last_sound_gets_no_seam_pause_in_the_session_as_in_process(tone_synth: Synthesizer) -> None:
    """A sentence followed only by text that makes no sound (a code block) is
    the last sound: no seam pause before ``done``, in the session as in
    ``say --local`` (the session used to add a paragraph's pause: 1.33 s vs 0.78 s)."""
    from kokorod.daemon.admission import Capacity
    from kokorod.daemon.scheduler import EngineScheduler
    from kokorod.daemon.session import Services
    from kokorod.daemon.local_peer import LocalPeer
    from kokorod.metrics import Metrics
    from kokorod.speech.local import speak_local

    text = "Run this now.\n\n```\nls -la\n```\n"
    local = speak_local(tone_synth, text, voice="af_heart", speed=1.0)
    sched = EngineScheduler()
    sched.start()
    services = Services(ServerConfig(first_audio_ms=0, chunk_cache_mb=0), sched, tone_synth, Metrics(), Capacity(None),
                        ("af_heart",))
    try:
        async with LocalPeer(services) as peer:
            peer.send(Speak(utterance="u", text=text, final=True))
            session = await through_peer(peer)
    finally:
        await sched.aclose()
    assert [w.text for w in local.words] == [w for _, w in session.words] == ["Run", "this", "now"]
    assert [w.text for w in local.warnings] == session.unspoken == ["```\nls -la\n```"]
    assert session.seconds == local.duration_s
