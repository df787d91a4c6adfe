#!/usr/bin/env python3
"""First audio with the first chunk sized by a latency budget, against the old
word-count first chunk, in one run on one machine.

Two real daemons on loopback, one with ``--first-audio-ms 0 --trim-silence
off`` (the profile's 4-12 words and every frame decoded, the old behaviour:
"before") and one with the defaults ("after"), asked alternately, so both see
the same load (the chunk cache off in both). For each:

* first audio and first *speech* (the first frame with a sample above
  -40 dBFS), for a paragraph sent whole and for a 20 words/s token stream, p50
  and p95, each also as a ratio to the engine's time for the paragraph's whole
  first sentence (in-process, this tree's default engine build, and
  kokoro-onnx on the same model, the issue's reference);
* underruns of a client playing at 1x from its first frame, the longest
  wait between the first chunk's end and the second chunk's arrival, and the
  slack: how early the tightest later chunk came before that player needed it;
* the chunk sizes, the engine's RTF on them and the daemon's CPU per second of
  audio;
* DNSMOS and WER (Whisper tiny.en) of each paragraph as streamed, after
  against before.

    .venv/bin/python bench/first_audio.py [--runs 5] [--budget-ms 250] [--before-tree DIR] [--before-defaults]

``--before-tree``: run the "before" daemon from another source tree (a git
worktree of an older commit), still with the old flags, so it is that commit's
old behaviour rather than this tree's. With ``--before-defaults`` it runs with
that tree's own defaults instead: the before and after of a change to the
budget's policy.

Absolute times on a shared 2-core box are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from stream_bench import PARAGRAPHS, Player, free_port, pct, start_daemon, summary  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Cancelled, Chunk, Done, Error, Speak  # noqa: E402

VOICE = "af_heart"
SPEECH_LEVEL = int(32767 * 10 ** (-40 / 20))  # -40 dBFS in s16


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def speak(url: str, text: str, *, fragments: bool) -> dict[str, Any]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        codec.decode_event(await ws.recv())  # ready
        player = Player()
        pcm = bytearray()
        chunks: list[Chunk] = []
        arrivals: list[tuple[float, int]] = []  # (time, offset) of each audio frame
        first_audio = first_speech = None
        t0 = time.perf_counter()
        feeder = None
        if fragments:
            async def feed() -> None:
                words = text.split(" ")
                for i, w in enumerate(words):
                    await ws.send(codec.encode_message(Speak("u", w + " ", voice=VOICE, final=i == len(words) - 1)))
                    await asyncio.sleep(0.05)
            feeder = asyncio.create_task(feed())
        else:
            await ws.send(codec.encode_message(Speak("u", text, voice=VOICE, final=True)))
        while True:
            event = codec.decode_event(await ws.recv())
            now = time.perf_counter() - t0
            if isinstance(event, Audio):
                player.on_audio(event, now)
                arrivals.append((now, event.offset))
                first_audio = now if first_audio is None else first_audio
                if first_speech is None and np.abs(np.frombuffer(event.pcm, "<i2")).max(initial=0) > SPEECH_LEVEL:
                    first_speech = now
                pcm += event.pcm
            elif isinstance(event, Chunk):
                chunks.append(event)
            elif isinstance(event, (Done, Cancelled, Error)):
                break
        if feeder is not None:
            await feeder
    # How long a 1x player starting at the first frame waits for the second chunk.
    wait_2nd = 0.0
    if len(chunks) > 1:
        start2 = round(chunks[1].start * 24000)
        arrived = next((t for t, off in arrivals if off >= start2), None)
        if arrived is not None and first_audio is not None:
            wait_2nd = max(0.0, arrived - (first_audio + start2 / 24000))
    # How early each later chunk's first frame came before a 1x player from
    # the first frame needed it (negative: late); the smallest says how much
    # room the ramp left.
    slack = []
    for c in chunks[1:]:
        start = round(c.start * 24000)
        arrived = next((t for t, off in arrivals if off >= start), None)
        if arrived is not None and first_audio is not None:
            slack.append(first_audio + start / 24000 - arrived)
    return {"first_audio_s": first_audio, "first_speech_s": first_speech, "underruns": player.underruns,
            "stall_s": player.stall_s, "wait_2nd_s": wait_2nd, "chunks": [c.text for c in chunks],
            "min_slack_s": min(slack, default=None),
            "audio": np.frombuffer(bytes(pcm), "<i2").astype(np.float32) / 32768.0}


def first_sentence_engine_s(runs: int) -> tuple[list[float], list[float]]:
    """In-process, medians: this tree's engine (default build, so trimmed) and
    kokoro-onnx (the issue's reference: every frame decoded) on each
    paragraph's whole first sentence, same int8 model and voice."""
    from kokoro_onnx import Kokoro

    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.speech.build import EngineOptions, build_synthesizer

    synth = build_synthesizer(EngineOptions())
    synth.synthesize("Warm up the engine.")
    cache = resolve_cache_dir(None)
    voices_npz = cache / "bench-voices.npz"
    np.savez(voices_npz, **{VOICE: synth.voices.pack(VOICE)})
    ko = Kokoro(str(cache / "kokoro-v1.0.int8.onnx"), str(voices_npz))
    ko.create("Warm up the engine.", voice=VOICE, speed=1.0, lang="en-us")
    ours, theirs = [], []
    for p in PARAGRAPHS:
        sentence = p.split(". ")[0] + "."
        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for _ in range(runs):  # alternated, so load hits both alike
            t = time.perf_counter()
            synth.synthesize(sentence, voice=VOICE)
            times["ours"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ko.create(sentence, voice=VOICE, speed=1.0, lang="en-us")
            times["theirs"].append(time.perf_counter() - t)
        ours.append(statistics.median(times["ours"]))
        theirs.append(statistics.median(times["theirs"]))
    return ours, theirs


def judge(audio: np.ndarray, text: str) -> dict[str, float]:
    from support.asr import dnsmos, transcribe, word_error_rate  # type: ignore[import-not-found]

    heard, _words = transcribe(audio)
    return {"wer": round(word_error_rate(text, heard), 3), **{k: round(v, 3) for k, v in dnsmos(audio).items()}}


async def run(urls: dict[str, str], pids: dict[str, int], runs: int) -> dict[str, Any]:
    res: dict[str, Any] = {k: {"whole": [], "stream": [], "audio_s": 0.0, "cpu_s": 0.0, "streamed": {}} for k in urls}
    for r in range(runs):
        for i, p in enumerate(PARAGRAPHS):
            for mode in ("whole", "stream"):
                order = list(urls) if (r + i) % 2 == 0 else list(reversed(urls))
                for name in order:
                    c0 = cpu_s(pids[name])
                    out = await speak(urls[name], p, fragments=mode == "stream")
                    res[name]["cpu_s"] += cpu_s(pids[name]) - c0
                    res[name]["audio_s"] += len(out["audio"]) / 24000
                    res[name][mode].append({k: v for k, v in out.items() if k != "audio"} | {"paragraph": i})
                    if mode == "whole" and r == 0:
                        res[name]["streamed"][i] = out["audio"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--budget-ms", type=float, default=250.0)
    ap.add_argument("--before-tree", type=Path, default=ROOT, help="source tree of the 'before' daemon")
    ap.add_argument("--before-defaults", action="store_true",
                    help="run the 'before' tree with its own defaults (a change of the budget's policy), "
                         "not the old flags")
    args = ap.parse_args()
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    # "before": the first chunk by word counts and every frame decoded (main
    # before issue 16); "after": the defaults. The chunk cache is off in both:
    # the bench repeats its paragraphs, and a hit would time the cache.
    before = (("before (its defaults)", []) if args.before_defaults else
              ("before (4-12 words, full decode)", ["--first-audio-ms", "0", "--trim-silence", "off"]))
    flags = {before[0]: before[1],
             f"after ({args.budget_ms:g} ms budget, trimmed decode)": ["--first-audio-ms", str(args.budget_ms)]}
    trees = dict(zip(flags, (args.before_tree.resolve(), ROOT)))
    procs = {name: (start_daemon(port := free_port(), "--cache-mb", "0", *f, tree=trees[name]), port)
             for name, f in flags.items()}
    try:
        idle = {name: rss_mb(p.pid, "VmRSS") for name, (p, _) in procs.items()}
        urls = {name: f"ws://127.0.0.1:{port}/v1/stream" for name, (_, port) in procs.items()}
        pids = {name: p.pid for name, (p, _) in procs.items()}
        res = asyncio.run(run(urls, pids, args.runs))
        peak = {name: rss_mb(p.pid, "VmHWM") for name, (p, _) in procs.items()}
    finally:
        for p, _ in procs.values():
            p.terminate()
            p.wait(15)
    engine_first, reference_first = first_sentence_engine_s(min(args.runs, 3))
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": cpu,
                              "runs": args.runs, "engine_first_sentence_ms": [round(e * 1000) for e in engine_first],
                              "kokoro_onnx_first_sentence_ms": [round(e * 1000) for e in reference_first],
                              "trees": {name: str(t) for name, t in trees.items()}}
    for name, r in res.items():
        row: dict[str, Any] = {}
        for mode in ("whole", "stream"):
            items = r[mode]
            for key in ("first_audio_s", "first_speech_s"):
                vals = [x[key] for x in items if x[key] is not None]
                ratios = [x[key] / engine_first[x["paragraph"]] for x in items if x[key] is not None]
                row[f"{mode}_{key[:-2]}_ms"] = summary(vals)
                row[f"{mode}_{key[:-2]}_over_first_sentence"] = {"p50": round(pct(ratios, 0.5), 3),
                                                                  "p95": round(pct(ratios, 0.95), 3)}
                ref = [x[key] / reference_first[x["paragraph"]] for x in items if x[key] is not None]
                row[f"{mode}_{key[:-2]}_over_kokoro_onnx_first_sentence"] = {"p50": round(pct(ref, 0.5), 3),
                                                                             "p95": round(pct(ref, 0.95), 3)}
            row[f"{mode}_underruns"] = sum(x["underruns"] for x in items)
            row[f"{mode}_max_wait_2nd_chunk_ms"] = round(max(x["wait_2nd_s"] for x in items) * 1000, 1)
            slack = [x["min_slack_s"] for x in items if x["min_slack_s"] is not None]
            row[f"{mode}_chunk_slack_ms"] = {"min": round(min(slack, default=float("nan")) * 1000, 1),
                                             "p50": round(pct(slack, 0.5) * 1000, 1) if slack else None}
        row["first_chunks"] = sorted({x["chunks"][0] for x in r["whole"]})
        # Per paragraph: a short first sentence leaves less room under its ratio.
        row["whole_by_paragraph"] = [
            {"first_audio_ms_p50": round(pct([x["first_audio_s"] for x in sel], 0.5) * 1000, 1),
             "over_kokoro_onnx_first_sentence_p50": round(pct([x["first_audio_s"] for x in sel], 0.5)
                                                          / reference_first[i], 3),
             "first_chunks": sorted({x["chunks"][0] for x in sel})}
            for i in range(len(PARAGRAPHS))
            if (sel := [x for x in r["whole"] if x["paragraph"] == i and x["first_audio_s"] is not None])]
        row["chunks_of_paragraph_0"] = r["whole"][0]["chunks"]
        row["daemon_cpu_per_audio_s"] = round(r["cpu_s"] / r["audio_s"], 3)
        row["idle_rss_mb"], row["peak_rss_mb"] = round(idle[name], 1), round(peak[name], 1)
        row["quality_whole_paragraphs"] = [judge(a, PARAGRAPHS[i]) for i, a in sorted(r["streamed"].items())]
        result[name] = row
    result["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    out = ROOT / "bench" / "results" / f"first-audio-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
