"""The text pipeline for one language: its segmentation profile and normaliser."""

from __future__ import annotations

from kokorod.text.languages import Language
from kokorod.text.normalize_intl import normalizer_for
from kokorod.text.segmenter import Segmenter, segment_profile


def segmenter_for(lang: Language) -> Segmenter:
    """Sentence splitting and normalisation the way ``lang`` writes text."""
    return Segmenter(profile=segment_profile(lang.code), normalizer=normalizer_for(lang.code))
