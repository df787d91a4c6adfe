"""The measured candidates, kept beside the graph cache so later starts skip measuring.

A record is ``<cache>/onnx/engine-choice-<digest>.json``: the key (everything
that changes an engine's speed or audio) and the candidates' figures. The
choice itself is re-derived from the figures at every start (kokorod.engine.
choice), so a changed memory bound or gate applies without measuring again;
a changed key (another model, onnxruntime, CPU, thread count, trim setting
or candidate list) finds no record and measures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any

from kokorod.engine.choice import Measured
from kokorod.engine.onnx_graph import GRAPH_CACHE_DIR, GRAPH_EDIT_VERSION, TRIM_EDIT_VERSION, _atomic_write_text, cpu_isa
from kokorod.engine.trim import trail_context

log = logging.getLogger("kokorod.engine")

RECORD_VERSION = 2  # bump when what is measured, or how, changes (2: growth after a long input too)
RECORD_KEEP = 6     # records kept (least recently used go), like the graph cache


def cpu_model() -> str:
    """The CPU's model name: two CPUs with the same flags can differ in speed
    ratios between kernels (an AMD EPYC and an Intel Xeon, both AVX-512)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def choice_key(*, model_sha256: str, threads: int | None, trim_context: int | None,
               candidates: tuple[str, ...]) -> dict[str, str]:
    import onnxruntime as ort

    key = {
        "record": str(RECORD_VERSION),
        "model_sha256": model_sha256,
        "graph_edit": str(GRAPH_EDIT_VERSION),
        # The trailing context is part of the setting: it changes every run's cost.
        "trim": "off" if trim_context is None else f"{trim_context}+{trail_context(trim_context)}/{TRIM_EDIT_VERSION}",
        "onnxruntime": ort.__version__,
        "cpu_model": cpu_model(),
        "cpu": cpu_isa(),
        "threads": "default" if threads is None else str(threads),
        "candidates": ",".join(candidates),
    }
    if "openvino-split" in candidates:  # its kernels, and so its speed and audio, are OpenVINO's
        from importlib.metadata import version

        key["openvino"] = version("openvino")
    return key


def record_path(cache_dir: Path, key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / GRAPH_CACHE_DIR / f"engine-choice-{digest}.json"


def load_record(cache_dir: Path, key: dict[str, str]) -> list[Measured] | None:
    """The figures recorded under ``key``, or None (none, unreadable, or another key)."""
    path = record_path(cache_dir, key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:  # a digest collision or a hand-edited file
            return None
        measured = [Measured.from_dict(d) for d in data["candidates"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("engine choice record %s unusable (%s); measuring again", path, type(exc).__name__)
        return None
    with contextlib.suppress(OSError):
        path.touch()  # most recently used: kept by _prune
    return measured


def save_record(cache_dir: Path, key: dict[str, str], measured: list[Measured]) -> Path | None:
    """Write the record (atomically); a read-only cache only costs the next start a measurement."""
    path = record_path(cache_dir, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(path, json.dumps({"key": key, "candidates": [m.to_dict() for m in measured]},
                                            indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("cannot record the engine choice in %s: %s", path.parent, exc)
        return None
    _prune(path.parent)
    return path


def _prune(directory: Path, keep: int = RECORD_KEEP) -> None:
    try:
        entries = sorted(directory.glob("engine-choice-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[keep:]:
        old.unlink(missing_ok=True)


def records(cache_dir: Path) -> list[tuple[dict[str, str], list[Measured]]]:
    """Every readable record in the cache (for ``kokorod doctor``), newest first."""
    out: list[tuple[dict[str, str], list[Measured]]] = []
    try:
        paths = sorted((Path(cache_dir) / GRAPH_CACHE_DIR).glob("engine-choice-*.json"),
                       key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return out
    for path in paths:
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            out.append((dict(data["key"]), [Measured.from_dict(d) for d in data["candidates"]]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out
