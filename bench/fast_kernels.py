#!/usr/bin/env python3
"""The fast kernels (kokorod/engine/fast_ops.py: Snake without ``Sin``) against
the export's nodes, in one run.

Two ONNX engines with today's trimmed decoding, one with ``kernels="export"``
(before) and one with ``kernels="fast"`` (after), on the same ids and style for
the 21 sentences of bench/trim_silence.py (English 1 to 40 words, es, fr, it,
pt-br, ja, zh, hi). Quality, on the audio after the seam shaper: DNSMOS OVRL
and SIG, the recogniser's WER/CER (Whisper tiny.en for English, base for the
rest), durations equal, and the SNR between the two (the int8 graph quantises
every activation dynamically, so a last-bit change anywhere moves later
roundings: the SNR says how far, the judges whether it matters). DNSMOS's own
noise is the before audio moved by 2 ms. Speed: wall and process time of the
two alternated ``--reps`` times on the timed English chunks and the bench's
first chunks; the saving is the median of per-pair ratios, so other load hits
both alike.

    PYTHONPATH=. .venv/bin/python bench/fast_kernels.py
    PYTHONPATH=. .venv/bin/python bench/fast_kernels.py --no-quality --reps 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from trim_silence import (  # noqa: E402
    SENTENCES, TIMED, dnsmos, heard_error, ids_and_style, machine_model_and_synth, shaped,
)

# Short first chunks as the ramp cuts them (bench/first_audio.py's paragraphs).
FIRST_CHUNKS = [("first chunk 1", "en-us", "af_heart", "The library"),
                ("first chunk 2", "en-us", "af_heart", "Our quarterly results"),
                ("first chunk 3", "en-us", "af_heart", "To reset your password,")]


def timed_pair(engines: dict[str, Any], ids: list[int], style: np.ndarray, reps: int) -> dict[str, float]:
    """Median over ``reps`` alternated runs: each engine's wall and CPU ms, and
    the after/before ratios of the pairs."""
    walls: dict[str, list[float]] = {k: [] for k in engines}
    cpus: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(reps):
        for name, engine in engines.items():
            w, c = time.perf_counter(), time.process_time()
            engine.run(ids, style, 1.0)
            walls[name].append(1000 * (time.perf_counter() - w))
            cpus[name].append(1000 * (time.process_time() - c))
    return {
        "wall_export_ms": statistics.median(walls["export"]), "wall_fast_ms": statistics.median(walls["fast"]),
        "cpu_export_ms": statistics.median(cpus["export"]), "cpu_fast_ms": statistics.median(cpus["fast"]),
        "wall_ratio": statistics.median(p / e for p, e in zip(walls["fast"], walls["export"])),
        "cpu_ratio": statistics.median(p / e for p, e in zip(cpus["fast"], cpus["export"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="alternated export/fast timings per timed chunk")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-quality", action="store_true", help="skip WER/CER and DNSMOS (speed and SNR only)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    from kokorod.engine.onnx_engine import OnnxEngine
    from kokorod.engine.trim import DEFAULT_CONTEXT_FRAMES
    from kokorod.speech.chunk import SpeechChunk
    from kokorod.speech.seams import shape_chunk

    info, model, synth = machine_model_and_synth()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kernels-bench-") as cache:
        engines = {kernels: OnnxEngine(model, threads=args.threads, cache_dir=Path(cache),
                                     trim_context=DEFAULT_CONTEXT_FRAMES, kernels=kernels)
                   for kernels in ("export", "fast")}
        for label, lang, voice, text in [*SENTENCES, *FIRST_CHUNKS]:
            ids, style = ids_and_style(synth, text, voice, lang)
            before, after = (engines[k].run(ids, style, 1.0) for k in ("export", "fast"))
            diff = before.audio.astype(np.float64) - after.audio
            row: dict[str, Any] = {
                "label": label, "lang": lang,
                "durations_equal": bool(np.array_equal(before.durations, after.durations)),
                "snr_db": float(10 * np.log10(np.sum(before.audio.astype(np.float64) ** 2) / max(1e-30, np.sum(diff ** 2)))),
            }
            if not args.no_quality and not label.startswith("first chunk"):
                a, b = shaped(before.audio), shaped(after.audio)
                row["err_export"], row["err_fast"] = heard_error(a, text, lang), heard_error(b, text, lang)
                (row["ovrl_export"], row["sig_export"]), (row["ovrl_fast"], row["sig_fast"]) = dnsmos(a), dnsmos(b)
                moved = shape_chunk(SpeechChunk(before.audio, []), lead_in_samples=48, pause_samples=0).audio
                row["ovrl_control"] = dnsmos(moved)[0]  # DNSMOS's own noise: the same audio 2 ms later
            if label in TIMED or label.startswith("first chunk"):
                row.update(timed_pair(engines, ids, style, args.reps))
            rows.append(row)
            print("  " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
    judged = [r for r in rows if "ovrl_export" in r]
    print("\nsummary (after = fast, before = export)")
    print(f"durations equal on {sum(r['durations_equal'] for r in rows)}/{len(rows)}; "
          f"SNR after vs before {min(r['snr_db'] for r in rows):.1f}..{max(r['snr_db'] for r in rows):.1f} dB")
    if judged:
        d_ovrl = [r["ovrl_fast"] - r["ovrl_export"] for r in judged]
        d_sig = [r["sig_fast"] - r["sig_export"] for r in judged]
        ctrl = [r["ovrl_control"] - r["ovrl_export"] for r in judged]
        print(f"DNSMOS OVRL delta mean {statistics.mean(d_ovrl):+.3f}, worst {min(d_ovrl):+.3f}, best {max(d_ovrl):+.3f} "
              f"(control, the same audio 2 ms later: mean |delta| {statistics.mean(abs(c) for c in ctrl):.3f}, "
              f"worst {min(ctrl):+.3f}); SIG delta mean {statistics.mean(d_sig):+.3f}, worst {min(d_sig):+.3f}")
        for lang in sorted({r["lang"] for r in judged}):
            sel = [r for r in judged if r["lang"] == lang]
            print(f"  {lang}: OVRL {statistics.mean(r['ovrl_export'] for r in sel):.3f} -> "
                  f"{statistics.mean(r['ovrl_fast'] for r in sel):.3f}, error summed "
                  f"{sum(r['err_export'] for r in sel):.2f} -> {sum(r['err_fast'] for r in sel):.2f}")
        print(f"recogniser error summed {sum(r['err_export'] for r in judged):.2f} -> "
              f"{sum(r['err_fast'] for r in judged):.2f}; worse on "
              f"{sum(r['err_fast'] > r['err_export'] + 1e-9 for r in judged)}, better on "
              f"{sum(r['err_fast'] < r['err_export'] - 1e-9 for r in judged)} of {len(judged)}")
    for r in rows:
        if "wall_ratio" in r:
            print(f"{r['label']:14s} wall {r['wall_export_ms']:.0f} -> {r['wall_fast_ms']:.0f} ms "
                  f"(x{r['wall_ratio']:.3f}), CPU {r['cpu_export_ms']:.0f} -> {r['cpu_fast_ms']:.0f} ms "
                  f"(x{r['cpu_ratio']:.3f})")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
