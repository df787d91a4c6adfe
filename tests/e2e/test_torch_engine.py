"""The torch engine through its real loading and inference path, with randomly
initialised weights (the real checkpoint needs the hub, unreachable here)."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import torch
    from kokoro import KModel

    tmp = tmp_path_factory.mktemp("torch-model")
    config = tmp / "config.json"
    config.write_text(importlib.resources.files("kokoro_onnx").joinpath("config.json").read_text())
    empty = tmp / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    # An empty checkpoint leaves KModel's freshly initialised (random) weights;
    # save those in the real checkpoint layout and load them back below.
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=str(config), model=str(empty))
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(81.8e6, rel=0.01)
    weights = tmp / "random.pth"
    torch.save({k: getattr(model, k).state_dict() for k in ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")}, weights)
    assert json.loads(config.read_text())["vocab"]
    return weights, config


def test_torch_engine_audio_matches_durations_and_words_are_timed(random_checkpoint, synth) -> None:  # type: ignore[no-untyped-def]
    from kokorod.engine import load_engine
    from kokorod.engine.base import SAMPLES_PER_FRAME
    from kokorod.speech.synthesizer import Synthesizer

    weights, config = random_checkpoint
    engine = load_engine("torch", cache_dir=Path("/nonexistent"), model_path=weights, config_path=config, device="cpu")
    assert engine.name == "torch"
    pack = synth.voices.pack("af_heart")
    ids = [0, *(engine.vocab[c] for c in "hˈɛlO"), 0]
    out = engine.run(ids, synth.voices.style_for(pack, 5), 1.0)
    assert out.audio.shape[0] == int(out.durations.sum()) * SAMPLES_PER_FRAME
    torch_synth = Synthesizer(engine, synth.voices, synth.g2p)
    chunk = torch_synth.synthesize("Hello there friend.")
    assert [w.text for w in chunk.words] == ["Hello", "there", "friend"]
    starts = [w.start for w in chunk.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= chunk.samples for w in chunk.words)


def test_missing_torch_files_give_a_clear_error() -> None:
    from kokorod.engine import load_engine
    from kokorod.errors import AssetError

    with pytest.raises(AssetError, match="not found"):
        load_engine("torch", cache_dir=Path("/nonexistent"), model_path=Path("/nope.pth"), config_path=None)
