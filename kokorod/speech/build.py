"""Building a ready-to-use Synthesizer from user options (shared by CLI and daemon)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kokorod.assets.paths import resolve_cache_dir
from kokorod.assets.voices import VoiceStore
from kokorod.speech.synthesizer import Synthesizer


@dataclass
class EngineOptions:
    engine: str = "auto"
    cache_dir: str | None = None
    model: str | None = None
    config: str | None = None
    device: str = "auto"
    threads: int | None = None
    dequantize: str | None = None     # ONNX: "none" | "conv" (None: $KOKOROD_ONNX_DEQUANTIZE, else "none")
    graph_cache: bool | None = None   # ONNX: cache the optimised graph (None: on unless $KOKOROD_ONNX_GRAPH_CACHE=0)
    trim_silence: str | None = None   # ONNX: "off" or context frames K (None: $KOKOROD_ONNX_TRIM_SILENCE, else on)
    # auto: measure the ONNX candidates when no record of them exists (the
    # daemon does, after it is ready: "later"; "now" before returning;
    # one-shot commands never: a record or int8), and exclude those whose
    # resident growth times ``workers`` exceeds ``max_rss_mb``.
    measure: str = "never"
    workers: int = 1
    max_rss_mb: float | None = None

    @classmethod
    def from_args(cls, args: Any, *, threads: int | None = None) -> "EngineOptions":
        """From the command line's engine group (every command that loads a model:
        serve, say, pipe): one place, so a new engine flag reaches all of them."""
        return cls(engine=args.engine, cache_dir=args.cache_dir, model=args.model, config=args.config,
                   device=args.device, threads=threads, trim_silence=getattr(args, "trim_silence", None))


def build_synthesizer(opts: EngineOptions) -> Synthesizer:
    """The engine and voices now; the G2Ps on first use (the daemon's warm-up).

    With the ONNX engine torch is never imported: spaCy's English pipeline is
    loaded with torch blocked (``load_nlp(without_torch=True)``), the only way
    it reached this process (spaCy → thinc → torch)."""
    import functools

    from kokorod.engine import load_engine
    from kokorod.text.g2p import G2PBank
    from kokorod.text.g2p.english import load_nlp

    cache = resolve_cache_dir(opts.cache_dir)
    store = VoiceStore(cache / "voices")
    store.ensure_available()

    def load(kind: str) -> Any:
        return load_engine(
            kind,
            cache_dir=cache,
            model_path=Path(opts.model) if opts.model else None,
            config_path=Path(opts.config) if opts.config else None,
            device=opts.device,
            threads=opts.threads,
            dequantize=opts.dequantize,
            graph_cache=opts.graph_cache,
            trim_silence=opts.trim_silence,
        )

    choice, engine = _choose(opts, cache, store, load)
    if engine is None:
        engine = load(choice.name if choice is not None else opts.engine)
    if choice is not None and hasattr(engine, "choice"):
        engine.choice = choice
    g2p = G2PBank(nlp_loader=functools.partial(load_nlp, without_torch=engine.name != "torch"), cache_dir=cache)
    return Synthesizer(engine, store, g2p)


def _choose(opts: EngineOptions, cache: Path, store: VoiceStore, load: Any) -> tuple[Any, Any]:
    """(Choice, engine already loaded or None) for the ONNX engines; (None,
    None) for torch or a custom model file (nothing to choose among)."""
    import os

    from kokorod.engine import DEQUANTIZE_ENV, trim_context
    from kokorod.engine.selection import VOICE, choose_engine, forced

    if opts.engine == "onnx" and (opts.dequantize or os.environ.get(DEQUANTIZE_ENV) or "none") == "conv":
        return forced("onnx-fp32"), None  # what $KOKOROD_ONNX_DEQUANTIZE=conv always meant
    if opts.engine in ("onnx", "onnx-fp32", "openvino-split"):
        return forced(opts.engine), None
    if opts.engine != "auto" or opts.model or opts.dequantize or os.environ.get(DEQUANTIZE_ENV):
        return None, None  # torch, a custom model, or a dequantisation asked for by name
    pack = store.pack(VOICE)
    return choose_engine(cache, build=load, style_for=lambda n: store.style_for(pack, n), threads=opts.threads,
                         trim_context=trim_context(opts.trim_silence), workers=opts.workers,
                         max_rss_mb=opts.max_rss_mb, measure_now=opts.measure != "never",
                         defer=opts.measure == "later")
