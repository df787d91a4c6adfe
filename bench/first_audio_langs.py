#!/usr/bin/env python3
"""Quality of the budgeted first chunk and trimmed decoding in languages other
than English: each paragraph as two daemons stream it, "before" (the first
chunk by word counts, every frame decoded: ``--first-audio-ms 0 --trim-silence
off``) and "after" (the defaults), sent whole and as a 20 words/s token stream.

Judged by DNSMOS (OVRL, SIG) and Whisper base's error rate (WER; CER for
zh/ja), after against before, on the same machine in one run. Timing is not
measured here (bench/first_audio.py does that); under load the budget cuts
shorter first chunks, which is the harder case for prosody.

    .venv/bin/python bench/first_audio_langs.py [--langs es,fr,it] [--before-tree DIR]

``--before-tree``: run the "before" daemon from another source tree (a git
worktree of an older commit), so it is that commit's old behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from machine import cpu_info, describe  # noqa: E402
from stream_bench import free_port, start_daemon  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Cancelled, Chunk, Done, Error, Speak  # noqa: E402

# (lang, voice, paragraph): everyday sentences of a few clauses, so the budget
# has a first sentence to cut.
PARAGRAPHS = [
    ("es", "ef_dora", "Buenos días a todos. Hoy vamos a revisar el plan del proyecto, y después hablaremos de las "
                      "fechas de entrega. Si tienen preguntas, pueden escribirme un correo esta tarde."),
    ("es", "ef_dora", "La biblioteca abre a las nueve de la mañana. Los estudiantes pueden reservar una sala, pero "
                      "deben llegar a tiempo. El préstamo de libros dura dos semanas."),
    ("fr", "ff_siwis", "Bonjour à tous. Nous allons d'abord parler du budget, puis nous regarderons le calendrier "
                       "du projet. Merci de garder vos questions pour la fin de la réunion."),
    ("fr", "ff_siwis", "Le train pour Lyon partira avec un peu de retard. Les voyageurs sont priés de rester sur le "
                       "quai, et de surveiller leurs bagages. Nous vous remercions de votre patience."),
    ("it", "if_sara", "Buongiorno a tutti. Oggi parliamo del nuovo progetto, e poi vedremo insieme le prossime "
                      "scadenze. Se avete domande, scrivetemi pure nel pomeriggio."),
    ("it", "if_sara", "Il museo apre alle dieci del mattino. I visitatori possono comprare il biglietto online, "
                      "ma devono arrivare in orario. La visita guidata dura un'ora."),
]


async def speak(url: str, text: str, voice: str, lang: str, *, fragments: bool) -> tuple[np.ndarray, list[str]]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        codec.decode_event(await ws.recv())  # ready
        pcm = bytearray()
        chunks: list[str] = []
        feeder = None
        if fragments:
            async def feed() -> None:
                words = text.split(" ")
                for i, w in enumerate(words):
                    await ws.send(codec.encode_message(Speak("u", w + " ", voice=voice, lang=lang,
                                                             final=i == len(words) - 1)))
                    await asyncio.sleep(0.05)
            feeder = asyncio.create_task(feed())
        else:
            await ws.send(codec.encode_message(Speak("u", text, voice=voice, lang=lang, final=True)))
        while True:
            event = codec.decode_event(await ws.recv())
            if isinstance(event, Audio):
                pcm += event.pcm
            elif isinstance(event, Chunk):
                chunks.append(event.text)
            elif isinstance(event, (Done, Cancelled, Error)):
                if isinstance(event, Error):
                    raise SystemExit(f"daemon error: {event}")
                break
        if feeder is not None:
            await feeder
    return np.frombuffer(bytes(pcm), "<i2").astype(np.float32) / 32768.0, chunks


def judge(audio: np.ndarray, text: str, lang: str) -> dict[str, float]:
    from support.asr import dnsmos, error_rate, transcribe_lang  # type: ignore[import-not-found]

    heard, _words = transcribe_lang(audio, 24000, lang)
    scores = dnsmos(audio)
    return {"err": round(error_rate(text, heard, lang), 3), "ovrl": round(scores["ovrl"], 3),
            "sig": round(scores["sig"], 3), "heard": heard}


async def collect(urls: dict[str, str], langs: set[str]) -> list[dict[str, Any]]:
    rows = []
    for i, (lang, voice, text) in enumerate(PARAGRAPHS):
        if lang not in langs:
            continue
        for mode in ("whole", "stream"):
            order = list(urls) if i % 2 == 0 else list(reversed(urls))
            for name in order:
                audio, chunks = await speak(urls[name], text, voice, lang, fragments=mode == "stream")
                rows.append({"paragraph": i, "lang": lang, "mode": mode, "daemon": name, "chunks": chunks,
                             "audio": audio, "text": text})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--langs", default="es,fr,it")
    ap.add_argument("--before-tree", type=Path, default=ROOT, help="source tree of the 'before' daemon")
    args = ap.parse_args()
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    flags = {"before": ["--first-audio-ms", "0", "--trim-silence", "off"], "after": []}
    trees = {"before": args.before_tree.resolve(), "after": ROOT}
    procs = {name: (start_daemon(port := free_port(), "--cache-mb", "0", "--engine", "onnx", *f, tree=trees[name]), port)
             for name, f in flags.items()}
    try:
        urls = {name: f"ws://127.0.0.1:{port}/v1/stream" for name, (_, port) in procs.items()}
        rows = asyncio.run(collect(urls, set(args.langs.split(","))))
    finally:
        for p, _ in procs.values():
            p.terminate()
            p.wait(15)
    for row in rows:
        row.update(judge(row.pop("audio"), row["text"], row["lang"]))
        print(json.dumps({k: v for k, v in row.items() if k != "text"}, ensure_ascii=False), flush=True)
    summary: dict[str, Any] = {}
    for lang in sorted({r["lang"] for r in rows}):
        for mode in ("whole", "stream"):
            pair = {n: [r for r in rows if r["lang"] == lang and r["mode"] == mode and r["daemon"] == n]
                    for n in flags}
            summary[f"{lang} {mode}"] = {
                n: {"err_mean": round(statistics.mean(r["err"] for r in rs), 3),
                    "ovrl_mean": round(statistics.mean(r["ovrl"] for r in rs), 3),
                    "sig_mean": round(statistics.mean(r["sig"] for r in rs), 3),
                    "first_chunks": [r["chunks"][0] if r["chunks"] else "" for r in rs]}
                for n, rs in pair.items()}
    print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": cpu,
                      "trees": {n: str(t) for n, t in trees.items()}, "summary": summary},
                     ensure_ascii=False, indent=1), flush=True)


if __name__ == "__main__":
    main()
