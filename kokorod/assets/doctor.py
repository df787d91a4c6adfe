"""``kokorod fetch`` and ``kokorod doctor``: prepare and inspect every asset."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from kokorod.assets import model, nlp, voices
from kokorod.errors import KokorodError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def line(self) -> str:
        mark = "ok  " if self.ok else "MISSING"
        fix = f"\n        fix: {self.fix}" if self.fix and not self.ok else ""
        return f"  {mark:8s}{self.name:14s}{self.detail}{fix}"


def fetch(cache_dir: Path, *, log: "callable[[str], None]" = print) -> None:
    """Make every asset available offline; idempotent."""
    path = model.ensure_model(cache_dir)
    log(f"model   {path} (sha256 verified)")
    log(f"graph   {prepare_graph(cache_dir)}")
    voice_dir = cache_dir / "voices"
    store = voices.VoiceStore(voice_dir)
    if len(store.names()) < 54:
        count = voices.fetch_voices_npm(voice_dir)
        log(f"voices  {count} fetched into {voice_dir}")
    else:
        log(f"voices  {len(store.names())} in {voice_dir}")
    found = nlp.find_pipeline() or nlp.install_pipeline()
    log(f"spacy   {found}")


def prepare_graph(cache_dir: Path) -> str:
    """Build onnxruntime's optimised graph for this machine now, so the first
    start of the daemon loads it from the cache (a line for fetch's log)."""
    from kokorod.engine import load_engine

    try:
        engine = load_engine("onnx", cache_dir=cache_dir)
    except KokorodError as exc:
        return f"not cached: {exc.message}"
    cache = getattr(engine, "graph_cache", None)
    if cache is None:
        return "not cached ($KOKOROD_ONNX_GRAPH_CACHE=0)"
    state = "already cached" if engine.loaded_from_cache else "optimised for this CPU"  # type: ignore[attr-defined]
    return f"{cache.path} ({state})" if cache.path.is_file() else "not cached (cache directory not writable)"


def doctor(cache_dir: Path) -> list[Check]:
    checks: list[Check] = []
    try:
        parts = model.part_paths()
        checks.append(Check("model parts", True, f"{len(parts)} parts in site-packages"))
    except KokorodError as exc:
        checks.append(Check("model parts", False, exc.message, exc.fix))
    target = cache_dir / model.MODEL_FILENAME
    if target.is_file():
        try:
            model.verify_model(target)
            checks.append(Check("model", True, f"{target} (sha256 ok)"))
        except KokorodError as exc:
            checks.append(Check("model", False, exc.message, exc.fix))
    else:
        checks.append(Check("model", False, f"{target} not assembled yet", "kokorod fetch (or just use it: first use assembles it)"))
    voice_dir = cache_dir / "voices"
    names = voices.VoiceStore(voice_dir, fetch_missing=False).names()
    npm = shutil.which("npm")
    checks.append(Check(
        "voices", len(names) > 0, f"{len(names)} in {voice_dir}",
        "kokorod fetch" if npm else "install npm (Node.js), then run: kokorod fetch",
    ))
    checks.append(Check("npm", npm is not None, npm or "not found", "install Node.js/npm (needed once, to fetch voices)"))
    found = nlp.find_pipeline()
    checks.append(Check("spacy model", found is not None, found or "en_core_web_sm not installed", nlp.PIP_FIX))
    try:
        import espeakng_loader

        checks.append(Check("espeak-ng", True, espeakng_loader.get_library_path()))
    except Exception as exc:  # report, never crash the doctor
        checks.append(Check("espeak-ng", False, str(exc), "pip install espeakng-loader"))
    checks.extend(engine_checks())
    checks.extend(Check(*line) for line in engine_choice_lines(cache_dir))  # kokorod.engine.selection
    checks.extend(language_checks())
    return checks


def engine_checks() -> list[Check]:
    """Which engines can run here. The torch engine is optional (an extra), so
    its absence is reported, not counted as a fault."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    ort = installed("onnxruntime")
    out = [Check("engine onnx", ort is not None, f"onnxruntime {ort} (the default)" if ort else "onnxruntime missing",
                 "pip install onnxruntime")]
    torch, kokoro = installed("torch"), installed("kokoro")
    if torch and kokoro and importlib.util.find_spec("kokoro") is not None:
        out.append(Check("engine torch", True, f"torch {torch}, kokoro {kokoro} (--engine torch)"))
    else:
        out.append(Check("engine torch", True, "not installed (optional: pip install 'kokorod[torch]')"))
    return out


def engine_choice_lines(cache_dir: Path) -> list[tuple[str, bool, str]]:
    """--engine auto's candidates here and the choices recorded for this CPU."""
    try:
        from kokorod.engine.selection import doctor_lines

        return doctor_lines(cache_dir)
    except Exception as exc:  # report, never crash the doctor (e.g. onnxruntime missing)
        return [("engine choice", False, f"{type(exc).__name__}: {exc}")]


def language_checks() -> list[Check]:
    """One line per language: can its G2P's packages be imported here?"""
    from kokorod.text.languages import LANGUAGES, missing_modules

    out = []
    for lang in LANGUAGES:
        missing = missing_modules(lang.modules)
        detail = lang.name if not missing else f"{lang.name}: missing {', '.join(missing)}"
        out.append(Check(f"lang {lang.code}", not missing, detail, lang.fix))
    return out
