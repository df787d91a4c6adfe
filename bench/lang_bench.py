#!/usr/bin/env python3
"""Per-language intelligibility through a real daemon, with a reference.

For each Kokoro language: a few sentences in that language, spoken by its
default voice through the daemon (msgpack over the WebSocket), transcribed
offline by Whisper base (tests/support/asr.py) and scored (WER, or CER for
zh/ja). In the same run, the same sentences phonemised by misaki's own G2P
for that language and run through the ONNX engine in-process give a
reference: how intelligible Kokoro is when its G2P is right. Ours far above
the reference means our text/G2P path is at fault, not the model or judge.

    .venv/bin/python bench/lang_bench.py                      # starts a daemon from this checkout
    .venv/bin/python bench/lang_bench.py --pythonpath /work/before   # ... from another checkout
    .venv/bin/python bench/lang_bench.py --url ws://127.0.0.1:8765/v1/stream

The daemon side speaks raw msgpack dicts rather than kokorod's protocol
classes, so an older checkout's daemon can be measured by this one's bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.asr import error_rate, transcribe_lang  # noqa: E402

SAMPLE_RATE = 24000


@dataclass(frozen=True)
class Case:
    voice: str
    # (text sent, what a listener should hear: numbers spelled in the language)
    sentences: tuple[tuple[str, str], ...]
    misaki: str | None  # "espeak:<language>", "zh", "ja", or None (no reference)


# A sentence without numerals is written ``(text,) * 2``: heard as written.
CASES: dict[str, Case] = {
    "en-us": Case("af_heart", (
        ("The train leaves at 7 from platform 12.", "The train leaves at seven from platform twelve."),
        ("Could you bring me a glass of water, please?",) * 2,
    ), None),  # ours already is misaki's English G2P: a reference would measure the same path
    "en-gb": Case("bf_emma", (
        ("We walked along the river for 3 hours.", "We walked along the river for three hours."),
        ("The weather in London was surprisingly pleasant today.",) * 2,
    ), None),
    "es": Case("ef_dora", (
        ("Mi hermana tiene 25 años y vive en Sevilla.", "Mi hermana tiene veinticinco años y vive en Sevilla."),
        ("¿Puedes cerrar la ventana, por favor? Hace mucho frío.",) * 2,
        ("El tren sale a las 8 de la mañana.", "El tren sale a las ocho de la mañana."),
    ), "espeak:es"),
    "fr": Case("ff_siwis", (
        ("Nous avons acheté 12 croissants à la boulangerie.", "Nous avons acheté douze croissants à la boulangerie."),
        ("Le musée est fermé le mardi, mais il ouvre tôt le dimanche.",) * 2,
        ("Il y a 4 chaises dans la cuisine.", "Il y a quatre chaises dans la cuisine."),
    ), "espeak:fr-fr"),
    "hi": Case("hf_alpha", (
        ("मेरा नाम सीता है और मैं दिल्ली में रहती हूँ।",) * 2,
        ("आज मौसम बहुत अच्छा है।",) * 2,
        ("मेरे पास 5 किताबें हैं।", "मेरे पास पाँच किताबें हैं।"),
    ), "espeak:hi"),
    "it": Case("if_sara", (
        ("Ho comprato 3 biglietti per il concerto di sabato.", "Ho comprato tre biglietti per il concerto di sabato."),
        ("La cena è pronta, vieni a tavola.",) * 2,
        ("Il negozio apre alle 9.", "Il negozio apre alle nove."),
    ), "espeak:it"),
    "pt-br": Case("pf_dora", (
        ("Eu moro em São Paulo há 10 anos.", "Eu moro em São Paulo há dez anos."),
        ("Você quer um café com leite?",) * 2,
        ("Comprei 4 livros na feira.", "Comprei quatro livros na feira."),
    ), "espeak:pt-br"),
    "ja": Case("jf_alpha", (
        ("今日はとても良い天気ですね。",) * 2,
        ("駅まで歩いて5分かかります。", "駅まで歩いて五分かかります。"),
        ("私は毎朝コーヒーを飲みます。",) * 2,
    ), "ja"),
    "zh": Case("zf_xiaobei", (
        ("今天天气很好，我们去公园散步吧。",) * 2,
        ("我买了3本书，一共花了50块钱。", "我买了三本书，一共花了五十块钱。"),
        ("请问火车站怎么走？",) * 2,
    ), "zh"),
}
UNSPACED = {"ja", "zh"}


def joined(lang: str, parts: list[str]) -> str:
    return ("" if lang in UNSPACED else " ").join(parts)


def count_words(text: str, lang: str) -> int:
    """Words in the sent text, the yardstick for word events: whitespace words
    with a letter or digit; for zh jieba's words, for ja UniDic's (punctuation
    not counted). Segmenters disagree on zh/ja, so read those as approximate."""
    if lang == "zh":
        import jieba

        return sum(1 for w in jieba.lcut(text) if any(ch.isalnum() for ch in w))
    if lang == "ja":
        from support.asr import _ja_tagger

        return sum(1 for w in _ja_tagger()(text) if any(ch.isalnum() for ch in w.surface))
    return sum(1 for w in text.split() if any(ch.isalnum() for ch in w))


# --- the daemon ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_env(pythonpath: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("KOKOROD_ENGINE", "onnx")  # the same engine for both trees (bench/machine.py daemon_env)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    return env


def daemon_cwd(pythonpath: list[str]) -> Path:
    # `python -m` puts the cwd first on sys.path, ahead of PYTHONPATH: run from
    # the checkout being measured, or this checkout's kokorod would win.
    return Path(pythonpath[0]) if pythonpath else ROOT


def which_kokorod(python: str, pythonpath: list[str]) -> str:
    proc = subprocess.run([python, "-c", "import kokorod; print(kokorod.__file__)"], capture_output=True,
                          text=True, cwd=daemon_cwd(pythonpath), env=daemon_env(pythonpath), timeout=60)
    return proc.stdout.strip() or proc.stderr.strip()[-300:]


def git_rev(path: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or None


def start_daemon(python: str, pythonpath: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")
    proc = subprocess.Popen([python, "-m", "kokorod", "serve", "--port", str(port)], cwd=daemon_cwd(pythonpath),
                            env=daemon_env(pythonpath), stdout=out, stderr=subprocess.STDOUT)
    out.close()  # the child has its own handle
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("daemon did not become ready")


async def speak(url: str, text: str, voice: str, timeout: float) -> dict[str, Any]:
    """One utterance, final at once: its audio (pcm_s16le 24 kHz), word events
    and the event that ended it."""
    async with websockets.connect(url, subprotocols=["kokorod.v1.msgpack"], max_size=None) as ws:
        ready = msgpack.unpackb(await ws.recv())
        await ws.send(msgpack.packb({"type": "config", "format": "pcm_s16le", "sample_rate": SAMPLE_RATE}))
        pcm: list[bytes] = []
        words: list[str] = []
        started = time.perf_counter()
        sent = False
        final: dict[str, Any] = {"type": "timeout"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                event = msgpack.unpackb(await asyncio.wait_for(ws.recv(), max(0.1, deadline - loop.time())))
            except asyncio.TimeoutError:
                break
            kind = event.get("type")
            if kind == "configured" and not sent:
                await ws.send(msgpack.packb({"type": "speak", "utterance": "u1", "text": text, "voice": voice, "final": True}))
                sent = True
            elif kind == "audio" and event.get("utterance") == "u1":
                pcm.append(event["pcm"])
            elif kind == "word" and event.get("utterance") == "u1":
                words.append(event.get("text", ""))
            elif kind in ("done", "cancelled") and event.get("utterance") == "u1":
                final = event
                break
            elif kind == "error":
                final = event
                if event.get("utterance") in ("u1", None) and sent:
                    break  # an error naming u1 (or no utterance at all) ends what we wait for
        audio = np.frombuffer(b"".join(pcm), dtype="<i2").astype(np.float32) / 32768.0
        return {"audio": audio, "words": words, "final": {k: v for k, v in final.items() if k != "pcm"},
                "wall_s": time.perf_counter() - started, "daemon_version": ready.get("version")}


# --- the reference: misaki's G2P, our engine in-process ---------------------

def misaki_g2p(spec: str) -> Any:
    if spec.startswith("espeak:"):
        from misaki.espeak import EspeakG2P

        return EspeakG2P(language=spec.split(":", 1)[1])
    if spec == "zh":
        from misaki.zh import ZHG2P

        return ZHG2P()  # version None: the G2P Kokoro-82M v1.0 was trained with
    if spec == "ja":
        # misaki.ja imports pyopenjtalk at module level (not installed here);
        # JAG2P's default 'cutlet' path is exactly this class.
        from misaki.cutlet import Cutlet

        return Cutlet()
    raise ValueError(spec)


class Reference:
    def __init__(self) -> None:
        from kokorod.assets.paths import resolve_cache_dir
        from kokorod.assets.voices import VoiceStore
        from kokorod.engine import load_engine

        cache = resolve_cache_dir(None)
        self.engine = load_engine("onnx", cache_dir=cache)
        self.voices = VoiceStore(cache / "voices")

    def speak(self, spec: str, sentences: list[str], voice: str) -> tuple[np.ndarray, list[str]]:
        """Each sentence phonemised and synthesised alone (short of the 510
        phoneme window), joined with a short pause."""
        g2p = misaki_g2p(spec)
        pack = self.voices.pack(voice)
        vocab = self.engine.vocab
        parts: list[np.ndarray] = []
        phonemes_all: list[str] = []
        pause = np.zeros(int(0.2 * SAMPLE_RATE), dtype=np.float32)
        for sentence in sentences:
            phonemes, _ = g2p(sentence)
            # Symbols outside Kokoro's vocabulary would have no id; kokoro drops them too.
            phonemes = "".join(ch for ch in phonemes if ch in vocab)[:510]
            phonemes_all.append(phonemes)
            out = self.engine.run([0, *(vocab[ch] for ch in phonemes), 0], self.voices.style_for(pack, len(phonemes)), 1.0)
            parts.extend([out.audio, pause])
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), phonemes_all


# --- running and reporting ----------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt(value: float) -> str:
    return f"{value * 100:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running daemon's ws:// URL (else one is started)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the started daemon")
    parser.add_argument("--pythonpath", action="append", default=[],
                        help="prepended to the started daemon's PYTHONPATH (repeatable); the first is its cwd")
    parser.add_argument("--langs", default=",".join(CASES), help="comma-separated subset of: " + ",".join(CASES))
    parser.add_argument("--no-reference", action="store_true", help="skip the misaki/in-process reference")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for one utterance")
    parser.add_argument("--label", default="", help="free text stored in the JSON (e.g. 'before')")
    args = parser.parse_args()
    langs = [code.strip() for code in args.langs.split(",") if code.strip()]
    unknown = [code for code in langs if code not in CASES]
    if unknown:
        raise SystemExit(f"unknown language(s): {', '.join(unknown)}")

    daemon_info: dict[str, Any] = {}
    proc = None
    url = args.url
    if url is None:
        port = free_port()
        log = Path(tempfile.gettempdir()) / f"kokorod-lang-bench-{port}.log"
        daemon_info = {"python": args.python, "pythonpath": args.pythonpath, "log": str(log),
                       "kokorod": which_kokorod(args.python, args.pythonpath),
                       "git": git_rev(daemon_cwd(args.pythonpath))}
        proc = start_daemon(args.python, args.pythonpath, port, log)
        url = f"ws://127.0.0.1:{port}/v1/stream"
    daemon_info["url"] = url
    spoken: dict[str, dict[str, Any]] = {}
    try:
        for code in langs:  # one at a time: the numbers are about quality, not load
            case = CASES[code]
            text = joined(code, [s for s, _ in case.sentences])
            spoken[code] = asyncio.run(speak(url, text, case.voice, args.timeout))
            print(f"[daemon] {code}: {spoken[code]['final'].get('type')} "
                  f"{spoken[code]['audio'].size / SAMPLE_RATE:.1f}s audio", file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    reference = None if args.no_reference else Reference()
    results: dict[str, Any] = {}
    for code in langs:
        case = CASES[code]
        text = joined(code, [s for s, _ in case.sentences])
        expected = joined(code, [r for _, r in case.sentences])
        got = spoken[code]
        heard, _ = transcribe_lang(got["audio"], SAMPLE_RATE, code)
        row: dict[str, Any] = {
            "voice": case.voice, "metric": "CER" if code in UNSPACED else "WER", "text": text, "reference_text": expected,
            "ours": {
                "error_rate": round(error_rate(expected, heard, code), 4), "heard": heard,
                "audio_s": round(got["audio"].size / SAMPLE_RATE, 2), "word_events": len(got["words"]),
                "words": got["words"], "words_in_text": count_words(text, code), "final": got["final"],
                "wall_s": round(got["wall_s"], 2),
            },
            "misaki_reference": None,
        }
        if reference is not None and case.misaki is not None:
            audio, phonemes = reference.speak(case.misaki, [s for s, _ in case.sentences], case.voice)
            ref_heard, _ = transcribe_lang(audio, SAMPLE_RATE, code)
            row["misaki_reference"] = {
                "g2p": case.misaki, "phonemes": phonemes, "heard": ref_heard,
                "error_rate": round(error_rate(expected, ref_heard, code), 4),
                "audio_s": round(audio.size / SAMPLE_RATE, 2),
            }
        results[code] = row
        print(f"[judge] {code}: ours {row['ours']['error_rate']:.3f}", file=sys.stderr, flush=True)

    cpu = cpu_model()
    print(f"CPU: {cpu} ({os.cpu_count()} cpus)")
    print(f"daemon: {daemon_info.get('kokorod', url)}  git {daemon_info.get('git') or '?'}  {args.label}")
    header = f"{'lang':6} {'voice':11} {'metric':6} {'ours':>7} {'misaki':>7} {'audio s':>8} {'ref s':>6} {'words ev/text':>13}  final"
    print(header)
    print("-" * len(header))
    for code, row in results.items():
        ours, ref = row["ours"], row["misaki_reference"]
        final = ours["final"].get("type", "?") + (f":{ours['final']['code']}" if ours["final"].get("code") else "")
        ref_rate = fmt(ref["error_rate"]) if ref else "-"
        ref_s = f"{ref['audio_s']:.1f}" if ref else "-"
        print(f"{code:6} {row['voice']:11} {row['metric']:6} {fmt(ours['error_rate']):>7} {ref_rate:>7} "
              f"{ours['audio_s']:8.1f} {ref_s:>6} {ours['word_events']:>6}/{ours['words_in_text']:<6}  {final}")
    for code, row in results.items():
        print(f"\n[{code}] expected: {row['reference_text']}\n[{code}] ours    : {row['ours']['heard']}")
        if row["misaki_reference"]:
            print(f"[{code}] misaki  : {row['misaki_reference']['heard']}")

    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "label": args.label,
        "machine": {"cpu": cpu, "cpus": os.cpu_count()}, "daemon": daemon_info,
        "judge": "Whisper base (CTranslate2 int8, beam 5, language forced); WER, CER for zh/ja (ja on kana readings)",
        "languages": results,
    }
    out = ROOT / "bench" / "results" / f"lang-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
