"""lang "auto" through a session with the fake engine: the text's language and a
voice of it are used, the chunk event names the language, /metrics counts it."""

from __future__ import annotations

from typing import Any

from kokorod.protocol.messages import Chunk, Config, Configured, Done, Speak
from kokorod.text.languages import Language
from kokorod.speech.chunk import SpeechChunk

from support.session_fakes import FakeSynth, start, stop

FRENCH = "Bienvenue dans Home Assistant. Les lumières de la cuisine sont éteintes."


class VoiceSynth(FakeSynth):
    """The fake engine, remembering each call's voice too."""

    def __init__(self) -> None:
        super().__init__()
        self.voices_used: list[str] = []

    def synthesize(self, text: str, *, voice: str, speed: float, lang: Language | None = None,
                   **kw: Any) -> SpeechChunk:
        self.voices_used.append(voice)
        return super().synthesize(text, voice=voice, speed=speed, lang=lang, **kw)


def _auto_count(session: Any, outcome: str, lang: str) -> float:
    return session.s.metrics.language_auto.labels(outcome=outcome, lang=lang)._value.get()  # type: ignore[no-any-return]


async def test_auto_speaks_french_text_in_french_with_a_french_voice() -> None:
    synth = VoiceSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Speak("u1", FRENCH, voice="af_heart", lang="auto", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    chunks = [e for e in peer.events if isinstance(e, Chunk)]
    assert chunks and all(c.lang == "fr" for c in chunks)
    assert set(synth.langs) == {"fr"} and set(synth.voices_used) == {"ff_siwis"}
    assert _auto_count(session, "switched", "fr") == 1
    await stop(peer, task, sched)


async def test_streamed_fragments_decide_once_and_keep_every_word() -> None:
    synth = VoiceSynth()
    session, peer, task, sched = await start(synth)
    pieces = ["Bien", "venue dans Home ", "Assistant. Les lumières ", "de la cuisine sont éteintes."]
    for i, piece in enumerate(pieces):
        await peer.say(Speak("u1", piece, voice="af_heart" if i == 0 else None, lang="auto" if i == 0 else None,
                             final=i == len(pieces) - 1))
    await peer.wait_for(lambda e: isinstance(e, Done))
    chunks = [e for e in peer.events if isinstance(e, Chunk)]
    assert " ".join(c.text.strip() for c in chunks) == FRENCH
    assert {c.lang for c in chunks} == {"fr"} and set(synth.voices_used) == {"ff_siwis"}
    assert _auto_count(session, "switched", "fr") == 1
    await stop(peer, task, sched)


async def test_without_auto_the_voice_language_is_kept() -> None:
    """The WebSocket protocol's default is unchanged: the voice's language."""
    synth = VoiceSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Speak("u1", FRENCH, voice="af_heart", final=True))
    await peer.wait_for(lambda e: isinstance(e, Done))
    assert {e.lang for e in peer.events if isinstance(e, Chunk)} == {"en-us"}
    assert set(synth.voices_used) == {"af_heart"}
    await stop(peer, task, sched)


async def test_config_auto_keep_voice_and_english_stays_english() -> None:
    synth = VoiceSynth()
    session, peer, task, sched = await start(synth)
    await peer.say(Config(lang="auto-keep-voice"))
    configured = await peer.wait_for(lambda e: isinstance(e, Configured))
    assert configured.lang == "auto-keep-voice"
    await peer.say(Speak("u1", FRENCH, voice="af_heart", final=True, mode="queue"))
    await peer.say(Speak("u2", "Dinner with François is at seven tonight, at the usual place.", final=True,
                         mode="queue"))
    await peer.wait_for(lambda e: isinstance(e, Done) and e.utterance == "u2")
    by_utt = {u: {e.lang for e in peer.events if isinstance(e, Chunk) and e.utterance == u} for u in ("u1", "u2")}
    assert by_utt == {"u1": {"fr"}, "u2": {"en-us"}}
    assert set(synth.voices_used) == {"af_heart"}  # kept, with the French G2P for u1
    assert _auto_count(session, "same", "en-us") == 1
    await stop(peer, task, sched)


async def test_a_chinese_token_stream_decides_at_its_first_sentence() -> None:
    synth = VoiceSynth()
    session, peer, task, sched = await start(synth)
    text = "你好，今天天气很好。我们下午去公园散步吧。"
    pieces = [text[i:i + 2] for i in range(0, len(text), 2)]
    for i, piece in enumerate(pieces):
        await peer.say(Speak("u1", piece, voice="af_heart" if i == 0 else None, lang="auto" if i == 0 else None,
                             final=i == len(pieces) - 1))
    await peer.wait_for(lambda e: isinstance(e, Done))
    chunks = [e for e in peer.events if isinstance(e, Chunk)]
    assert "".join(c.text for c in chunks) == text
    assert {c.lang for c in chunks} == {"zh"} and set(synth.voices_used) == {"zf_xiaobei"}
    await stop(peer, task, sched)
