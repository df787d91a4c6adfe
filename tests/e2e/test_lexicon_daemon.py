"""Pronunciation lexicons through a real daemon with the real model, judged by ear
(the recogniser): a session lexicon, the daemon's file and its reload mid-stream,
phonemize, and the errors for bad entries.

The daemon runs in this process (the tests call ``install_lexicon`` and
``reload_lexicon`` themselves, as the daemon's start-up (kokorod/daemon/core.py) and SIGHUP handler do);
``serve --lexicon`` with a bad file is checked as a subprocess, which exits
before loading the model.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from kokorod.config import ServerConfig
from kokorod.daemon.lexicon_service import install_lexicon, reload_lexicon
from kokorod.protocol.messages import Config, Configured, Done, Error, Phonemes, Phonemize, Speak, WordEvent
from kokorod.app import App

from support.asr import normalize_words, transcribe
from support.daemon import ROOT, Peer, check_stream_invariants, free_port, words_of

pytestmark = pytest.mark.slow

WINDOW = "wˈɪndO"   # misaki's "window"
GARDEN = "ɡˈɑɹdᵊn"  # misaki's "garden"


def heard(utt) -> str:  # type: ignore[no-untyped-def]
    text, _ = transcribe(utt.audio(), utt.sample_rate)
    return normalize_words(text)


@pytest.fixture(scope="module")
def lexicon_file(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("lex") / "lexicon.toml"
    path.write_text(f'[en-us]\nBlorptex = "{WINDOW}"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def daemon(synth, lexicon_file):  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    d = App(ServerConfig(port=free_port(), lexicon_path=str(lexicon_file), stream_utilisation=float("inf")))
    loop.run_until_complete(d.start(lambda: synth))
    install_lexicon(d.daemon)
    d.loop = loop  # type: ignore[attr-defined]
    d.url = f"ws://127.0.0.1:{d.port}/v1/stream"  # type: ignore[attr-defined]
    yield d
    loop.run_until_complete(d.shutdown())
    synth.g2p.lexicons.file = None
    loop.close()


def run(daemon, coro):  # type: ignore[no-untyped-def]
    return daemon.loop.run_until_complete(asyncio.wait_for(coro, 300))


def test_session_lexicon_is_heard(daemon) -> None:  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        peer = await Peer.connect(daemon.url)
        await peer.send(Speak("plain", "Please open the Zorblax now.", final=True))
        plain = await peer.utterance("plain")
        await peer.send(Config(lexicon={"Zorblax": WINDOW}))
        configured = await peer.until(lambda e: isinstance(e, Configured))
        assert configured[-1].lexicon == 1
        await peer.send(Speak("mapped", "Please open the Zorblax now.", final=True))
        mapped = await peer.utterance("mapped")
        await peer.close()
        return plain, mapped

    plain, mapped = run(daemon, go())
    print("without:", heard(plain), "| with:", heard(mapped))
    assert "window" not in heard(plain)
    assert "window" in heard(mapped)
    assert [w.text for w in words_of(mapped)] == ["Please", "open", "the", "Zorblax", "now"]
    check_stream_invariants(mapped)


def test_bad_entries_give_clear_errors(daemon) -> None:  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        peer = await Peer.connect(daemon.url, encoding="json")
        errors = []
        for lexicon in ({"Zorblax": "wˈɪndX"}, {"Zorblax": ""}, {"Zorblax": "w" * 65},
                        {f"w{i}": "wˈɪn" for i in range(501)}):
            await peer.send_raw(__import__("json").dumps({"type": "config", "lexicon": lexicon}))
            errors.append(await peer.expect_error("invalid_field"))
        await peer.close()
        return errors

    errors = run(daemon, go())
    for e in errors:
        print(e.message)
    assert "entry 'Zorblax': unknown phoneme 'X'" in errors[0].message
    assert "entry 'Zorblax': the phonemes are empty" in errors[1].message
    assert "at most 64" in errors[2].message
    assert "more than 500 entries" in errors[3].message


def test_file_lexicon_phonemize_and_reload_mid_stream(daemon, lexicon_file) -> None:  # type: ignore[no-untyped-def]
    long_text = " ".join(["The Blorptex is by the door, and the light comes in through it every morning."] * 6)

    async def go():  # type: ignore[no-untyped-def]
        peer = await Peer.connect(daemon.url)
        await peer.send(Phonemize("p1", "Blorptex and JSON and Zorblax"))
        before = (await peer.until(lambda e: isinstance(e, Phonemes)))[-1]
        await peer.send(Speak("long", long_text, final=True))
        await peer.until(lambda e: isinstance(e, WordEvent) and e.utterance == "long")  # speaking
        lexicon_file.write_text(f'[en-us]\nBlorptex = "{GARDEN}"\n', encoding="utf-8")
        assert await reload_lexicon(daemon.daemon)
        lexicon_file.write_text('[en-us]\nBlorptex = "ɡX"\n', encoding="utf-8")  # invalid: old one kept
        assert not await reload_lexicon(daemon.daemon)
        long = await peer.utterance("long")
        await peer.send(Speak("after", "Please open the Blorptex now.", final=True))
        after = await peer.utterance("after")
        await peer.send(Phonemize("p2", "Blorptex"))
        again = (await peer.until(lambda e: isinstance(e, Phonemes)))[-1]
        await peer.close()
        return before, long, after, again

    before, long, after, again = run(daemon, go())
    assert [(w.text, w.source) for w in before.words] == [("Blorptex", "file"), ("and", "misaki"),
                                                          ("JSON", "built-in"), ("and", "misaki"),
                                                          ("Zorblax", "espeak")]
    assert before.words[0].phonemes == WINDOW and before.words[2].phonemes == "ʤˈAsən"
    # The stream went on undisturbed: every word, contiguous frames, done last.
    assert isinstance(long.events[-1], Done) and not long.of(Error)
    check_stream_invariants(long)
    assert len(words_of(long)) == len(long_text.split())
    print("after reload:", heard(after))
    assert "garden" in heard(after)
    assert (again.words[0].phonemes, again.words[0].source) == (GARDEN, "file")


def test_serve_with_a_bad_lexicon_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[en-us]\nGood = "ɡˈʊd"\nZorblax = "zˈɔɹbgæks"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kokorod", "serve", "--port", str(free_port()), "--lexicon", str(bad)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{bad}:3: entry 'Zorblax' in [en-us]: unknown phoneme 'g'" in line, proc.stderr


def test_phonemize_cli(tmp_path: Path) -> None:
    lex = tmp_path / "lex.json"
    lex.write_text('{"Zorblax": "wˈɪndO"}', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kokorod", "phonemize", "--lexicon", str(lex), "--json",
                           "Zorblax's JSON is in the README."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    words = {w["text"]: w for w in json.loads(proc.stdout)["words"]}
    assert (words["Zorblax's"]["phonemes"], words["Zorblax's"]["source"]) == ("wˈɪndOz", "file")
    assert words["JSON"]["source"] == "built-in" and words["is"]["source"] == "misaki"


def test_serve_lexicon_file_and_sighup_mid_stream(tmp_path: Path) -> None:
    """The real ``kokorod serve --lexicon``: the file applies, and SIGHUP reloads
    it while a stream plays, without disturbing that stream."""
    import signal

    from support.daemon import DaemonProcess

    path = tmp_path / "lexicon.toml"
    path.write_text(f'Blorptex = "{WINDOW}"\n', encoding="utf-8")
    d = DaemonProcess("--lexicon", str(path), "--stream-utilisation", "inf")
    long_text = " ".join(["The Blorptex is by the door, and the light comes in through it every morning."] * 6)

    async def go():  # type: ignore[no-untyped-def]
        peer = await Peer.connect(d.url)
        await peer.send(Phonemize("p1", "Blorptex"))
        first = (await peer.until(lambda e: isinstance(e, Phonemes)))[-1]
        await peer.send(Speak("long", long_text, final=True))
        await peer.until(lambda e: isinstance(e, WordEvent) and e.utterance == "long")
        path.write_text(f'Blorptex = "{GARDEN}"\n', encoding="utf-8")
        d.proc.send_signal(signal.SIGHUP)
        long = await peer.utterance("long")
        await asyncio.sleep(0.5)
        await peer.send(Phonemize("p2", "Blorptex"))
        second = (await peer.until(lambda e: isinstance(e, Phonemes)))[-1]
        await peer.close()
        return first, long, second

    try:
        first, long, second = asyncio.run(go())
    finally:
        assert d.stop() == 0, d.log()[-3000:]
    assert (first.words[0].phonemes, first.words[0].source) == (WINDOW, "file")
    check_stream_invariants(long)
    assert len(words_of(long)) == len(long_text.split())
    assert (second.words[0].phonemes, second.words[0].source) == (GARDEN, "file")
    assert "lexicon reloaded" in d.log()
