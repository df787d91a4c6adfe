"""Windowed decoding (bench/experiments/windowed/windowed.py) against the full model, real Kokoro-82M.

The reference is the unmodified ONNX model in one run. Quality is judged by
numbers: waveform correlation, the recogniser's error rate, DNSMOS (PyPI
``speechmos``) and the largest sample jump at the seam. Only the head (first
piece) is decoded with estimated instance-norm statistics (see the module
docstring and the bench); everything after it and its cross-fade is the full
model's audio bit for bit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from support.asr import error_rate, transcribe, transcribe_lang, word_error_rate

pytestmark = pytest.mark.slow

SENTENCES = [  # (lang, voice, text): 4-6 s chunks, the daemon's typical sentence
    ("en-us", "af_heart", "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet woods."),
    ("en-us", "am_michael", "Our meeting moved to Thursday because the manager is traveling to the coast this week."),
    ("en-us", "af_bella", "Turn left at the second light, then park behind the blue building near the old station."),
    ("es", "ef_dora", "Mañana por la mañana iremos al mercado para comprar pan, fruta fresca y un poco de queso."),
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    from kokorod.assets.paths import resolve_cache_dir

    return resolve_cache_dir(None) / "kokoro-v1.0.int8.onnx"


@pytest.fixture(scope="module")
def decoder(model_path):  # type: ignore[no-untyped-def]
    from windowed import WindowedOnnxDecoder

    return WindowedOnnxDecoder(model_path, threads=2)


@pytest.fixture(scope="module")
def full(model_path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def ids_and_style(synth, text: str, voice: str, lang: str):  # type: ignore[no-untyped-def]
    from kokorod.text import languages

    vocab = synth.engine.vocab
    pieces = synth.g2p.phonemize(text, languages.resolve(lang))
    phonemes = "".join(ch for ch in "".join(p.phonemes for p in pieces) if ch in vocab)
    return [0, *(vocab[ch] for ch in phonemes), 0], synth.voices.style_for(synth.voices.pack(voice), len(phonemes))


def run_full(full, ids, style) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    audio = full.run(["audio"], {"tokens": np.asarray([ids], np.int64), "style": np.asarray(style, np.float32).reshape(1, -1),
                                 "speed": np.asarray([1.0], np.float32)})[0].reshape(-1)
    return audio, time.perf_counter() - t0


@pytest.fixture(scope="module")
def runs(synth, decoder, full):  # type: ignore[no-untyped-def]
    """Per sentence: full audio and time, windowed pieces, time to the first piece, plan."""
    out = []
    for lang, voice, text in SENTENCES:
        ids, style = ids_and_style(synth, text, voice, lang)
        ref, t_full = run_full(full, ids, style)
        t0 = time.perf_counter()
        durations, state = decoder.front(ids, style, 1.0)
        pieces, t_first = [], 0.0
        for piece in decoder.decode(state):
            if not pieces:
                t_first = time.perf_counter() - t0
            pieces.append(piece)
        out.append(dict(lang=lang, text=text, ref=ref, pieces=pieces, durations=durations, t_full=t_full,
                        t_first=t_first, t_total=time.perf_counter() - t0, plan=decoder.plan(state)))
    return out


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10((ref ** 2).sum() / ((ref - out) ** 2).sum()))


def dnsmos(audio: np.ndarray) -> float:
    import soxr
    from speechmos import dnsmos as d

    pcm = np.clip(soxr.resample(audio.astype(np.float32), 24000, 16000), -1, 1).astype(np.float32)
    return float(d.run(pcm, 16000)["ovrl_mos"])


def heard(audio: np.ndarray, text: str, lang: str) -> float:
    if lang.startswith("en"):
        return word_error_rate(text, transcribe(audio)[0])
    return error_rate(text, transcribe_lang(audio, 24000, lang)[0], lang)


def test_length_is_the_full_models(runs) -> None:  # type: ignore[no-untyped-def]
    for r in runs:
        total = sum(len(p) for p in r["pieces"])
        assert total == int(r["durations"].sum()) * 600 == len(r["ref"])
        assert len(r["pieces"]) == 2  # these chunks get a head piece, not one run
        assert all(p.dtype == np.float32 for p in r["pieces"])


def test_a_short_chunk_is_the_full_decode(synth, decoder, full) -> None:  # type: ignore[no-untyped-def]
    ids, style = ids_and_style(synth, "Hello there.", "af_heart", "en-us")
    ref, _ = run_full(full, ids, style)
    _durations, state = decoder.front(ids, style, 1.0)
    pieces = list(decoder.decode(state))
    assert len(pieces) == 1 and np.array_equal(pieces[0], ref)  # bit for bit


def test_first_audio_comes_early(runs) -> None:  # type: ignore[no-untyped-def]
    ratios = [r["t_first"] / r["t_full"] for r in runs]
    totals = [r["t_total"] / r["t_full"] for r in runs]
    print("first piece / full run:", [round(x, 3) for x in ratios], "windowed total / full run:", [round(x, 3) for x in totals])
    # Behaviour, not a budget: the first piece comes before a full run would
    # end. How much earlier, and what the whole decode costs (1.2-1.7x a full
    # run, the reason this is not used), are the bench's figures.
    assert float(np.median(ratios)) < 0.75


def test_waveform_against_the_full_decode(runs) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for r in runs:
        out, ref = np.concatenate(r["pieces"]), r["ref"]
        edge = r["plan"].edges[0] * 300
        fade = 120  # half the decoder's default cross-fade
        assert np.array_equal(out[edge + fade:], ref[edge + fade:])  # after the seam: the full model's audio
        rows.append((float(np.corrcoef(ref, out)[0, 1]), float(np.corrcoef(ref[:edge], out[:edge])[0, 1])))
    print("corr whole, corr head:", [tuple(round(x, 3) for x in row) for row in rows])
    # The head's estimated statistics keep it correlated but not sample-exact.
    assert min(row[0] for row in rows) > 0.8
    assert min(row[1] for row in rows) > 0.2


def test_the_recogniser_hears_the_same(runs) -> None:  # type: ignore[no-untyped-def]
    full_err = [heard(r["ref"], r["text"], r["lang"]) for r in runs]
    win_err = [heard(np.concatenate(r["pieces"]), r["text"], r["lang"]) for r in runs]
    print("error rate full:", full_err, "windowed:", win_err)
    english = [i for i, r in enumerate(runs) if r["lang"].startswith("en")]
    assert sum(win_err[i] for i in english) <= sum(full_err[i] for i in english)  # tiny.en: the same WER
    # Whisper base on Spanish: measured one character-level slip (CER 0.059 vs 0) in the bench.
    assert all(w <= f + 0.1 for w, f in zip(win_err, full_err))


def test_dnsmos_is_held(runs) -> None:  # type: ignore[no-untyped-def]
    diffs = [dnsmos(np.concatenate(r["pieces"])) - dnsmos(r["ref"]) for r in runs]
    print("DNSMOS OVRL windowed - full:", [round(d, 3) for d in diffs])
    # Every sentence, not the mean: only the head differs (measured -0.04..0).
    assert all(abs(d) <= 0.05 for d in diffs)


def test_no_seam_at_window_edges(runs) -> None:  # type: ignore[no-untyped-def]
    for r in runs:
        out = np.concatenate(r["pieces"])
        jump = np.abs(np.diff(out))
        near = np.zeros(jump.shape, dtype=bool)
        for e in r["plan"].edges:
            near[e * 300 - 300:e * 300 + 300] = True
        assert jump[near].max() <= jump[~near].max(), (jump[near].max(), jump[~near].max())


def test_cancel_reaches_the_window_in_flight(synth, decoder) -> None:  # type: ignore[no-untyped-def]
    from kokorod.engine.base import CancelToken, SynthesisCancelled

    lang, voice, text = SENTENCES[0]
    ids, style = ids_and_style(synth, text, voice, lang)
    _durations, state = decoder.front(ids, style, 1.0)
    stamps = []
    for piece in decoder.decode(state):  # uncancelled: how long the run over the whole chunk takes
        stamps.append(time.perf_counter())
    second = stamps[1] - stamps[0]
    token = CancelToken()
    pieces = decoder.decode(state, token)
    next(pieces)
    timer = threading.Timer(second * 0.2, token.cancel)  # lands while that run is in flight
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(SynthesisCancelled):
        for _ in pieces:
            pass
    took = time.perf_counter() - t0
    timer.join()
    print(f"second run {second:.3f}s, cancelled after {took:.3f}s")
    assert took < second * 0.7
