#!/usr/bin/env python3
"""Which offline language detector for ``lang: "auto"``: accuracy, cost, memory.

Each candidate runs in its own child process (so its resident memory is its
own), restricted to the languages Kokoro speaks, over the sentences in
bench/lang_detect_sentences.py (50 per language, 20 of them 3-6 words). It
prints accuracy for short and long sentences, milliseconds per utterance
(median and p95, after the model is loaded), the load time, and the RSS the
detector adds.

    .venv/bin/python bench/lang_detect.py
    .venv/bin/python bench/lang_detect.py --threshold 0.5   # also: how kokorod's gate decides
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lang_detect_sentences import MIXED_ENGLISH, SENTENCES  # noqa: E402
from machine import describe  # noqa: E402

LIBS = ("lingua", "py3langid", "kokorod")


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _build(lib: str, threshold: float) -> Callable[[str], tuple[str | None, float]]:
    """A function text -> (language key as in SENTENCES or None, confidence)."""
    if lib == "lingua":
        from lingua import Language, LanguageDetectorBuilder

        names = {Language.ENGLISH: "en", Language.SPANISH: "es", Language.FRENCH: "fr", Language.HINDI: "hi",
                 Language.ITALIAN: "it", Language.PORTUGUESE: "pt", Language.JAPANESE: "ja", Language.CHINESE: "zh"}
        det = LanguageDetectorBuilder.from_languages(*names).build()

        def run(text: str) -> tuple[str | None, float]:
            top = det.compute_language_confidence_values(text)[0]
            return names[top.language], top.value
        return run
    if lib == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        ident.set_languages(["en", "es", "fr", "hi", "it", "pt", "ja", "zh"])

        def run(text: str) -> tuple[str | None, float]:
            code, prob = ident.classify(text)
            return code, float(prob)
        return run
    # kokorod's own gate: what lang "auto" does with a voice of another language
    from kokorod.text import languages
    from kokorod.text.detect import LanguageDetector

    from kokorod.text.detect import language_for

    gate = LanguageDetector(min_confidence=threshold)
    short = {"en-us": "en", "pt-br": "pt"}
    english, french = languages.BY_CODE["en-us"], languages.BY_CODE["fr"]

    def run(text: str) -> tuple[str | None, float]:
        # As lang auto decides for a voice of another language: af_heart (English),
        # or ff_siwis for text the detector calls English. Kept: None (undecided).
        found = gate.detect(text)
        if found is None:
            return None, 0.0
        voice = french if found.lang.code.startswith("en") else english
        spoken = language_for(found, voice)
        return (None if spoken == voice else short.get(spoken.code, spoken.code)), found.confidence
    return run


def child(lib: str, threshold: float) -> dict[str, Any]:
    base = _rss_kb()
    started = time.perf_counter()
    detect = _build(lib, threshold)
    detect("warm up the model")  # lazy loaders load here
    load_s = time.perf_counter() - started
    per: dict[str, dict[str, int]] = {}
    costs: list[float] = []
    wrong: list[str] = []
    for key, sentences in SENTENCES.items():
        stats = per.setdefault(key, {"short_ok": 0, "short": 0, "long_ok": 0, "long": 0, "undecided": 0})
        for i, text in enumerate(sentences):
            t = time.perf_counter()
            got, conf = detect(text)
            costs.append((time.perf_counter() - t) * 1000)
            kind = "short" if i < 20 else "long"
            stats[kind] += 1
            if got == key:
                stats[kind + "_ok"] += 1
            elif got is None:
                stats["undecided"] += 1
            else:
                wrong.append(f"{key}->{got} ({conf:.2f}): {text}")
    mixed = sum(1 for text in MIXED_ENGLISH if detect(text)[0] in ("en", None))
    costs.sort()
    return {"mixed_english_kept": mixed, "lib": lib, "load_s": round(load_s, 3), "rss_added_mb": round((_rss_kb() - base) / 1024, 1),
            "ms_median": round(statistics.median(costs), 3), "ms_p95": round(costs[int(len(costs) * 0.95)], 3),
            "per": per, "wrong": wrong}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, default=None, help="kokorod's gate min_confidence (default: its own)")
    ap.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--show-wrong", action="store_true")
    args = ap.parse_args()
    if args.child:
        threshold = args.threshold
        if threshold is None and args.child == "kokorod":
            from kokorod.text.detect import MIN_CONFIDENCE

            threshold = MIN_CONFIDENCE
        print(json.dumps(child(args.child, threshold or 0.0)))
        return
    print(describe())
    print(f"{sum(len(v) for v in SENTENCES.values())} sentences, {len(SENTENCES)} languages "
          "(short: 3-6 words, 20 per language; long: 30); mixed: "
          f"{len(MIXED_ENGLISH)} English sentences around foreign names that must stay English")
    print(f"{'detector':10} {'load s':>7} {'+RSS MB':>8} {'ms med':>7} {'ms p95':>7}  short ok  long ok  undecided  mixed  "
          + " ".join(f"{k:>5}" for k in SENTENCES))
    for lib in args.libs.split(","):
        cmd = [sys.executable, __file__, "--child", lib]
        if args.threshold is not None:
            cmd += ["--threshold", str(args.threshold)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        per = r["per"]
        s_ok, s_n = sum(p["short_ok"] for p in per.values()), sum(p["short"] for p in per.values())
        l_ok, l_n = sum(p["long_ok"] for p in per.values()), sum(p["long"] for p in per.values())
        und = sum(p["undecided"] for p in per.values())
        cols = " ".join(f"{(p['short_ok'] + p['long_ok']) / (p['short'] + p['long']):5.0%}" for p in per.values())
        print(f"{lib:10} {r['load_s']:7.2f} {r['rss_added_mb']:8.1f} {r['ms_median']:7.3f} {r['ms_p95']:7.3f}  "
              f"{s_ok / s_n:8.1%} {l_ok / l_n:8.1%} {und:10d}  {r['mixed_english_kept']:2d}/{len(MIXED_ENGLISH)}  {cols}")
        if args.show_wrong:
            for line in r["wrong"]:
                print("   ", line)


if __name__ == "__main__":
    main()
