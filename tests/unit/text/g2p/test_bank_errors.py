"""A language that fails to load names its fix once (the CLI prints it on one line)."""

from __future__ import annotations

import pytest

from kokorod.errors import AssetError
from kokorod.text.g2p.bank import G2PBank, LanguageUnavailable
from kokorod.text.languages import resolve


def test_an_asset_error_while_building_is_reported_with_its_fix_once(monkeypatch: pytest.MonkeyPatch) -> None:
    bank = G2PBank()
    lang = resolve("en-us")
    monkeypatch.setattr(bank, "unavailable", lambda _lang: None)

    def broken(_lang: object) -> None:
        raise AssetError("spaCy's English pipeline is not installed", "pip install the-pipeline")

    monkeypatch.setattr(bank, "_build", broken)
    with pytest.raises(LanguageUnavailable) as caught:
        bank.get(lang)
    assert caught.value.fix == "pip install the-pipeline"
    assert str(caught.value).count("pip install the-pipeline") == 1
    assert "spaCy's English pipeline is not installed" in caught.value.message
