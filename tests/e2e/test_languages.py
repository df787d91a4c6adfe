"""Every Kokoro language through the real daemon with the real model, judged by
a multilingual recogniser (Whisper base): speech heard as the text, one word
event per written word on the audio timeline, and nothing dropped silently."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.asr import error_rate, transcribe_lang
from support.daemon import DaemonProcess, Peer, Utterance, check_stream_invariants, words_of
from kokorod.protocol.messages import Config, Configured, Done, Error, Speak, Warning
from kokorod.text.languages import CODES
from kokorod.text.words import is_wordlike, written_form

from support.language_cases import CASES, Case

pytestmark = pytest.mark.slow


HINDI = "नमस्ते, आप कैसे हैं? आज मौसम बहुत अच्छा है।"


@pytest.fixture(scope="module")
def daemon():  # type: ignore[no-untyped-def]
    d = DaemonProcess()
    yield d
    assert d.stop() == 0, d.log()[-3000:]


def written_words(text: str, lang: str) -> list[str]:
    """The words a listener would count in ``text``: whitespace-separated words
    for spaced languages; for zh/ja, checked as coverage (see below)."""
    return [written_form(w) for w in text.split() if is_wordlike(w)]


def check_words(utt: Utterance, text: str, lang: str) -> None:
    words = [w.text for w in words_of(utt)]
    if lang in ("zh", "ja"):
        # No spaces to count by: every written character that is part of a word
        # must be in exactly one word event, in order.
        letters = "".join(ch for ch in text if ch.isalnum())
        assert "".join(words) == letters, words
        assert len(words) >= len(letters) // 4  # words, not one blob per sentence
    else:
        assert words == written_words(text, lang)


async def speak(peer: Peer, uid: str, case_text: str, voice: str, lang: str | None = None,
                fragments: bool = False) -> Utterance:
    if fragments:
        rng = random.Random(uid)
        i = 0
        while i < len(case_text):
            n = rng.randint(1, 4)
            await peer.send(Speak(uid, case_text[i:i + n], voice=voice, lang=lang))
            i += n
        await peer.send(Speak(uid, "", final=True))
    else:
        await peer.send(Speak(uid, case_text, voice=voice, lang=lang, final=True))
    return await peer.utterance(uid)


async def test_ready_lists_every_language_with_its_voices(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    ready = peer.ready
    assert ready is not None
    langs = {info.code: info for info in ready.languages}
    assert set(langs) == set(CODES)
    assert all(info.available for info in langs.values())
    owned = [v for info in langs.values() for v in info.voices]
    assert sorted(owned) == sorted(ready.voices)  # every voice in exactly one language
    assert "ef_dora" in langs["es"].voices and "zf_xiaobei" in langs["zh"].voices
    await peer.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.lang)
async def test_language_is_heard_with_one_word_event_per_word(daemon: DaemonProcess, case: Case) -> None:
    peer = await Peer.connect(daemon.url)
    # zh and ja arrive as an LLM token stream (1–4 characters at a time), the
    # others whole: both paths go through the language's segmenter.
    utt = await speak(peer, f"u-{case.lang}", case.text, case.voice, fragments=case.lang in ("zh", "ja"))
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    assert not utt.of(Warning), utt.of(Warning)
    check_stream_invariants(utt)
    check_words(utt, case.text, case.lang)
    heard, _ = transcribe_lang(utt.audio(), utt.sample_rate, case.lang)
    err = error_rate(case.reference, heard, case.lang)
    print(f"{case.lang}: error {err:.3f} heard {heard!r}")
    assert err <= case.max_error, heard
    await peer.close()


async def test_the_judge_fails_the_text_read_in_another_language(daemon: DaemonProcess) -> None:
    """The French case's text read by the English G2P (French voice, ``lang``
    en-us) must fail the French limit, or the judge proves nothing. Measured
    0.42-0.50 (int8 and conv-dequantised graphs, audio as synthesised, with
    noise 35 dB under the speech and shifted by 5 ms), against the limit 0.20."""
    case = next(c for c in CASES if c.lang == "fr")
    peer = await Peer.connect(daemon.url)
    utt = await speak(peer, "wrong-fr", case.text, case.voice, lang="en-us")
    assert isinstance(utt.events[-1], Done), utt.events[-1]
    heard, _ = transcribe_lang(utt.audio(), utt.sample_rate, case.lang)
    err = error_rate(case.reference, heard, case.lang)
    print(f"fr read as English: error {err:.3f} heard {heard!r}")
    assert err > case.max_error, heard
    await peer.close()


async def test_hindi_speaks_every_word(daemon: DaemonProcess) -> None:
    """Whisper base often answers Hindi in Urdu script, so the judge here is the
    audio's length and the word events, not an error rate."""
    peer = await Peer.connect(daemon.url)
    utt = await speak(peer, "u-hi", HINDI, "hf_alpha")
    assert isinstance(utt.events[-1], Done)
    check_stream_invariants(utt)
    check_words(utt, HINDI, "hi")
    words = words_of(utt)
    duration = utt.events[-1].duration
    assert 0.15 * len(words) <= duration <= 1.0 * len(words)  # speech, not silence or a stall
    assert all(w.end - w.start >= 0.05 for w in words)
    await peer.close()


async def test_lang_field_overrides_the_voice_and_config_sets_it(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    await peer.send(Config(lang="es"))
    configured = (await peer.until(lambda e: isinstance(e, Configured)))[-1]
    assert configured.lang == "es"
    # An English voice reading Spanish with the Spanish G2P: numbers are Spanish words.
    utt = await speak(peer, "o1", "Tengo 3 perros.", "af_heart")
    assert isinstance(utt.events[-1], Done)
    assert [w.text for w in words_of(utt)] == ["Tengo", "3", "perros"]
    await peer.send(Config(lang=""))
    configured = (await peer.until(lambda e: isinstance(e, Configured)))[-1]
    assert configured.lang is None
    await peer.close()


async def test_unspeakable_text_is_reported_and_the_rest_is_spoken(daemon: DaemonProcess) -> None:
    peer = await Peer.connect(daemon.url)
    utt = await speak(peer, "w1", "Hola amigo 😀, 你好 Привет, hasta mañana.", "ef_dora")
    assert isinstance(utt.events[-1], Done)
    skipped = " ".join(w.text for w in utt.of(Warning) if w.code == "unspeakable")
    for piece in ("😀", "你好", "Привет"):
        assert piece in skipped
    assert [w.text for w in words_of(utt)] == ["Hola", "amigo", "hasta", "mañana"]
    warning_at = utt.events.index(utt.of(Warning)[0])
    assert warning_at < utt.events.index(utt.of(Done)[0])
    await peer.close()


@pytest.mark.parametrize("text", ["😀🎉", "   ", "```\nprint(1)\n```"])
async def test_an_utterance_that_makes_no_sound_ends_with_nothing_to_speak(daemon: DaemonProcess, text: str) -> None:
    peer = await Peer.connect(daemon.url)
    utt = await speak(peer, "n1", text, "af_heart")
    last = utt.events[-1]
    assert isinstance(last, Error) and last.code == "nothing_to_speak", utt.events
    assert not utt.of(Done)
    if text.strip():
        assert utt.of(Warning), "what was not spoken is reported"
    await peer.close()


BLOCKER = textwrap.dedent('''
    # Test-only: make the Japanese G2P's packages look uninstalled.
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("fugashi", "unidic_lite"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _Block())
''')


async def test_a_language_whose_packages_are_missing_is_reported_not_silent(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    doctor = subprocess.run([sys.executable, "-m", "kokorod", "doctor"], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120)
    assert "lang ja" in doctor.stdout and "fugashi" in doctor.stdout and "unidic-lite" in doctor.stdout
    d = DaemonProcess(env=env)
    try:
        peer = await Peer.connect(d.url)
        ja = next(info for info in peer.ready.languages if info.code == "ja")  # type: ignore[union-attr]
        assert not ja.available and ja.fix and "unidic-lite" in ja.fix
        await peer.send(Speak("j1", "こんにちは。", voice="jf_alpha", final=True))
        err = await peer.expect_error("language_unavailable")
        assert err.utterance == "j1" and "unidic-lite" in err.message
        utt = await speak(peer, "e1", "Still fine in English.", "af_heart")  # the rest keeps working
        assert isinstance(utt.events[-1], Done)
        await peer.close()
    finally:
        assert d.stop() == 0, d.log()[-3000:]
