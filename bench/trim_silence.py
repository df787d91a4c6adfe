#!/usr/bin/env python3
"""Trimmed decoding (kokorod/engine/trim.py) against the full decode, in one run.

For each sentence (English 1 to 40 words, es, fr, it, pt-br, ja, zh, hi) the
full ONNX run and trimmed runs for every cut and context K, on the same ids and
style. Quality, on the audio after the seam shaper (kokorod/speech/seams.py,
what a listener gets): the recogniser's WER/CER (tests/support/asr.py: Whisper
tiny.en for English, base for the rest), DNSMOS OVRL and SIG (speechmos), the
RMS level of the speech region (the full decode's speech bounds, on the shared
timeline) and how much longer or shorter the shaped chunk is. CPU: process time
(all threads) of full and trimmed runs alternated ``--reps`` times on the 1, 4,
12 and 40 word English chunks; the saving is the median of per-pair ratios, so
load from other processes hits both alike.

    PYTHONPATH=. .venv/bin/python bench/trim_silence.py
    PYTHONPATH=. .venv/bin/python bench/trim_silence.py --contexts 4,6 --cuts decoder --reps 5 --no-quality
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

# (label, lang, voice, text); the "words" labels are the CPU-by-length set.
SENTENCES = [
    ("1 word", "en-us", "af_heart", "Sure."),
    ("en okay", "en-us", "am_michael", "Okay."),
    ("4 words", "en-us", "af_heart", "Okay, let me check."),
    ("en 3", "en-us", "af_bella", "Yes, that works."),
    ("12 words", "en-us", "af_heart", "Please call me tomorrow morning before nine, and bring the report with you."),
    ("en 17", "en-us", "am_michael", "Our meeting moved to Thursday because the manager is traveling to the coast this week."),
    ("40 words", "en-us", "af_heart",
     "When you reach the station, walk past the ticket machines and take the stairs on your left, then follow "
     "the signs to the river exit, where a small green bus waits every twenty minutes to carry passengers up "
     "the hill to the old town square."),
    ("es 1", "es", "ef_dora", "Mañana iremos al mercado para comprar pan, fruta fresca y un poco de queso."),
    ("es 2", "es", "ef_dora", "¿Puedes cerrar la ventana, por favor?"),
    ("fr 1", "fr", "ff_siwis", "Le musée est fermé le mardi, mais il ouvre tôt le dimanche."),
    ("fr 2", "fr", "ff_siwis", "Bonjour à tous."),
    ("it 1", "it", "if_sara", "La cena è pronta, vieni a tavola."),
    ("it 2", "it", "if_sara", "Ho comprato tre biglietti per il concerto di sabato."),
    ("pt 1", "pt-br", "pf_dora", "Você quer um café com leite?"),
    ("pt 2", "pt-br", "pf_dora", "Eu moro em São Paulo há dez anos."),
    ("ja 1", "ja", "jf_alpha", "今日はとても良い天気ですね。"),
    ("ja 2", "ja", "jf_alpha", "私は毎朝コーヒーを飲みます。"),
    ("zh 1", "zh", "zf_xiaobei", "今天天气很好，我们去公园散步吧。"),
    ("zh 2", "zh", "zf_xiaobei", "请问火车站怎么走？"),
    ("hi 1", "hi", "hf_alpha", "मेरा नाम सीता है और मैं दिल्ली में रहती हूँ।"),
    ("hi 2", "hi", "hf_alpha", "आज मौसम बहुत अच्छा है।"),
]
TIMED = ("1 word", "4 words", "12 words", "40 words")


def ids_and_style(synth: Any, text: str, voice: str, lang: str) -> tuple[list[int], np.ndarray]:
    """The ids and style row the Synthesizer would give its engine (one piece)."""
    from kokorod.text import languages
    from kokorod.text.normalize_intl import normalizer_for

    vocab = synth.engine.vocab
    code = languages.resolve(lang)
    pieces = synth.g2p.phonemize(normalizer_for(code.code)(text).spoken, code)
    phonemes = "".join(ch for ch in "".join(p.phonemes for p in pieces) if ch in vocab)
    return [0, *(vocab[ch] for ch in phonemes), 0], synth.voices.style_for(synth.voices.pack(voice), len(phonemes))


def shaped(audio: np.ndarray) -> np.ndarray:
    from kokorod.speech.seams import shape_chunk
    from kokorod.speech.chunk import SpeechChunk

    return shape_chunk(SpeechChunk(audio, []), lead_in_samples=0, pause_samples=0).audio


def dnsmos(audio: np.ndarray) -> tuple[float, float]:
    """DNSMOS OVRL and SIG (tests/support/asr.py's one DNSMOS helper)."""
    from support.asr import dnsmos as judge

    scores = judge(audio)
    return scores["ovrl"], scores["sig"]


def heard_error(audio: np.ndarray, text: str, lang: str) -> float:
    from support.asr import error_rate, transcribe, transcribe_lang, word_error_rate

    if lang.startswith("en"):
        return word_error_rate(text, transcribe(audio)[0])
    return error_rate(text, transcribe_lang(audio, 24000, lang)[0], lang)


def speech_rms_db(audio: np.ndarray, bounds: tuple[int, int]) -> float:
    x = audio[bounds[0]:bounds[1]].astype(np.float64)
    return float(10 * np.log10((x * x).mean() + 1e-20))


def machine_model_and_synth() -> tuple[dict[str, Any], Path, Any]:
    """Print the machine first; then the int8 model's path and a Synthesizer
    for G2P and voices only (the benches build their own engines)."""
    from machine import cpu_info, describe

    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.speech.build import EngineOptions, build_synthesizer

    info = cpu_info()
    print(describe(info), flush=True)
    model = resolve_cache_dir(None) / "kokoro-v1.0.int8.onnx"
    return info, model, build_synthesizer(EngineOptions(graph_cache=False, trim_silence="off"))


def cpu_run(engine: Any, ids: list[int], style: np.ndarray) -> tuple[Any, float]:
    t0 = time.process_time()
    out = engine.run(ids, style, 1.0)
    return out, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contexts", default="2,4,6,8", help="context frames K to try, comma-separated")
    ap.add_argument("--cuts", default="decoder", help="where to split the graph (kokorod.engine.trim.CUTS)")
    ap.add_argument("--reps", type=int, default=3, help="alternated full/trimmed CPU timings per timed chunk")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-quality", action="store_true", help="skip WER/CER and DNSMOS (CPU and levels only)")
    ap.add_argument("--only", help="comma-separated sentence labels")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    from kokorod.engine.onnx_engine import OnnxEngine
    from kokorod.engine.trim import edge_frames
    from kokorod.speech.chunk import SpeechChunk
    from kokorod.speech.seams import shape_chunk, speech_bounds

    info, model, synth = machine_model_and_synth()
    contexts = [int(k) for k in args.contexts.split(",")]
    cuts = args.cuts.split(",")
    with tempfile.TemporaryDirectory(prefix="trim-bench-") as cache:
        full = OnnxEngine(model, threads=args.threads, cache_dir=Path(cache))
        trimmed = {cut: OnnxEngine(model, threads=args.threads, cache_dir=Path(cache), trim_context=contexts[0],
                                   trim_cut=cut) for cut in cuts}
        sentences = [s for s in SENTENCES if not args.only or s[0] in args.only.split(",")]
        rows: list[dict[str, Any]] = []
        for label, lang, voice, text in sentences:
            ids, style = ids_and_style(synth, text, voice, lang)
            ref = full.run(ids, style, 1.0)
            lead, trail = edge_frames(ids, ref.durations, trimmed[cuts[0]]._silent)
            bounds = speech_bounds(ref.audio) or (0, len(ref.audio))
            ref_shaped = shaped(ref.audio)
            base: dict[str, Any] = {"label": label, "lang": lang, "frames": int(ref.durations.sum()),
                                    "lead_frames": lead, "trail_frames": trail}
            if not args.no_quality:
                base["err_full"] = heard_error(ref_shaped, text, lang)
                base["ovrl_full"], base["sig_full"] = dnsmos(ref_shaped)
                # DNSMOS's own noise: the same audio 2 ms later (short clips move by ~0.1).
                moved = shape_chunk(SpeechChunk(ref.audio, []), lead_in_samples=48, pause_samples=0).audio
                ctrl_ovrl, ctrl_sig = dnsmos(moved)
                base["ctrl_d_ovrl"], base["ctrl_d_sig"] = ctrl_ovrl - base["ovrl_full"], ctrl_sig - base["sig_full"]
            print(f"{label} [{lang}] {base['frames']} frames, edges {lead}+{trail}"
                  + ("" if args.no_quality else f"; DNSMOS 2 ms later: {base['ctrl_d_ovrl']:+.3f} OVRL, "
                     f"{base['ctrl_d_sig']:+.3f} SIG"), flush=True)
            for cut in cuts:
                engine = trimmed[cut]
                for k in contexts:
                    engine.trim_context = k  # bench only: one engine (two sessions) serves every K
                    out = engine.run(ids, style, 1.0)
                    assert len(out.audio) == len(ref.audio) and (out.durations == ref.durations).all()
                    plan = engine.plan(ids, out.durations)
                    out_shaped = shaped(out.audio)
                    row = {**base, "cut": cut, "k": k, "decoded_frames": plan.decoded_frames,
                           "peak": float(np.abs(out.audio).max()), "peak_full": float(np.abs(ref.audio).max()),
                           "rms_diff_db": speech_rms_db(out.audio, bounds) - speech_rms_db(ref.audio, bounds),
                           "shaped_diff_ms": (len(out_shaped) - len(ref_shaped)) / 24.0}
                    if not args.no_quality:
                        row["err"] = heard_error(out_shaped, text, lang)
                        row["ovrl"], row["sig"] = dnsmos(out_shaped)
                        row["d_ovrl"], row["d_sig"] = row["ovrl"] - row["ovrl_full"], row["sig"] - row["sig_full"]
                    if label in TIMED:
                        ratios = []
                        for _ in range(args.reps):
                            _o, t_full = cpu_run(full, ids, style)
                            _o, t_trim = cpu_run(engine, ids, style)
                            ratios.append(t_trim / t_full)
                        row["cpu_saved_pct"] = 100 * (1 - statistics.median(ratios))
                    rows.append(row)
                    print("  " + " ".join(f"{key}={v:.3f}" if isinstance(v, float) else f"{key}={v}"
                                          for key, v in row.items() if key not in base), flush=True)
    print("\nsummary per cut and K (worst case over sentences; shaped_diff: shaped chunk length trimmed - full)")
    for cut in cuts:
        for k in contexts:
            sel = [r for r in rows if r["cut"] == cut and r["k"] == k]
            line = (f"{cut:9s} K={k}: max|rms_diff| {max(abs(r['rms_diff_db']) for r in sel):.2f} dB, "
                    f"shaped_diff {min(r['shaped_diff_ms'] for r in sel):+.1f}..{max(r['shaped_diff_ms'] for r in sel):+.1f} ms, "
                    f"max peak/full {max(r['peak'] / r['peak_full'] for r in sel):.2f}")
            if not args.no_quality:
                line += (f", d_ovrl {min(r['d_ovrl'] for r in sel):+.3f}..{max(r['d_ovrl'] for r in sel):+.3f}"
                         f" (control {min(r['ctrl_d_ovrl'] for r in sel):+.3f}..{max(r['ctrl_d_ovrl'] for r in sel):+.3f})"
                         f", d_sig {min(r['d_sig'] for r in sel):+.3f}..{max(r['d_sig'] for r in sel):+.3f}"
                         f", err worse on {sum(r['err'] > r['err_full'] + 1e-9 for r in sel)}/{len(sel)}"
                         f" (sum err full {sum(r['err_full'] for r in sel):.2f}, trimmed {sum(r['err'] for r in sel):.2f})")
            timed = {r["label"]: r["cpu_saved_pct"] for r in sel if "cpu_saved_pct" in r}
            if timed:
                line += ", CPU saved " + ", ".join(f"{lab} {v:.0f}%" for lab, v in timed.items())
            print(line)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
