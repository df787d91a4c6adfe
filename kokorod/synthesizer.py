"""Moved to ``kokorod.speech.synthesizer``. Kept only for
``kokorod.daemon.server``, restructured in parallel; nothing else imports this."""

from kokorod.speech.synthesizer import Synthesizer, WordPhonemes, check_speed, phonemize_words

__all__ = ["Synthesizer", "WordPhonemes", "check_speed", "phonemize_words"]
