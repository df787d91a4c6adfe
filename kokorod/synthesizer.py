"""Moved to ``kokorod.speech.synthesizer``; this old import path is kept for
code outside kokorod that imports it (nothing inside does)."""

from kokorod.speech.synthesizer import Synthesizer, WordPhonemes, check_speed, phonemize_words

__all__ = ["Synthesizer", "WordPhonemes", "check_speed", "phonemize_words"]
