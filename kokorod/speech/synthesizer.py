"""Text → audio + word timings: G2P for the language, model-sized pieces, engine runs, words.

This is a synchronous, blocking API. The daemon calls it only from its engine
executor thread, never from the event loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kokorod.assets.voices import VoiceStore
from kokorod.engine.base import SPEED_MAX, SPEED_MIN, CancelToken, Engine
from kokorod.errors import InputError
from kokorod.text import languages
from kokorod.text.g2p import G2PBank, Phonemized
from kokorod.text.languages import Language
from kokorod.text.lexicon import Lexicon
from kokorod.text.words import Replacement, is_wordlike, join_timestamps, locate, words_from_tokens
from kokorod.speech.chunk import SpeechChunk, Word


@dataclass(frozen=True)
class WordPhonemes:
    text: str       # the word as the G2P cut it (written text)
    phonemes: str   # what the model gets for it
    source: str     # session, file, built-in, inline, misaki, espeak, g2p


def _g2p_source(lang: Language, tok: Any) -> str:
    if lang.code not in ("en-us", "en-gb"):
        return "espeak" if lang.espeak else "misaki"
    from kokorod.text.g2p.english import ESPEAK_RATING, LEXICON_RATING

    rating = getattr(tok, "rating", None)
    if rating is None:
        rating = getattr(getattr(tok, "_", None), "rating", None)
    if rating == LEXICON_RATING:
        return "inline"
    return "espeak" if rating == ESPEAK_RATING else "misaki"


def describe_tokens(tokens: Sequence[Any], chain: Any, lang: Language, vocab: frozenset[str]) -> list[WordPhonemes]:
    """Word tokens with their phonemes (as the model gets them) and source."""
    out: list[WordPhonemes] = []
    for tok in tokens:
        if not tok.text or not is_wordlike(tok.text):
            continue
        phonemes = "".join(ch for ch in (tok.phonemes or "") if ch in vocab).strip()
        match = chain.lookup(tok.text, lang.code)
        if match is None and lang.code in ("zh", "ja") and tok.text.isascii():
            match = chain.lookup(tok.text, "en-us")  # Latin runs are read by the English G2P
        # misaki rewrites ɾ → T, ʔ → t in every token (its v1.0 mapping).
        if match is not None and match.phonemes.replace("ɾ", "T").replace("ʔ", "t") in phonemes.replace("ɾ", "T"):
            source = match.source
        else:
            source = _g2p_source(lang, tok)
        out.append(WordPhonemes(tok.text, phonemes, source))
    return out


def phonemize_words(bank: G2PBank, text: str, *, lang: Language, vocab: frozenset[str],
                    lexicon: Lexicon | None = None, normalize: bool = True) -> list[WordPhonemes]:
    """``Synthesizer.phonemize`` without an engine (the CLI needs no model)."""
    if normalize:
        from kokorod.text.normalize_intl import normalizer_for

        text = normalizer_for(lang.code)(text).spoken
    if not text.strip():
        return []
    return describe_tokens(bank.tokens(text, lang, lexicon), bank.chain(lexicon), lang, vocab)


def check_speed(speed: float) -> float:
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not math.isfinite(speed):
        raise InputError("speed must be a number", f"use a value from {SPEED_MIN} to {SPEED_MAX}")
    if not SPEED_MIN <= speed <= SPEED_MAX:
        raise InputError(f"speed {speed} is out of range", f"use a value from {SPEED_MIN} to {SPEED_MAX}")
    return float(speed)


class Synthesizer:
    """Owns the G2Ps and voices, and drives an engine. Thread-confined: call it
    from one thread at a time (the daemon's engine thread)."""

    def __init__(self, engine: Engine, voices: VoiceStore, g2p: G2PBank | None = None) -> None:
        self.engine = engine
        self.voices = voices
        self.g2p = g2p if g2p is not None else G2PBank()

    def check_voice(self, voice: str) -> str:
        self.voices.parse(voice)
        return voice

    def synthesize(
        self,
        text: str,
        *,
        voice: str = "af_heart",
        speed: float = 1.0,
        cancel: CancelToken | None = None,
        replacements: Sequence[Replacement] = (),
        lang: Language | None = None,
        lexicon: Lexicon | None = None,
    ) -> SpeechChunk:
        """Speak ``text`` (already normalised for ``lang``) and time its words.

        ``lang`` defaults to the voice's language (its first letter). Text longer
        than the model window is split at natural boundaries and the pieces are
        concatenated; nothing is truncated. Written words that yield no phoneme
        the model knows are listed in ``SpeechChunk.unspeakable``. ``lexicon``
        is the session's pronunciation lexicon (above the daemon's, see
        kokorod.text.lexicon).
        """
        if not isinstance(text, str) or not text.strip():
            raise InputError("there is no text to speak", "pass some text")
        speed = check_speed(speed)
        self.voices.parse(voice)
        lang = lang or languages.for_voice(voice)
        pack = self.voices.pack(voice)
        pieces = self.g2p.phonemize(text, lang, lexicon)
        audio_parts: list[np.ndarray] = []
        words: list[Word] = []
        unspeakable: list[str] = []
        offset = 0
        cursor = 0
        for piece in pieces:
            if cancel is not None:
                cancel.raise_if_cancelled()
            audio, piece_words, cursor = self._run_piece(
                piece, pack, speed, cancel, text, cursor, offset, replacements, unspeakable)
            audio_parts.append(audio)
            words.extend(piece_words)
            offset += audio.shape[0]
        if not audio_parts:
            return SpeechChunk(np.zeros(0, dtype=np.float32), [], unspeakable=unspeakable)
        return SpeechChunk(np.concatenate(audio_parts), words, unspeakable=unspeakable)

    def phonemize(self, text: str, *, lang: Language, lexicon: Lexicon | None = None,
                  normalize: bool = True) -> list[WordPhonemes]:
        """Each word of ``text`` with the phonemes the model would get and where
        they came from (``kokorod phonemize`` and the ``phonemize`` message).

        The text is normalised for ``lang`` first, as speech is, so a word is
        the spoken form ("$5" → "five dollars"). Blocking: engine thread only."""
        return phonemize_words(self.g2p, text, lang=lang, lexicon=lexicon, vocab=frozenset(self.engine.vocab),
                               normalize=normalize)

    def _run_piece(
        self,
        piece: Phonemized,
        pack: np.ndarray,
        speed: float,
        cancel: CancelToken | None,
        spoken: str,
        cursor: int,
        offset: int,
        replacements: Sequence[Replacement],
        unspeakable: list[str],
    ) -> tuple[np.ndarray, list[Word], int]:
        vocab = self.engine.vocab
        # Symbols outside the vocabulary would be dropped from the ids but not from
        # the tokens, shifting every later word's time; drop them from both.
        for tok in piece.tokens:
            if tok.phonemes:
                tok.phonemes = "".join(ch for ch in tok.phonemes if ch in vocab)
            if not tok.phonemes and is_wordlike(tok.text):
                unspeakable.append(tok.text)
        phonemes = "".join(ch for ch in piece.phonemes if ch in vocab)
        if not phonemes.strip():  # nothing the model can say: no run (and no noise)
            _, cursor = locate(piece.tokens, spoken, cursor)
            return np.zeros(0, dtype=np.float32), [], cursor
        ids = [0, *(vocab[ch] for ch in phonemes), 0]
        style = self.voices.style_for(pack, len(phonemes))
        out = self.engine.run(ids, style, speed, cancel)
        join_timestamps(piece.tokens, out.durations)
        spans, cursor = locate(piece.tokens, spoken, cursor)
        return out.audio, words_from_tokens(spans, offset, replacements), cursor
