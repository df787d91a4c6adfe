"""Moved to ``kokorod.speech.chunk``. Kept only for ``kokorod.text.words``,
which the text package's restructuring (in parallel) will point at the new
home; nothing else imports this."""

from kokorod.speech.chunk import SpeechChunk, Word

__all__ = ["SpeechChunk", "Word"]
