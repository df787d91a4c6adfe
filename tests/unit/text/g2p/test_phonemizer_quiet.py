"""phonemizer's "words count mismatch" (benign where kokorod calls it) is not
logged; its other warnings are."""

from __future__ import annotations

import logging

import pytest

from kokorod.text.g2p.espeak import quiet_word_count_mismatch


def test_only_the_word_count_warning_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    quiet_word_count_mismatch()
    quiet_word_count_mismatch()  # idempotent
    logger = logging.getLogger("phonemizer")
    assert sum(isinstance(f, logging.Filter) and type(f).__name__ == "_BenignMismatch" for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="phonemizer"):
        logger.warning("words count mismatch on %s%% of the lines (%s/%s)", 100.0, 1, 1)
        logger.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]
