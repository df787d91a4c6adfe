"""Grapheme-to-phoneme per language; ``bank.G2PBank`` picks and builds them."""

from kokorod.text.g2p.bank import G2PBank, LanguageUnavailable, Phonemized, split_tokens

__all__ = ["G2PBank", "LanguageUnavailable", "Phonemized", "split_tokens"]
