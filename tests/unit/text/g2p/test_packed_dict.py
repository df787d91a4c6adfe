"""The packed lexicon answers every read misaki does exactly as its dicts do."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from kokorod.text.g2p.packed_dict import PackedDict

SAMPLE = {
    "read": {"DEFAULT": "ɹˈid", "VBD": "ɹˈɛd", "VBN": "ɹˈɛd", "VBP": "ɹˈid", "None": None},
    "Read": "ɹˈid", "a": "ɐ", "ab": "ˈæb", "abc": "ˌAbˌisˈi", "café": "kæfˈA", "caf": "kˈæf",
    "internationalization": "ˌɪntəɹnˌæʃənəlɪzˈAʃən", "internationalize": "ˌɪntəɹnˈæʃənəlˌIz",
    "internationally": "ˌɪntəɹnˈæʃənəli", "empty": "", "日本": "nʲihoɴ", "😀x": "smile",
}


def _roundtrip(tmp_path: Path, source: dict[str, object]) -> PackedDict:
    path = tmp_path / "lex.packed"
    PackedDict.pack(source).save(path)
    return PackedDict.open(path)


@pytest.mark.parametrize("where", ["memory", "mapped"])
def test_every_read_matches_the_dict(tmp_path: Path, where: str) -> None:
    packed = PackedDict.pack(SAMPLE) if where == "memory" else _roundtrip(tmp_path, SAMPLE)
    assert len(packed) == len(SAMPLE)
    assert sorted(packed) == sorted(SAMPLE)
    for key, value in SAMPLE.items():
        assert key in packed and packed[key] == value and packed.get(key) == value
    # keys sharing an 8-byte prefix with present ones, shorter, longer, other types
    for missing in ("internat", "internationalizations", "interna", "", "READ", "cafe", "😀", "a\udc80", 7, None):
        assert missing not in packed and packed.get(missing) is None  # type: ignore[call-overload]
    with pytest.raises(KeyError):
        packed["internationalizationz"]


def test_empty_mapping(tmp_path: Path) -> None:
    packed = _roundtrip(tmp_path, {})
    assert len(packed) == 0 and "a" not in packed and list(packed) == []


def test_a_damaged_file_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "lex.packed"
    PackedDict.pack(SAMPLE).save(path)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError):
        PackedDict.open(path)
    path.write_bytes(b"something else\n")
    with pytest.raises(ValueError):
        PackedDict.open(path)


def test_the_mapped_file_is_read_only(tmp_path: Path) -> None:
    packed = _roundtrip(tmp_path, SAMPLE)
    assert isinstance(packed._buffer, mmap.mmap)
    with pytest.raises(TypeError):
        packed["a"] = "x"  # type: ignore[index]
