#!/usr/bin/env python3
"""Windowed decoding (bench/experiments/windowed/windowed.py) against the full model, in one run.

For a few English sentences and one Spanish one: the full model's run time, the
time to the first windowed piece (front + first run), their ratio, the whole
windowed decode's time over the full run's, and how close the audio is:
waveform correlation and SNR against the full model's audio (whole chunk and
worst window), log-spectral distance, the largest sample jump at window edges
over the largest elsewhere (and over the full decode's largest), DNSMOS (speechmos) and the recogniser's WER/CER
(tests/support/asr.py) on both, and ``stall_s``: how long playback started at the
first piece would wait for later ones. Full and windowed runs alternate, so load
from other processes hits both alike; compare the ratios, not the seconds.
``--baseline FILE`` also runs another copy of the module (e.g. the previous
version), interleaved with the others, and prints its rows prefixed ``old``.

    .venv/bin/python bench/experiments/windowed/windowed_bench.py
    .venv/bin/python bench/experiments/windowed/windowed_bench.py --reps 3 --threads 2 --first 40 --no-asr
    .venv/bin/python bench/experiments/windowed/windowed_bench.py --threads 2 --baseline /tmp/windowed_old.py
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

ROOT = Path(__file__).resolve().parents[3]  # the checkout (this is bench/experiments/windowed/)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # windowed.py, beside this file
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SENTENCES = [  # (lang, voice, text)
    ("en-us", "af_heart", "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet woods."),
    ("en-us", "af_heart", "Please call me tomorrow morning before nine, and bring the report."),
    ("en-us", "am_michael", "Our meeting moved to Thursday because the manager is traveling to the coast this week."),
    ("en-us", "af_bella", "Turn left at the second light, then park behind the blue building near the old station."),
    ("es", "ef_dora", "Mañana por la mañana iremos al mercado para comprar pan, fruta fresca y un poco de queso."),
]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def ids_and_style(synth: Any, text: str, voice: str, lang: str) -> tuple[list[int], np.ndarray]:
    """The ids and style row the Synthesizer would pass to its engine (one piece)."""
    from kokorod.text import languages

    vocab = synth.engine.vocab
    pieces = synth.g2p.phonemize(text, languages.resolve(lang))
    phonemes = "".join(ch for ch in "".join(p.phonemes for p in pieces) if ch in vocab)
    pack = synth.voices.pack(voice)
    return [0, *(vocab[ch] for ch in phonemes), 0], synth.voices.style_for(pack, len(phonemes))


def full_session(model: Path, threads: int | None) -> Any:
    """The unmodified model with the decoder's session settings: the reference."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def log_spectral_distance(a: np.ndarray, b: np.ndarray, n_fft: int = 1024, hop: int = 256) -> float:
    """Mean over frames with speech of the RMS dB difference of the magnitude spectra."""
    win = np.hanning(n_fft)

    def spec(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * win
        return np.abs(np.fft.rfft(frames, axis=1))

    sa, sb = spec(a), spec(b)
    energy = (sb ** 2).sum(1)
    keep = energy > energy.max() * 1e-4  # silence has no meaningful spectrum
    d = 20 * np.log10((sa[keep] + 1e-5) / (sb[keep] + 1e-5))
    return float(np.sqrt((d ** 2).mean(1)).mean())


def compare(ref: np.ndarray, out: np.ndarray, edges: list[int]) -> dict[str, float]:
    from windowed import STEP

    corr = float(np.corrcoef(ref, out)[0, 1])
    snr = float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))
    bounds = [0, *edges, len(ref)]
    per = []
    for a, z in zip(bounds[:-1], bounds[1:]):
        if (ref[a:z] ** 2).mean() > 1e-5:  # a silent window has no meaningful SNR
            per.append(float(10 * np.log10((ref[a:z] ** 2).sum() / ((ref[a:z] - out[a:z]) ** 2).sum())))
    jump = np.abs(np.diff(out))
    near = np.zeros_like(jump, dtype=bool)
    for e in edges:
        near[max(0, e - STEP):e + STEP] = True
    return {
        "corr": corr, "snr_db": snr, "worst_window_snr_db": min(per) if per else float("nan"),
        "lsd_db": log_spectral_distance(out, ref),
        "edge_jump_ratio": float(jump[near].max() / jump[~near].max()) if edges else 0.0,
        # against the full decode's largest jump anywhere: > 1 would be a seam it does not have
        "edge_jump_over_full": float(jump[near].max() / np.abs(np.diff(ref)).max()) if edges else 0.0,
    }


def dnsmos(audio: np.ndarray) -> tuple[float, float]:
    import soxr
    from speechmos import dnsmos as d

    x = np.clip(soxr.resample(audio.astype(np.float32), 24000, 16000), -1, 1).astype(np.float32)
    r = d.run(x, 16000)
    return float(r["ovrl_mos"]), float(r["p808_mos"])


def heard_error(audio: np.ndarray, text: str, lang: str) -> float:
    from support.asr import error_rate, transcribe, transcribe_lang, word_error_rate

    if lang.startswith("en"):
        return word_error_rate(text, transcribe(audio)[0])
    return error_rate(text, transcribe_lang(audio, 24000, lang)[0], lang)


def load_decoder(path: Path, model: Path, threads: int | None) -> Any:
    """``WindowedOnnxDecoder`` (default layout) from another copy of the module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("windowed_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.WindowedOnnxDecoder(model, threads=threads)


def windowed_run(decoder: Any, ids: list[int], style: np.ndarray) -> tuple[list[np.ndarray], float, float, float, Any]:
    """Pieces, time to the first, total time, playback stall, and the state."""
    t0 = time.perf_counter()
    _durations, state = decoder.front(ids, style, 1.0)
    pieces, stamps = [], []
    for piece in decoder.decode(state):
        stamps.append(time.perf_counter() - t0)
        pieces.append(piece)
    stall, ends = 0.0, stamps[0]  # playback starts at the first piece
    for stamp, piece in zip(stamps, pieces):
        stall += max(0.0, stamp - ends)
        ends = max(ends, stamp) + len(piece) / 24000
    return pieces, stamps[0], stamps[-1], stall, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2, help="timed repetitions per sentence (median reported)")
    ap.add_argument("--threads", type=int, default=None)
    for name in ("first", "tail", "islands", "island", "margin", "island_margin", "crossfade"):
        ap.add_argument(f"--{name}", type=int, help="window layout, in steps (crossfade: samples); default: the decoder's")
    ap.add_argument("--no-asr", action="store_true", help="skip WER/CER and DNSMOS")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--baseline", type=Path, help="another copy of windowed.py to run alongside (default layout)")
    args = ap.parse_args()

    from windowed import STEP, WindowedOnnxDecoder
    from kokorod.speech.build import EngineOptions, build_synthesizer

    synth = build_synthesizer(EngineOptions())
    from kokorod.assets.paths import resolve_cache_dir

    model_path = resolve_cache_dir(None) / "kokoro-v1.0.int8.onnx"
    names = ("first", "tail", "islands", "island", "margin", "island_margin", "crossfade")
    layout = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    decoder = WindowedOnnxDecoder(model_path, threads=args.threads, **layout)
    decoders = {"": decoder}
    if args.baseline:
        decoders["old"] = load_decoder(args.baseline, model_path, args.threads)
    full = full_session(model_path, args.threads)
    print(f"cpu: {cpu_model()}  threads: {args.threads or 'default'}  layout: {decoder._layout} crossfade {decoder._fade}")
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in decoders}
    for lang, voice, text in SENTENCES:
        ids, style = ids_and_style(synth, text, voice, lang)
        feed = {"tokens": np.asarray([ids], np.int64), "style": np.asarray(style, np.float32).reshape(1, -1),
                "speed": np.asarray([1.0], np.float32)}
        t_full: list[float] = []
        timed: dict[str, list[tuple[float, float, float]]] = {name: [] for name in decoders}
        results: dict[str, Any] = {}
        for _ in range(args.reps):
            t0 = time.perf_counter()
            ref = full.run(["audio"], feed)[0].reshape(-1)
            t_full.append(time.perf_counter() - t0)
            for name, dec in decoders.items():
                pieces, first, total, stall, state = windowed_run(dec, ids, style)
                timed[name].append((first, total, stall))
                results[name] = (pieces, state)
        ref_dnsmos = dnsmos(ref) if not args.no_asr else (0.0, 0.0)
        ref_err = heard_error(ref, text, lang) if not args.no_asr else 0.0
        for name, dec in decoders.items():
            pieces, state = results[name]
            out = np.concatenate(pieces)
            assert len(out) == len(ref), (len(out), len(ref))
            edges = [e * STEP for e in dec.plan(state).edges]
            first_s, total_s, stall_s = (statistics.median(t[j] for t in timed[name]) for j in range(3))
            row: dict[str, Any] = {"lang": lang, "voice": voice, "seconds": len(ref) / 24000, "windows": len(pieces),
                                   "full_s": statistics.median(t_full), "first_s": first_s, "total_s": total_s,
                                   "stall_s": stall_s}
            row["first_over_full"] = statistics.median(t[0] / r for t, r in zip(timed[name], t_full))
            row["total_over_full"] = statistics.median(t[1] / r for t, r in zip(timed[name], t_full))
            row.update(compare(ref, out, edges))
            if not args.no_asr:
                (row["dnsmos_full"], row["p808_full"]), (row["dnsmos_win"], row["p808_win"]) = ref_dnsmos, dnsmos(out)
                row["dnsmos_diff"] = row["dnsmos_win"] - row["dnsmos_full"]
                row["err_full"], row["err_win"] = ref_err, heard_error(out, text, lang)
            rows[name].append(row)
            print((name + " " if name else "") + " ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    keys = ["first_over_full", "total_over_full", "stall_s", "corr", "snr_db", "lsd_db", "edge_jump_ratio",
            "edge_jump_over_full"]
    if not args.no_asr:
        keys += ["dnsmos_full", "dnsmos_win", "p808_full", "p808_win", "err_full", "err_win"]
    for name, table in rows.items():
        print((name + " " if name else "") + "median: " + " ".join(
            f"{k}={statistics.median(r[k] for r in table):.3f}" for k in keys))
        if not args.no_asr:
            worst = max((r["dnsmos_diff"] for r in table), key=abs)
            print((name + " " if name else "") + f"largest |dnsmos_diff|: {worst:+.3f}  max edge_jump_ratio: "
                  f"{max(r['edge_jump_ratio'] for r in table):.3f}  max edge_jump_over_full: "
                  f"{max(r['edge_jump_over_full'] for r in table):.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
