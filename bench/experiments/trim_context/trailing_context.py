#!/usr/bin/env python3
"""Trimmed decoding with a shorter *trailing* context than leading context.

``kokorod/engine/trim.py`` keeps ``DEFAULT_CONTEXT_FRAMES`` (8) frames of
silence on both edges of a run. The trailing edge of this export is only 4-10
frames long, so K=8 trims almost nothing there, and every run still decodes
about 16 frames beyond its speech: a quarter to a third of a short first
chunk's decoder time. This asks whether the trailing edge needs all 8.

It runs ``bench/trim_silence.py`` unchanged, over its 21 sentences (English,
es, fr, it, pt-br, ja, zh, hi), with one change to how a run is planned: a
context ``K >= 100`` means ``K // 100`` frames before the speech and
``K % 100`` after it (``804``: lead 8, trail 4), and ``K >= 1000`` also
counts the last sounding token's frames beyond its first ``K // 1000`` as
trailing silence (``8802``: the last phoneme capped at 8 frames, lead 8, trail
2). Kokoro gives a chunk's last phoneme 9-29 frames, most of them its decay
into silence; the cap asks whether the decoder needs them. Everything is judged as that
bench judges it (the recogniser's error, DNSMOS OVRL/SIG against the full
decode, speech level, CPU).

    .venv/bin/python bench/experiments/trim_context/trailing_context.py --contexts 8,804,802,604 --reps 3
    .venv/bin/python bench/experiments/trim_context/trailing_context.py --contexts 802,10802,8802,6802 --reps 3
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Collection, Sequence

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[3]
for extra in (ROOT, ROOT / "bench", ROOT / "tests"):
    sys.path.insert(0, str(extra))

import kokorod.engine.onnx_engine as onnx_engine  # noqa: E402
from kokorod.engine import trim  # noqa: E402


def plan_edges(token_ids: Sequence[int], durations: npt.ArrayLike, silent: Collection[int],
               context_frames: int, _engine_trail: int | None = None) -> trim.TrimPlan:
    """``trim.plan_trim`` with separate lead and trail contexts (see the module docstring)."""
    if context_frames < 100:  # the same K on both edges, as before the trailing context was shortened
        return trim.plan_trim(token_ids, durations, silent, context_frames, context_frames)
    cap, rest = divmod(context_frames, 1000)
    lead_k, trail_k = divmod(rest, 100)
    plan = trim.plan_trim(token_ids, durations, silent, lead_k, trail_k)
    d = np.asarray(durations, dtype=np.int64).reshape(-1)
    last = next((i for i in range(len(token_ids) - 1, -1, -1) if token_ids[i] not in silent), None)
    if not cap or last is None:
        return plan
    # The last sounding token's frames past the cap join the trailing edge.
    lead, trail = trim.edge_frames(token_ids, durations, silent)
    trail += max(0, int(d[last]) - cap)
    end = plan.total_frames - max(0, trail - trail_k)
    return trim.TrimPlan(plan.start_frame, max(end, plan.start_frame), plan.total_frames)


if __name__ == "__main__":
    onnx_engine.plan_trim = plan_edges  # type: ignore[assignment]  # the engine plans through this name
    import trim_silence

    trim_silence.main()
