#!/usr/bin/env python3
"""Streaming benchmark: the real daemon over loopback, compared in one run with
kokoro-onnx's create_stream and with the engine's own floor.

Prints one JSON document and keeps it under bench/results/. Absolute timings on
a shared 2-core box are noisy; the ratios within one run are what to read.

    .venv/bin/python bench/stream_bench.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_info, daemon_env, describe  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Audio, Cancelled, Done, Error, Speak  # noqa: E402

VOICE = "af_heart"
PARAGRAPHS = [
    "The library opens at nine in the morning on weekdays. On weekends it opens an hour later, "
    "and it closes early on public holidays. Members can borrow up to ten books at a time.",
    "Our quarterly results were better than expected, with revenue up twelve percent. "
    "Most of the growth came from new customers in Europe. We expect the trend to continue next year.",
    "To reset your password, open the settings page and choose security. Then click the reset link, "
    "and follow the instructions in the email we send you. The link expires after one hour.",
]
LONG_TEXT = " ".join(PARAGRAPHS * 3)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5) * scale, 1), "p95": round(pct(values, 0.95) * scale, 1), "n": len(values)}


class Player:
    """A client that plays at 1x from its first audio frame and counts underruns."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.stall_s = 0.0
        self.underruns = 0

    def on_audio(self, frame: Audio, now: float) -> None:
        if self.t0 is None:
            self.t0 = now
            return
        due = self.t0 + self.stall_s + frame.offset / frame.sample_rate
        if now > due + 0.005:  # 5 ms of jitter is inaudible with any real buffer
            self.underruns += 1
            self.stall_s += now - due


async def play_until_end(ws: Any, codec: MsgpackCodec, player: Player, started: float) -> tuple[float | None, float, Any]:
    """Receive one utterance, "playing" it at 1x: (time to first audio, seconds of
    audio, the event that ended it)."""
    first = None
    audio_s = 0.0
    while True:
        event = codec.decode_event(await ws.recv())
        now = time.perf_counter()
        if isinstance(event, Audio):
            first = first if first is not None else now - started
            player.on_audio(event, now)
            audio_s += event.samples / event.sample_rate
        elif isinstance(event, (Done, Cancelled, Error)):
            return first, audio_s, event


async def _speak(url: str, text: str, *, fragments: bool, words_per_s: float = 20.0) -> dict[str, Any]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        codec.decode_event(await ws.recv())  # ready
        player = Player()
        start = time.perf_counter()
        if fragments:
            async def feed() -> None:
                pieces = [w + " " for w in text.split(" ")]
                for i, piece in enumerate(pieces):
                    await ws.send(codec.encode_message(Speak("u", piece, final=i == len(pieces) - 1)))
                    await asyncio.sleep(1 / words_per_s)
            feeder = asyncio.create_task(feed())
        else:
            await ws.send(codec.encode_message(Speak("u", text, voice=VOICE, final=True)))
            feeder = None
        first, audio_s, _end = await play_until_end(ws, codec, player, start)
        if feeder is not None:
            await feeder
        return {"ttfa_s": first, "audio_s": audio_s, "wall_s": time.perf_counter() - start, "underruns": player.underruns}


async def _barge_in(url: str) -> dict[str, float]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        codec.decode_event(await ws.recv())
        await ws.send(codec.encode_message(Speak("old", LONG_TEXT, voice=VOICE, final=True)))
        heard = 0.0
        while heard < 1.0:  # let the old utterance get going
            event = codec.decode_event(await ws.recv())
            if isinstance(event, Audio):
                heard += event.samples / event.sample_rate
        sent = time.perf_counter()
        await ws.send(codec.encode_message(Speak("new", "Stop. New question.", voice=VOICE, final=True)))
        cancelled_at = last_old = None
        while True:
            event = codec.decode_event(await ws.recv())
            now = time.perf_counter()
            if isinstance(event, Audio) and event.utterance == "old":
                last_old = now
            if isinstance(event, Cancelled) and event.utterance == "old":
                cancelled_at = now
            if isinstance(event, Done) and event.utterance == "new":
                break
        return {"cancelled_s": (cancelled_at or now) - sent, "last_old_audio_s": max(0.0, (last_old or sent) - sent)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(port: int, *extra: str, tree: Path = ROOT) -> subprocess.Popen[bytes]:
    """A daemon on ``port``; ``tree``: the source tree it runs (a worktree of
    another commit, for a before/after in one run)."""
    proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--port", str(port), *extra], cwd=tree,
                            env=daemon_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("daemon did not become ready")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def floor_and_reference(texts: list[str], runs: int) -> dict[str, Any]:
    """In-process: the engine's time for each text's first chunk alone (the floor),
    and kokoro-onnx's create_stream time to first chunk on the same model/voice."""
    from kokoro_onnx import Kokoro

    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.speech.build import EngineOptions, build_synthesizer
    from kokorod.text.languages import for_voice
    from kokorod.text.per_language import segmenter_for
    from kokorod.speech.render import render_segment
    from kokorod.engine.base import CancelToken

    synth = build_synthesizer(EngineOptions())
    synth.synthesize("Warm up the engine.")
    floors: list[float] = []
    for text in texts:
        seg = segmenter_for(for_voice(VOICE))
        first = (seg.feed(text) + seg.flush())[0]
        for _ in range(runs):
            t = time.perf_counter()
            render_segment(synth, first, voice=VOICE, speed=1.0, lang=for_voice(VOICE), last=False, token=CancelToken())
            floors.append(time.perf_counter() - t)
    cache = resolve_cache_dir(None)
    voices_npz = cache / "bench-voices.npz"
    np.savez(voices_npz, **{VOICE: synth.voices.pack(VOICE)})
    ko = Kokoro(str(cache / "kokoro-v1.0.int8.onnx"), str(voices_npz))

    async def ko_first(text: str) -> float:
        t = time.perf_counter()
        stream = ko.create_stream(text, voice=VOICE, speed=1.0, lang="en-us")
        async for _samples, _sr in stream:
            elapsed = time.perf_counter() - t
            await stream.aclose()
            return elapsed
        return float("nan")

    asyncio.run(ko_first("Warm up the engine."))
    ko_ttfa = [asyncio.run(ko_first(text)) for text in texts for _ in range(runs)]
    full: list[float] = []
    for text in texts:  # whole-paragraph real-time factor of our engine path
        t = time.perf_counter()
        chunk = synth.synthesize(text)
        full.append((time.perf_counter() - t) / (chunk.samples / 24000))
    return {"floor_s": floors, "kokoro_onnx_ttfa_s": ko_ttfa, "engine_rtf": full}


async def bench_daemon(url: str, runs: int) -> dict[str, Any]:
    ttfa_final = [(await _speak(url, p, fragments=False))["ttfa_s"] for p in PARAGRAPHS for _ in range(runs)]
    ttfa_stream = [(await _speak(url, p, fragments=True))["ttfa_s"] for p in PARAGRAPHS for _ in range(runs)]
    one = await _speak(url, LONG_TEXT, fragments=False)
    two = await asyncio.gather(_speak(url, LONG_TEXT, fragments=False), _speak(url, LONG_TEXT, fragments=False))
    barge = [await _barge_in(url) for _ in range(max(runs, 5))]
    return {
        "ttfa_final_s": ttfa_final, "ttfa_stream_s": ttfa_stream, "long_1": one, "long_2": list(two), "barge": barge,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 runs, for a smoke check")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    port = free_port()
    proc = start_daemon(port)
    try:
        daemon = asyncio.run(bench_daemon(f"ws://127.0.0.1:{port}/v1/stream", runs))
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    ref = floor_and_reference(PARAGRAPHS, runs)
    floor_p50 = pct(ref["floor_s"], 0.5)
    ttfa_p50 = pct(daemon["ttfa_final_s"], 0.5)
    ko_p50 = pct(ref["kokoro_onnx_ttfa_s"], 0.5)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": cpu | {"load_avg_1m_end": round(os.getloadavg()[0], 2)},
        "runs_per_text": runs,
        "ttfa_final_paragraph_ms": summary(daemon["ttfa_final_s"]),
        "ttfa_token_stream_20wps_ms": summary(daemon["ttfa_stream_s"]),
        "floor_first_chunk_ms": summary(ref["floor_s"]),
        "kokoro_onnx_create_stream_ttfa_ms": summary(ref["kokoro_onnx_ttfa_s"]),
        "ttfa_over_kokoro_onnx": round(ttfa_p50 / ko_p50, 3),
        "ttfa_minus_floor_ms": round((ttfa_p50 - floor_p50) * 1000, 1),
        "engine_rtf_mean": round(statistics.mean(ref["engine_rtf"]), 3),
        "long_text_audio_s": round(daemon["long_1"]["audio_s"], 1),
        "underruns_1_stream": daemon["long_1"]["underruns"],
        "underruns_2_streams": [r["underruns"] for r in daemon["long_2"]],
        "barge_in_cancelled_ms": summary([b["cancelled_s"] for b in daemon["barge"]]),
        "barge_in_last_old_audio_ms": summary([b["last_old_audio_s"] for b in daemon["barge"]]),
        "daemon_peak_rss_mb": round(rss, 1),
        "targets": {
            "ttfa_le_quarter_of_kokoro_onnx": ttfa_p50 <= ko_p50 / 4,
            "ttfa_within_50ms_of_floor": ttfa_p50 - floor_p50 <= 0.050,
            "barge_in_p95_lt_100ms": pct([b["cancelled_s"] for b in daemon["barge"]], 0.95) < 0.100,
            "zero_underruns_1_and_2_streams": daemon["long_1"]["underruns"] == 0 and all(r["underruns"] == 0 for r in daemon["long_2"]),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    out = ROOT / "bench" / "results" / f"stream-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
