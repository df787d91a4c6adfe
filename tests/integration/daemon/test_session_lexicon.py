"""Session: config.lexicon reaches synthesis, phonemize is answered from the engine thread."""

from __future__ import annotations

import threading
from typing import Any

from kokorod.protocol.messages import Config, Configured, Done, Error, Phonemes, Phonemize, Speak
from kokorod.speech.synthesizer import WordPhonemes
from kokorod.text.lexicon import Lexicon

from support.session_fakes import FakeSynth, start, stop

WINDOW = "wˈɪndO"


class LexiconSynth(FakeSynth):
    """Records the lexicon each synthesis gets, and answers phonemize from it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lexicons: list[Any] = []
        self.phonemize_threads: list[str] = []

    def synthesize(self, text: str, *, lexicon: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        self.lexicons.append(lexicon)
        return super().synthesize(text, **kwargs)

    def phonemize(self, text: str, *, lang: Any, lexicon: Any = None) -> list[WordPhonemes]:
        self.phonemize_threads.append(threading.current_thread().name)
        out = []
        for word in text.split():
            ps = lexicon.get(word, lang.code) if lexicon is not None else None
            out.append(WordPhonemes(word, ps or "x", "session" if ps else "misaki"))
        return out


async def test_config_lexicon_is_used_by_later_speech() -> None:
    synth = LexiconSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Speak("a", "Before.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "a")
    await peer.say(Config(lexicon={"Zorblax": WINDOW}))
    configured = await peer.wait_for(lambda e: isinstance(e, Configured))
    assert configured.lexicon == 1
    await peer.say(Speak("b", "Zorblax.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "b")
    assert synth.lexicons[0] is None
    assert isinstance(synth.lexicons[-1], Lexicon) and synth.lexicons[-1].get("Zorblax", "en-us") == WINDOW
    # {} clears it.
    peer.events.clear()
    await peer.say(Config(lexicon={}))
    assert (await peer.wait_for(lambda e: isinstance(e, Configured))).lexicon == 0
    await peer.say(Speak("c", "Again.", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "c")
    assert synth.lexicons[-1] is None
    await stop(peer, task, sched)


async def test_a_bad_entry_is_an_error_naming_it_and_changes_nothing() -> None:
    synth = LexiconSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Config(lexicon={"Zorblax": WINDOW}))
    await peer.wait_for(lambda e: isinstance(e, Configured))
    await peer.say(Config(voice="af_heart", lexicon={"Good": WINDOW, "Zorblax": "wˈɪndX"}))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "invalid_field" and "'Zorblax'" in error.message and "'X'" in error.message
    assert session.lexicon is not None and session.lexicon.get("Zorblax", "en-us") == WINDOW
    await stop(peer, task, sched)


async def test_phonemize_runs_on_the_engine_thread() -> None:
    synth = LexiconSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Config(lexicon={"Zorblax": WINDOW}))
    await peer.say(Phonemize("p1", "Zorblax works"))
    event = await peer.wait_for(lambda e: isinstance(e, Phonemes))
    assert event.id == "p1" and event.lang == "en-us"
    assert [(w.text, w.phonemes, w.source) for w in event.words] == [("Zorblax", WINDOW, "session"),
                                                                    ("works", "x", "misaki")]
    assert synth.phonemize_threads and synth.phonemize_threads[0] != threading.current_thread().name
    await stop(peer, task, sched)


async def test_phonemize_errors_carry_the_id() -> None:
    synth = LexiconSynth(missing=("ja",))
    session, peer, task, sched = await start(synth)
    await peer.say(Phonemize("p2", "こんにちは", lang="ja"))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "language_unavailable" and error.id == "p2"
    peer.events.clear()
    await peer.say(Phonemize("p3", "hi", voice="xx_nobody"))
    error = await peer.wait_for(lambda e: isinstance(e, Error))
    assert error.code == "unknown_voice" and error.id == "p3"
    await stop(peer, task, sched)
