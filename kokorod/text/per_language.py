"""The text pipeline for one language: its segmentation profile and normaliser."""

from __future__ import annotations

from kokorod.text.languages import Language
from kokorod.text.normalize_intl import normalizer_for
from kokorod.text.segmenter import Segmenter, segment_profile


def segmenter_for(lang: Language, *, chunk_share: float = 1.0) -> Segmenter:
    """Sentence splitting and normalisation the way ``lang`` writes text;
    ``chunk_share`` < 1 scales its longest chunk down (background work, which
    must leave the engine often)."""
    profile = segment_profile(lang.code)
    max_chunk = None if chunk_share >= 1.0 else max(profile.min_chunk, int(profile.max_chunk * chunk_share))
    return Segmenter(profile=profile, normalizer=normalizer_for(lang.code), max_chunk_chars=max_chunk)
