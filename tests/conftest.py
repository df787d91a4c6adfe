"""Shared fixtures. The real model is loaded once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth():  # type: ignore[no-untyped-def]
    """The real Synthesizer over the offline ONNX model (assets from `kokorod fetch`)."""
    from kokorod.runtime import EngineOptions, build_synthesizer

    return build_synthesizer(EngineOptions())
