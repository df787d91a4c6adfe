#!/usr/bin/env python3
"""--engine auto's candidates against int8, in one run, on this machine.

Prints the machine first. Then, per candidate engine (int8 = ``onnx``, fp32
convolutions = ``onnx-fp32``, and later OpenVINO): its resident growth when
loaded, and on every sentence of bench/trim_silence.py (English 1-40 words,
es, fr, it, pt-br, ja, zh, hi): durations equal to int8's, the gate's log-mel
distance (kokorod/engine/gate.py), DNSMOS OVRL/SIG (speechmos) of both. CPU:
process time per second of audio of the candidates' runs alternated ``--reps``
times on every sentence; the ratio is the median of per-pair ratios, so load
from other processes hits both alike. Last, what ``choose`` makes of the
warm-up's own measurement (kokorod/engine/measure.py) here.

    PYTHONPATH=. .venv/bin/python bench/engine_choice.py --cache-dir /tmp/kokorod-bench-cache
    PYTHONPATH=. .venv/bin/python bench/engine_choice.py --reps 1 --no-dnsmos

``--cache-dir`` receives the candidates' optimised graphs (the first run builds
the fp32 one: a minute on a loaded 2-core machine); it defaults to the asset
cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--candidates", default="onnx,onnx-fp32")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-dnsmos", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    from machine import cpu_info
    from trim_silence import SENTENCES

    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.assets.voices import VoiceStore
    from kokorod.engine import load_engine
    from kokorod.engine.choice import choose
    from kokorod.engine.gate import log_mel_distance
    from kokorod.engine.measure import measure, resident_bytes
    from kokorod.heap import release_free_heap
    from kokorod.speech.synthesizer import Synthesizer
    from kokorod.text.g2p import G2PBank
    from kokorod.text.languages import resolve

    machine = cpu_info()
    print(json.dumps({"machine": machine}))
    cache = resolve_cache_dir(args.cache_dir)
    names = args.candidates.split(",")
    store = VoiceStore(cache / "voices")
    g2p = G2PBank(cache_dir=cache)

    def build(name: str) -> Any:
        return load_engine(name, cache_dir=cache, threads=args.threads)

    # The warm-up's own measurement (its sentences, its rounds) and the choice it leads to.
    pack = store.pack("af_heart")
    measured, engines = measure(names, build, lambda n: store.style_for(pack, n))
    choice = choose(measured, source="measured")
    print(json.dumps({"warmup_measurement": choice.to_dict()}))
    synths = {name: Synthesizer(engines[name], store, g2p) for name in names}

    rows: list[dict[str, Any]] = []
    for label, lang, voice, text in SENTENCES:
        outs: dict[str, Any] = {}
        for name, synth in synths.items():
            chunk = synth.synthesize(text, voice=voice, lang=resolve(lang))
            outs[name] = chunk
        ref = outs[names[0]]
        row: dict[str, Any] = {"label": label, "audio_s": round(ref.samples / 24000, 2)}
        for name in names:
            a = outs[name].audio
            row[name] = {"log_mel_db": round(log_mel_distance(ref.audio, a), 2),
                         "durations_equal": [w.start for w in outs[name].words] == [w.start for w in ref.words]
                         and a.size == ref.audio.size}
            if not args.no_dnsmos:
                from asr_support import dnsmos

                score = dnsmos(a)
                row[name].update(ovrl=round(score["ovrl"], 3), sig=round(score["sig"], 3))
        # CPU per audio second, alternated.
        ratios: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(args.reps):
            per: dict[str, float] = {}
            for name, synth in synths.items():
                started = time.process_time()
                chunk = synth.synthesize(text, voice=voice, lang=resolve(lang))
                per[name] = (time.process_time() - started) / (chunk.samples / 24000)
            for name in names:
                ratios[name].append(per[name] / per[names[0]])
            row.setdefault("cpu_per_audio_s", {n: [] for n in names})
            for name in names:
                row["cpu_per_audio_s"][name].append(round(per[name], 3))
        row["cpu_ratio_median"] = {n: round(statistics.median(r), 3) for n, r in ratios.items()}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False))
    summary: dict[str, Any] = {"machine": machine, "warmup_measurement": choice.to_dict(), "sentences": len(rows)}
    for name in names:
        dbs = [r[name]["log_mel_db"] for r in rows]
        summary[name] = {
            "cpu_ratio_median_of_medians": round(statistics.median(r["cpu_ratio_median"][name] for r in rows), 3),
            "log_mel_db_max": max(dbs), "durations_equal_all": all(r[name]["durations_equal"] for r in rows),
            "rss_mb": round(next(m.rss_bytes for m in measured if m.name == name) / 2**20),
        }
        if not args.no_dnsmos:
            summary[name].update(
                ovrl_mean=round(statistics.mean(r[name]["ovrl"] for r in rows), 3),
                sig_mean=round(statistics.mean(r[name]["sig"] for r in rows), 3),
                ovrl_max_abs_diff_vs_first=round(max(abs(r[name]["ovrl"] - r[names[0]]["ovrl"]) for r in rows), 3))
    del engines, synths
    release_free_heap()
    summary["rss_after_mb"] = round(resident_bytes() / 2**20)
    print(json.dumps({"summary": summary}))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
