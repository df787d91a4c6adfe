#!/usr/bin/env python3
"""Does measured admission hold on this machine? Every admitted stream must
play at 1x without an underrun, and the excess must be refused.

Starts a daemon with its default admission (``--max-active-streams auto``),
reads the RTF and capacity it measured from ``ready``, then starts more clients
than that capacity at the same moment (default: capacity + 2), each speaking a
~31 s text and playing it at 1x from its first audio frame (stream_bench's
Player: a frame more than 5 ms late is an underrun). Reports admitted vs
refused, underruns among the admitted (must be 0), time to first audio, and the
daemon's RTF and capacity before and after. Prints the CPU model and flags
first, then one JSON document; exit status 0 only when no admitted stream
underran and the excess was refused.

``--compare`` runs that twice in one sitting, each with a fresh daemon: first
with ``--admission-margin 1`` (admission before the margin was learnt: the
running RTF, no margin), then with the default (the conservative RTF times the
learnt margin), and prints admitted / refused and the admitted streams'
underruns of both. ``--clients N`` fixes the crowd instead of capacity + extra
(the issue's case: 3), ``--repeat K`` speaks the text K times in one utterance
(2: ~62 s).

``--sweep`` instead measures what the machine really serves: admission off
(``--stream-utilisation inf``), N = 1, 2, ... clients at once until one
underruns (the old capacity benchmark); use it to compare engine layouts.
``--layouts`` compares 1 worker x all cores with one single-thread worker per
core in-process (no daemon), alternating them: time for a first sentence alone,
and throughput with every worker busy.

    .venv/bin/python bench/capacity.py [--extra 2] [--runs 1] [-- --engine-workers 2 ...]
    .venv/bin/python bench/capacity.py --compare --clients 3 --repeat 2
    .venv/bin/python bench/capacity.py --sweep [--max-streams 6] [--runs 2] [-- --engine-workers 2 --engine-threads 1]
    .venv/bin/python bench/capacity.py --layouts [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, describe  # noqa: E402
from soak import scrape, start_daemon  # noqa: E402
from stream_bench import PARAGRAPHS, VOICE, Player, pct, peak_rss_mb, play_until_end  # noqa: E402

from kokorod.protocol.codec import MsgpackCodec  # noqa: E402
from kokorod.protocol.messages import Error, Ready, Speak  # noqa: E402

TEXT = " ".join(PARAGRAPHS)


class TracingPlayer(Player):
    """stream_bench's Player, remembering where in the audio each underrun was."""

    def __init__(self) -> None:
        super().__init__()
        self.underrun_at_s: list[float] = []

    def on_audio(self, frame: Any, now: float) -> None:
        before = self.underruns
        super().on_audio(frame, now)
        if self.underruns > before:
            self.underrun_at_s.append(round(frame.offset / frame.sample_rate, 2))
async def read_ready(url: str) -> Ready:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None, proxy=None) as ws:
        ready = codec.decode_event(await ws.recv())
    assert isinstance(ready, Ready)
    return ready


async def listener(url: str, connected: list[int], start: asyncio.Event, delay_s: float = 0.0,
                   text: str = TEXT) -> dict[str, Any]:
    codec = MsgpackCodec()
    async with websockets.connect(url, max_size=None, compression=None, proxy=None, open_timeout=60) as ws:
        codec.decode_event(await ws.recv())  # ready
        connected[0] += 1
        await start.wait()
        await asyncio.sleep(delay_s)
        player = TracingPlayer()
        sent = time.perf_counter()
        await ws.send(codec.encode_message(Speak("u", text, voice=VOICE, final=True)))
        ttfa, audio_s, end = await play_until_end(ws, codec, player, sent)
        refused = isinstance(end, Error) and end.code == "overloaded"
        return {"end": type(end).__name__ if not refused else "refused", "ttfa_s": ttfa, "audio_s": round(audio_s, 1),
                "reason": end.message if refused else None,
                "underruns": player.underruns, "stall_s": round(player.stall_s, 3), "underrun_at_s": player.underrun_at_s}


async def crowd(url: str, n: int, stagger_s: float = 0.0, text: str = TEXT) -> list[dict[str, Any]]:
    """``n`` clients, all connected first, then speaking at once."""
    start, connected = asyncio.Event(), [0]
    tasks = [asyncio.create_task(listener(url, connected, start, stagger_s * i, text)) for i in range(n)]
    while connected[0] < n and not any(t.done() for t in tasks):  # every connection open first
        await asyncio.sleep(0.05)
    start.set()
    return list(await asyncio.gather(*tasks))


def capacity_gauges(http: str) -> dict[str, float]:
    m = scrape(http)
    keys = ("kokorod_rtf_estimate", "kokorod_admission_rtf", "kokorod_admission_margin", "kokorod_capacity_streams", "kokorod_engine_workers", "kokorod_capacity_bound_workers",
            "kokorod_underruns_total", 'kokorod_utterances_refused_total{reason="overloaded"}')
    return {k: round(m[k], 3) for k in keys if k in m}


def ms(values: list[float]) -> dict[str, int] | None:
    values = [v for v in values if v is not None]
    return {"p50": round(pct(values, 0.5) * 1000), "max": round(max(values) * 1000)} if values else None


def admission(url: str, http: str, extra: int, runs: int, daemon_args: list[str], clients: int | None = None,
              repeat: int = 1) -> tuple[dict[str, Any], bool]:
    ready = asyncio.run(read_ready(url))
    cap = ready.capacity
    if cap is None or cap.max_streams is None:
        raise SystemExit(f"the daemon reported no capacity: {cap}")
    clients = clients if clients is not None else cap.max_streams + extra
    text = " ".join([TEXT] * max(1, repeat))
    print(f"daemon: RTF {cap.rtf} at 1x (admission: {cap.admission_rtf} x margin {cap.margin}), {cap.workers} "
          f"worker(s), admits {cap.max_streams} stream(s); starting {clients} clients at once, {runs} run(s)",
          file=sys.stderr)
    rounds = []
    for i in range(runs):
        before = capacity_gauges(http)
        results = asyncio.run(crowd(url, clients, text=text))
        admitted = [r for r in results if r["end"] != "refused"]
        rounds.append({
            "rtf_before": before.get("kokorod_rtf_estimate"), "max_streams_before": before.get("kokorod_capacity_streams"),
            "clients": clients, "admitted": len(admitted), "refused": len(results) - len(admitted),
            "admitted_ended": sorted({r["end"] for r in admitted}),
            "underruns_admitted": [r["underruns"] for r in admitted],
            "stall_s_admitted": [r["stall_s"] for r in admitted],
            "underrun_at_s_admitted": [r["underrun_at_s"] for r in admitted],
            "ttfa_ms_admitted": ms([r["ttfa_s"] for r in admitted]),
            "audio_s_admitted": [r["audio_s"] for r in admitted],
            "refusal": next((r["reason"] for r in results if r["end"] == "refused"), None),
        })
        print(f"run {i + 1}: admitted {len(admitted)}, refused {len(results) - len(admitted)}, "
              f"underruns {rounds[-1]['underruns_admitted']}", file=sys.stderr)
    after = capacity_gauges(http)
    ok = all(sum(r["underruns_admitted"]) == 0 and r["admitted_ended"] == ["Done"] and r["refused"] >= 1
             for r in rounds)
    return {
        "mode": "admission",
        "daemon_args": daemon_args,
        "ready_capacity": {"rtf": cap.rtf, "max_streams": cap.max_streams, "workers": cap.workers,
                           "utilisation": cap.utilisation, "admission_rtf": cap.admission_rtf, "margin": cap.margin},
        "text_audio_s": max((a for r in rounds for a in r["audio_s_admitted"]), default=None),
        "runs": rounds,
        "metrics_after": after,
        "ok": ok,
    }, ok


def sweep(url: str, http: str, max_n: int, runs: int, daemon_args: list[str]) -> tuple[dict[str, Any], bool]:
    ready = asyncio.run(read_ready(url))
    by_n: dict[int, list[list[dict[str, Any]]]] = {}
    clean_n = 0
    for n in range(1, max_n + 1):
        by_n[n] = [asyncio.run(crowd(url, n, stagger_s=0.3)) for _ in range(runs)]
        clean = all(r["end"] == "Done" and r["underruns"] == 0 for run in by_n[n] for r in run)
        print(f"N={n}: underruns {[[r['underruns'] for r in run] for run in by_n[n]]}", file=sys.stderr)
        if not clean:
            break
        clean_n = n
    return {
        "mode": "sweep",
        "daemon_args": daemon_args,
        "ready_capacity": None if ready.capacity is None else {"rtf": ready.capacity.rtf, "workers": ready.capacity.workers},
        "streams_at_1x_no_underruns": clean_n,
        "by_streams": {
            n: {"underruns": sum(r["underruns"] for run in rs for r in run),
                "stall_s": round(sum(r["stall_s"] for run in rs for r in run), 2),
                "ttfa_ms": ms([r["ttfa_s"] for run in rs for r in run])}
            for n, rs in by_n.items()
        },
        "metrics_after": capacity_gauges(http),
    }, True


LAYOUT_FIRST = "The library opens at nine in the morning on weekdays."
LAYOUT_JOBS = [
    "On weekends it opens an hour later, and it closes early on public holidays. Members can borrow up to ten books at a time.",
    "Our quarterly results were better than expected, with revenue up twelve percent. "
    "Most of the growth came from new customers in Europe.",
] * 4


def one_layout(workers: int, threads: int) -> dict[str, Any]:
    """In this process: ``workers`` engines of ``threads`` threads each."""
    from kokorod.speech.build import EngineOptions
    from kokorod.daemon.workers import build_worker_synthesizers

    synths = build_worker_synthesizers(EngineOptions(threads=threads), workers)
    for synth in synths:
        synth.synthesize("Warm up the engine.")
    first, first_audio = [], 0.0
    for _ in range(5):
        t = time.perf_counter()
        chunk = synths[0].synthesize(LAYOUT_FIRST)
        first.append(time.perf_counter() - t)
        first_audio = chunk.samples / chunk.sample_rate
    jobs, audio, lock = list(LAYOUT_JOBS), [0.0], threading.Lock()

    def work(synth: Any) -> None:
        while True:
            with lock:
                if not jobs:
                    return
                text = jobs.pop()
            chunk = synth.synthesize(text)
            with lock:
                audio[0] += chunk.samples / chunk.sample_rate

    t = time.perf_counter()
    threads_ = [threading.Thread(target=work, args=(synth,)) for synth in synths]
    for th in threads_:
        th.start()
    for th in threads_:
        th.join()
    wall = time.perf_counter() - t
    return {"layout": f"{workers}x{threads}", "first_sentence_s_median": round(statistics.median(first), 3),
            "first_sentence_audio_s": round(first_audio, 2), "throughput_x_realtime": round(audio[0] / wall, 3),
            "audio_s": round(audio[0], 1), "wall_s": round(wall, 1), "load_avg_1m": round(os.getloadavg()[0], 2)}


def layouts(rounds: int, cpus: int) -> tuple[dict[str, Any], bool]:
    """1 x cpus against cpus x 1, each in a fresh process, alternating who goes first."""
    pair = [(1, cpus), (cpus, 1)]
    results = []
    for r in range(rounds):
        for workers, threads in (pair if r % 2 == 0 else pair[::-1]):
            out = subprocess.run([sys.executable, __file__, "--one-layout", str(workers), str(threads)],
                                 capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)

    def summary(name: str) -> dict[str, Any]:
        mine = [x for x in results if x["layout"] == name]
        return {"first_sentence_s_median": round(statistics.median(x["first_sentence_s_median"] for x in mine), 3),
                "throughput_x_realtime_median": round(statistics.median(x["throughput_x_realtime"] for x in mine), 3)}

    return {"mode": "layouts", "runs": results, "summary": {n: summary(n) for n in (f"1x{cpus}", f"{cpus}x1")}}, True


def main() -> int:
    if sys.argv[1:2] == ["--one-layout"]:
        print(json.dumps(one_layout(int(sys.argv[2]), int(sys.argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="arguments after -- go to `kokorod serve`")
    parser.add_argument("--extra", type=int, default=2, help="clients beyond the reported capacity (default 2)")
    parser.add_argument("--runs", type=int, default=1, help="rounds of clients (default 1; --sweep: 2)")
    parser.add_argument("--compare", action="store_true",
                        help="before (--admission-margin 1) and after (the default) in one run, fresh daemons")
    parser.add_argument("--clients", type=int, default=None, help="clients at once (default: capacity + --extra)")
    parser.add_argument("--repeat", type=int, default=1, help="speak the ~31 s text this many times per client")
    parser.add_argument("--sweep", action="store_true", help="admission off; find the largest N without underruns")
    parser.add_argument("--max-streams", type=int, default=6, help="--sweep: largest N tried")
    parser.add_argument("--layouts", action="store_true", help="in-process: 1 worker x all cores vs one worker per core")
    parser.add_argument("--rounds", type=int, default=2, help="--layouts: rounds of both layouts (default 2)")
    argv = sys.argv[1:]
    daemon_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    cpu = cpu_info()
    print(describe(cpu), flush=True)
    if args.layouts:
        result, ok = layouts(args.rounds, max(2, cpu["cpus"]))
        print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu, **result}, indent=1))
        return 0 if ok else 1
    extra = list(daemon_args)
    if args.compare:
        sides = {}
        for name, flags in (("before: --admission-margin 1", ["--admission-margin", "1"]), ("after: default", [])):
            sides[name] = one_daemon([*flags, *extra], lambda url, http, a: admission(
                url, http, args.extra, args.runs, a, args.clients, args.repeat))
        print(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "cpu": cpu | {"load_avg_1m_end": round(os.getloadavg()[0], 2)}, "sides": sides}, indent=1))
        for name, side in sides.items():
            for i, r in enumerate(side["runs"]):
                print(f"{name:32} run {i + 1}: clients {r['clients']}, admitted {r['admitted']}, refused "
                      f"{r['refused']}, underruns of the admitted {r['underruns_admitted']} (stalled "
                      f"{r['stall_s_admitted']} s); ready: RTF {side['ready_capacity']['rtf']}, admission RTF "
                      f"{side['ready_capacity']['admission_rtf']} x margin {side['ready_capacity']['margin']}")
        return 0 if all(s["ok"] for s in list(sides.values())[1:]) else 1
    if args.sweep:
        extra = ["--stream-utilisation", "inf", "--max-active-streams", "64", *extra]
    log = Path("/tmp") / f"kokorod-capacity-{int(time.time())}.log"
    proc, url = start_daemon(extra, log)
    http = url.replace("ws://", "http://").rsplit("/v1/", 1)[0]
    try:
        if args.sweep:
            result, ok = sweep(url, http, args.max_streams, args.runs if args.runs != 1 else 2, extra)
        else:
            result, ok = admission(url, http, args.extra, args.runs, extra)
        result["daemon_peak_rss_mb"] = round(peak_rss_mb(proc.pid), 1)  # the kernel's high-water mark
    finally:
        proc.terminate()
        proc.wait(30)
    ready_line = next((line for line in log.read_text(errors="replace").splitlines() if "ready (warm-up" in line), None)
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu | {"load_avg_1m_end": round(os.getloadavg()[0], 2)},
              "daemon_ready_log": ready_line, **result}
    print(json.dumps(result, indent=1))
    return 0 if ok else 1


def one_daemon(daemon_args: list[str], run: Any) -> dict[str, Any]:
    """Start a daemon with ``daemon_args``, ``run(url, http, daemon_args)``, stop it."""
    log = Path("/tmp") / f"kokorod-capacity-{int(time.time())}.log"
    proc, url = start_daemon(daemon_args, log)
    http = url.replace("ws://", "http://").rsplit("/v1/", 1)[0]
    try:
        result, _ok = run(url, http, daemon_args)
    finally:
        proc.terminate()
        proc.wait(30)
    ready_line = next((line for line in log.read_text(errors="replace").splitlines() if "ready (warm-up" in line), None)
    return {"daemon_ready_log": ready_line, **result}


if __name__ == "__main__":
    sys.exit(main())
