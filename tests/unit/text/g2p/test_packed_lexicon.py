"""misaki's English lexicon with packed words reads every word as misaki's own does."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("misaki.en")
from misaki import en  # noqa: E402

from kokorod.text.g2p.packed_dict import PackedDict  # noqa: E402
from kokorod.text.g2p.packed_lexicon import PACKED_DIR, misaki_lexicon  # noqa: E402


@pytest.fixture(scope="module")
def plain() -> en.Lexicon:
    return en.Lexicon(False)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> en.Lexicon:
    return misaki_lexicon(False, tmp_path_factory.mktemp("cache"))


def test_it_keeps_every_attribute_misaki_sets(plain: en.Lexicon, packed: en.Lexicon) -> None:
    # A misaki release that adds state to Lexicon.__init__ must fail here, not at run time.
    assert set(vars(plain)) == set(vars(packed))
    assert isinstance(packed.golds, PackedDict) and isinstance(packed.silvers, PackedDict)


def test_words_read_the_same(plain: en.Lexicon, packed: en.Lexicon) -> None:
    words = random.Random(7).sample(sorted(plain.golds), 3000) + random.Random(8).sample(sorted(plain.silvers), 3000)
    words += ["read", "Read", "used", "the", "NASA", "running", "dogs", "walked", "zzyzx", "café", "Kokoro"]
    for word in words:
        assert packed.golds.get(word) == plain.golds.get(word)
        assert packed.silvers.get(word) == plain.silvers.get(word)
        for tag in (None, "NN", "VBD"):
            ctx = en.TokenContext()
            assert packed.get_word(word, tag, None, ctx) == plain.get_word(word, tag, None, ctx)


def test_the_second_load_maps_the_cached_file(tmp_path: Path) -> None:
    misaki_lexicon(False, tmp_path)
    files = sorted((tmp_path / PACKED_DIR).glob("*.packed"))
    assert len(files) == 2  # gold and silver
    again = misaki_lexicon(False, tmp_path)
    assert "hello" in again.golds
    files[0].write_bytes(b"damaged")
    assert "hello" in misaki_lexicon(False, tmp_path).golds  # rebuilt, not fatal


def test_no_cache_dir_keeps_misakis_dicts() -> None:
    assert isinstance(misaki_lexicon(False, None).golds, dict)
