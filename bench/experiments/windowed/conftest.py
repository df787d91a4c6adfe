"""The experiment's own fixture (tests/conftest.py does not reach here: this
directory is outside ``make test``'s testpaths on purpose)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import windowed` in any import mode


@pytest.fixture(scope="session")
def synth() -> Any:
    """The real Synthesizer over the offline ONNX model (assets from `kokorod fetch`)."""
    from kokorod.speech.build import EngineOptions, build_synthesizer

    return build_synthesizer(EngineOptions())
