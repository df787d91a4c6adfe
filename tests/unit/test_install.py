"""The install stays lean: nothing the daemon needs pulls torch."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from kokorod.assets.doctor import engine_checks

ROOT = Path(__file__).resolve().parents[2]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\s]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_the_runtime_dependencies_pull_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _names(project["dependencies"])
    # torch itself, kokoro (depends on torch) and misaki[en] (its
    # spacy-curated-transformers depends on an unpinned torch).
    assert not runtime & {"torch", "kokoro", "misaki[en]", "spacy-curated-transformers"}
    assert {"misaki", "spacy", "phonemizer-fork", "espeakng-loader", "num2words"} <= runtime
    # The torch engine is an extra, with torch pinned (unpinned: GBs of CUDA wheels).
    assert "torch==2.13.0" in project["optional-dependencies"]["torch"]


def test_doctor_names_the_engines_and_never_fails_on_the_optional_one() -> None:
    checks = {c.name: c for c in engine_checks()}
    assert checks["engine onnx"].ok and "onnxruntime" in checks["engine onnx"].detail
    assert checks["engine torch"].ok  # optional: reported, never a fault
    assert "torch" in checks["engine torch"].detail
