"""The ONNX path's footprint in a fresh process: torch is never imported, and a
start with a cached optimised graph does not import the ``onnx`` package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kokorod.assets.model import MODEL_FILENAME
from kokorod.assets.paths import default_cache_dir

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent("""
    import json, sys
    from kokorod.speech.build import EngineOptions, build_synthesizer
    synth = build_synthesizer(EngineOptions(engine="onnx"))
    chunk = synth.synthesize("The quick brown fox jumps over the lazy dog.", voice="af_heart")
    print(json.dumps({
        "samples": int(chunk.samples),
        "words": [w.text for w in chunk.words],
        "loaded_from_cache": synth.engine.loaded_from_cache,
        "imported": sorted(m for m in ("torch", "transformers", "spacy_curated_transformers", "onnx", "kokoro_onnx")
                           if m in sys.modules),
    }))
""")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The real model and voices, and an empty optimised-graph cache."""
    real = default_cache_dir()
    if not (real / MODEL_FILENAME).is_file():
        pytest.skip("model not assembled (kokorod fetch)")
    (tmp_path / MODEL_FILENAME).symlink_to(real / MODEL_FILENAME)
    (tmp_path / "voices").symlink_to(real / "voices")
    return tmp_path


def probe(cache_dir: Path) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "KOKOROD_CACHE_DIR": str(cache_dir)}
    env.pop("KOKOROD_ONNX_GRAPH_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_onnx_synthesis_never_imports_torch_and_reuses_its_graph(cache_dir: Path) -> None:
    first = probe(cache_dir)
    assert first["samples"] > 24_000
    assert first["words"][:3] == ["The", "quick", "brown"]
    assert not first["loaded_from_cache"]
    assert "torch" not in first["imported"]
    assert not {"transformers", "spacy_curated_transformers", "kokoro_onnx"} & set(first["imported"])
    assert list((cache_dir / "onnx").glob("kokoro-*.onnx"))

    second = probe(cache_dir)
    assert second["loaded_from_cache"]
    assert second["imported"] == []  # neither torch nor onnx
    assert second["samples"] == first["samples"]
