"""Moved to ``kokorod.speech.chunk``; this old import path is kept for code
outside kokorod that imports it (nothing inside does)."""

from kokorod.speech.chunk import SpeechChunk, Word

__all__ = ["SpeechChunk", "Word"]
