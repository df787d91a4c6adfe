"""``--engine auto``: the engine this machine runs, from a record or a measurement.

When no record of this machine's candidates exists, the daemon starts on
int8 and measures after it is ready, while idle (``defer=True``: the choice
carries a ``PendingMeasure``, run by kokorod.daemon.engine_tuning), then
writes the record and switches; later starts read the record and skip
measuring. ``defer=False`` measures at once, before returning. One-shot commands (``say
--local``, ``pipe``) never measure: they use a record if one exists, else int8.
A forced engine (``--engine onnx`` / ``onnx-fp32``) is reported as forced.
``doctor_lines`` is what ``kokorod doctor`` prints of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kokorod.engine.base import Engine
from kokorod.engine.choice import REFERENCE, Choice, Measured, choose
from kokorod.engine.choice_record import RECORD_VERSION, choice_key, cpu_model, load_record, records, save_record
from kokorod.engine.conv_gemm import has_vnni
from kokorod.engine.measure import VOICE, candidate_status, measure
from kokorod.engine.onnx_graph import GRAPH_EDIT_VERSION, cpu_isa

log = logging.getLogger("kokorod.engine")


@dataclass(frozen=True)
class PendingMeasure:
    """What ``choose_engine`` would have measured, for the daemon to measure
    later: the candidates, how to build one, and where the result goes."""

    cache_dir: Path
    key: dict[str, Any]
    names: tuple[str, ...]
    build: Callable[[str], Engine]
    style_for: Callable[[int], np.ndarray]
    workers: int = 1
    max_rss_bytes: int | None = None

    def finish(self, measured: list[Measured]) -> Choice:
        """Record the figures, and the choice they lead to."""
        save_record(self.cache_dir, self.key, measured)
        choice = choose(measured, source="measured", max_rss_bytes=self.max_rss_bytes, workers=self.workers)
        log.info("engine %s", choice.summary(), extra={"event": "engine_chosen", "fields": choice.to_dict()})
        return choice


PENDING_REASON = "int8 until the candidates are measured (after ready, while idle)"


def pending_of(choice: Choice | None) -> PendingMeasure | None:
    pending = getattr(choice, "pending", None)
    return pending if isinstance(pending, PendingMeasure) else None


def forced(name: str) -> Choice:
    return Choice(name, "forced", f"--engine {name}")


def choose_engine(cache_dir: Path, *, build: Callable[[str], Engine], style_for: Callable[[int], np.ndarray],
                  threads: int | None, trim_context: int | None, workers: int = 1,
                  max_rss_mb: float | None = None, measure_now: bool = True,
                  defer: bool = False) -> tuple[Choice, Engine | None]:
    """The choice, and the chosen engine when measuring loaded it (else None:
    the caller loads ``choice.name``). ``build(name)`` loads one candidate.
    With ``defer``, no record means int8 now and a choice whose ``pending``
    (see ``pending_of``) measures later."""
    from kokorod.assets.model import MODEL_SHA256

    names = tuple(name for name, ok, _ in candidate_status() if ok)
    key = choice_key(model_sha256=MODEL_SHA256, threads=threads, trim_context=trim_context, candidates=names)
    max_rss = None if max_rss_mb is None else int(max_rss_mb * 2**20)
    recorded = load_record(cache_dir, key)
    if recorded is not None:
        choice = choose(recorded, source="cached", max_rss_bytes=max_rss, workers=workers)
        log.info("engine %s", choice.summary(), extra={"event": "engine_chosen", "fields": choice.to_dict()})
        return choice, None
    if not measure_now:
        return Choice(REFERENCE, "default", "not measured here (the daemon measures once, after ready, while idle)"), None
    pending = PendingMeasure(cache_dir, key, names, build, style_for, workers, max_rss)
    if defer:
        return Choice(REFERENCE, "pending", PENDING_REASON, pending=pending), None
    measured, engines = measure(names, build, style_for)
    choice = pending.finish(measured)
    return choice, engines.pop(choice.name)  # the others are dropped here, with their memory


def kernels_summary(isa: str | None = None, kernels: str | None = None) -> str:
    """What the ONNX engine's graph edit does on this CPU (``kernels``: the
    choice, default $KOKOROD_ONNX_KERNELS or "fast")."""
    import os

    from kokorod.engine import KERNELS_ENV

    kernels = kernels or os.environ.get(KERNELS_ENV) or "fast"
    if kernels != "fast":
        return f"{kernels}: the export's nodes ({KERNELS_ENV}={kernels})"
    isa = cpu_isa() if isa is None else isa
    convs = ("the int8 convolutions as VNNI matrix products (bit-identical)" if has_vnni(isa)
             else "the int8 convolutions as the export's (no VNNI on this CPU)")
    return f"fast: Snake without Sin; {convs}; {KERNELS_ENV}=export turns both off"


def doctor_lines(cache_dir: Path) -> list[tuple[str, bool, str]]:
    """(name, ok, detail) lines for ``kokorod doctor``: the candidates here and
    the choices recorded for this CPU (one per thread setting measured)."""
    out = [("candidate", True, f"{name}: {why}" if ok else f"{name}: not a candidate: {why}")
           for name, ok, why in candidate_status()]
    out.append(("kernels", True, kernels_summary()))
    import onnxruntime as ort

    mine = [(key, measured) for key, measured in records(cache_dir)
            if key.get("cpu") == cpu_isa() and key.get("cpu_model") == cpu_model()]
    # Records of an older graph edit, record format or onnxruntime are never
    # read again (their key cannot match): listing them as choices would show
    # figures of engines this version does not run.
    current = {"record": str(RECORD_VERSION), "graph_edit": str(GRAPH_EDIT_VERSION), "onnxruntime": ort.__version__}
    here = [(key, measured) for key, measured in mine if all(key.get(k) == v for k, v in current.items())]
    if len(here) < len(mine):
        out.append(("old records", True, f"{len(mine) - len(here)} engine choice record(s) of an older kokorod or "
                                           "onnxruntime, not used"))
    if not here:
        out.append(("auto choice", True, "not measured yet on this CPU (the daemon measures once, after it is ready, "
                                           "while idle, with --engine auto)"))
    for key, measured in here:
        choice = choose(measured, source="cached")
        out.append(("auto choice", True, f"threads {key.get('threads')}, onnxruntime {key.get('onnxruntime')}: "
                                           f"{choice.summary()}"))
    return out


__all__ = ["choose_engine", "doctor_lines", "forced", "pending_of", "PendingMeasure", "VOICE"]
