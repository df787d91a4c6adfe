"""Grapheme-to-phoneme per language (see ``bank.py`` for the dispatcher)."""

from kokorod.text.g2p.english import G2PBank, Phonemized, split_tokens

__all__ = ["G2PBank", "Phonemized", "split_tokens"]
