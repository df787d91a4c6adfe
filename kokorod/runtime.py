"""Building a ready-to-use Synthesizer from user options (shared by CLI and daemon)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kokorod.assets.paths import resolve_cache_dir
from kokorod.assets.voices import VoiceStore
from kokorod.synthesizer import Synthesizer


@dataclass
class EngineOptions:
    engine: str = "auto"
    cache_dir: str | None = None
    model: str | None = None
    config: str | None = None
    device: str = "auto"
    threads: int | None = None


def build_synthesizer(opts: EngineOptions) -> Synthesizer:
    from kokorod.engine import load_engine

    cache = resolve_cache_dir(opts.cache_dir)
    store = VoiceStore(cache / "voices")
    store.ensure_available()
    engine = load_engine(
        opts.engine,
        cache_dir=cache,
        model_path=Path(opts.model) if opts.model else None,
        config_path=Path(opts.config) if opts.config else None,
        device=opts.device,
        threads=opts.threads,
    )
    return Synthesizer(engine, store)
