"""Asset verification: corrupt model, missing voices, voice blends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kokorod.assets import model
from kokorod.assets.voices import VOICE_BYTES, VoiceStore, voice_info
from kokorod.errors import AssetError, InputError


def test_corrupted_model_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / model.MODEL_FILENAME
    bad.write_bytes(b"not a model" * 1000)
    with pytest.raises(AssetError, match="corrupt") as info:
        model.ensure_model(tmp_path)
    assert "kokorod fetch" in (info.value.fix or "")


def test_model_assembles_from_parts_and_verifies(tmp_path: Path) -> None:
    path = model.ensure_model(tmp_path)
    assert path.stat().st_size > 90_000_000
    model.verify_model(path)
    with open(path, "r+b") as fh:  # flip one byte in the middle
        fh.seek(50_000_000)
        byte = fh.read(1)
        fh.seek(50_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(AssetError, match="corrupt"):
        model.verify_model(path)


def _write_voice(directory: Path, name: str, value: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.full(VOICE_BYTES // 4, value, dtype="<f4").tofile(directory / f"{name}.bin")


def test_missing_voice_gives_clear_error(tmp_path: Path) -> None:
    _write_voice(tmp_path, "af_one", 1.0)
    store = VoiceStore(tmp_path, fetch_missing=False)
    with pytest.raises(InputError, match="unknown voice 'af_nobody'") as info:
        store.pack("af_nobody")
    assert "kokorod voices" in (info.value.fix or "")


def test_empty_voice_dir_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AssetError) as info:
        VoiceStore(tmp_path / "none", fetch_missing=False).ensure_available()
    assert info.value.fix == "kokorod fetch"


def test_blend_weights_are_normalised(tmp_path: Path) -> None:
    _write_voice(tmp_path, "af_one", 1.0)
    _write_voice(tmp_path, "am_two", 3.0)
    store = VoiceStore(tmp_path, fetch_missing=False)
    blend = store.pack("af_one:3,am_two:1")
    assert blend.shape == (510, 1, 256)
    assert np.allclose(blend, 0.75 * 1.0 + 0.25 * 3.0)
    with pytest.raises(InputError):
        store.pack("af_one:-1")
    with pytest.raises(InputError):
        store.pack("af_one:abc")


def test_corrupt_voice_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "af_bad.bin").write_bytes(b"\0" * 100)
    with pytest.raises(AssetError, match="corrupt") as info:
        VoiceStore(tmp_path, fetch_missing=False).pack("af_bad")
    # A client sees the voice's name, never the daemon's file layout; the operator's log has the path.
    assert "af_bad" in str(info.value) and str(tmp_path) not in str(info.value)
    assert str(tmp_path / "af_bad.bin") in caplog.text


def test_style_row_follows_phoneme_count(tmp_path: Path) -> None:
    pack = np.arange(510, dtype=np.float32).repeat(256).reshape(510, 1, 256)
    assert VoiceStore.style_for(pack, 10)[0, 0] == 9
    assert VoiceStore.style_for(pack, 9999)[0, 0] == 509


def test_voice_info() -> None:
    assert voice_info("bm_george").language == "British English" and voice_info("bm_george").gender == "male"
    assert voice_info("jf_alpha").language == "Japanese" and voice_info("jf_alpha").lang == "ja"
    assert voice_info("pf_dora").lang == "pt-br"


def test_npm_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kokorod.assets import voices

    monkeypatch.setattr(voices.shutil, "which", lambda _name: None)
    with pytest.raises(AssetError, match="npm is not installed") as info:
        voices.fetch_voices_npm(tmp_path)
    assert "kokorod fetch" in (info.value.fix or "")
