"""Start-up time and memory of `kokorod serve`, two trees compared in one run.

For each tree (default: a "before" worktree and this checkout), interleaved and
repeated, a daemon is started on a free loopback port and we measure:

- ready_s: from spawning the process to the first 200 from /readyz;
- idle_rss_mb: the daemon's resident memory a moment after it is ready;
- rss_after_mb: resident memory after a few syntheses over the WebSocket
  (and peak_rss_mb, the kernel's high-water mark);
- torch: whether libtorch is mapped into the daemon (/proc/PID/maps);
- the daemon's own "model loaded in" / "warm-up" log figures when it prints them.

Each tree runs with its own code first on sys.path (PYTHONPATH=tree, cwd=tree),
so a git worktree of an older commit measures that commit. The first run of the
current tree can be made against an empty optimised-graph cache (--cold), to
show the cost of the first start after an install or an upgrade.

The machine is shared, so figures are noisy: compare the two trees within one
run (medians and ratios), never across runs.

    python bench/footprint.py --before /work/before9 --repeats 3 --json bench/results/footprint.json
    python bench/footprint.py --before /work/before9 --rtf 5 --rtf-variant dequantize=conv

With --rtf it measures the engines instead (one process, interleaved runs):
real-time factor = synthesis seconds / audio seconds, by wall clock and by
process CPU time, for the before tree's OnnxEngine and this tree's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, describe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call me tomorrow morning before nine, and bring the report.",
    "She sells fresh bread and warm coffee at the little shop downtown, and the line goes around the corner.",
]
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])  # kB
    return out


def maps_torch(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


async def synthesize_all(url: str, texts: list[str]) -> list[dict[str, float]]:
    from kokorod.client import KokorodClient

    client = await KokorodClient.connect(url)
    out = []
    try:
        for text in texts:
            started = time.perf_counter()
            audio, rate, _words = await client.synthesize(text)
            out.append({"seconds": time.perf_counter() - started, "audio_s": len(audio) / rate})
    finally:
        await client.close()
    return out


def run_daemon(tree: Path, label: str, *, syntheses: int, env_extra: dict[str, str], log_dir: Path) -> dict[str, object]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KOKOROD_ENGINE")}
    env.update(PYTHONPATH=str(tree), **env_extra)
    log_path = log_dir / f"{label}-{port}.log"
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--port", str(port)],
                                cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready_s = None
            deadline = started + 300
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{label}: daemon exited: {log_path.read_text()[-1500:]}")
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                        ready_s = time.perf_counter() - started
                        break
                except OSError:
                    time.sleep(0.05)
            if ready_s is None:
                raise RuntimeError(f"{label}: daemon not ready in 300 s")
            time.sleep(1.0)
            idle = proc_status(proc.pid)
            torch_idle = maps_torch(proc.pid)
            runs = asyncio.run(synthesize_all(f"ws://127.0.0.1:{port}/v1/stream", (TEXTS * syntheses)[:syntheses]))
            time.sleep(0.5)
            after = proc_status(proc.pid)
            torch_after = maps_torch(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    loaded = re.search(r"model loaded in ([0-9.]+) s", text)
    warm = re.search(r"warm-up(?: synthesis)? ([0-9.]+) s", text)
    return {
        "tree": label, "ready_s": round(ready_s, 3),
        "idle_rss_mb": round(idle["VmRSS"] / 1024, 1), "rss_after_mb": round(after["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(after["VmHWM"] / 1024, 1), "torch": torch_idle or torch_after,
        "model_loaded_s": float(loaded.group(1)) if loaded else None,
        "warmup_s": float(warm.group(1)) if warm else None,
        "synth_s": [round(r["seconds"], 3) for r in runs], "audio_s": [round(r["audio_s"], 2) for r in runs],
    }


RTF_TEXTS = {
    "short": "Ready.",
    "sentence": "The quick brown fox jumps over the lazy dog near the river bank.",
    "two": "Please call me tomorrow morning before nine, and bring the report. "
           "Our meeting moved to Thursday because the manager is traveling.",
    "long": "She sells fresh bread and warm coffee at the little shop downtown. Turn left at the second light, "
            "then park behind the blue building. The quick brown fox jumps over the lazy dog near the river bank, "
            "and nobody noticed until the evening news.",
}


def engine_rtf(before: Path, rounds: int, extra: list[str]) -> dict[str, object]:
    """Real-time factor of the before tree's OnnxEngine and this tree's (as
    load_engine builds it), in one process, runs interleaved: wall seconds and
    process CPU seconds per second of audio, per text length."""
    import importlib.util

    from kokorod.assets.model import ensure_model
    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.assets.voices import VoiceStore
    from kokorod.engine import load_engine
    from kokorod.text.g2p import G2PBank
    from kokorod.text.g2p.english import load_nlp
    from kokorod.text.languages import BY_CODE

    cache = resolve_cache_dir(None)
    spec = importlib.util.spec_from_file_location("_before_onnx_engine", before / "kokorod/engine/onnx_engine.py")
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    engines = {"before": old.OnnxEngine(ensure_model(cache)), "after": load_engine("onnx", cache_dir=cache)}
    for choice in extra:  # e.g. "dequantize=conv", "threads=1", "spinning=1"
        key, _, value = choice.partition("=")
        kwargs: dict[str, object] = {key: int(value) if key == "threads" else (value == "1" if key == "spinning" else value)}
        engines[f"after+{choice}"] = load_engine("onnx", cache_dir=cache, **kwargs)  # type: ignore[arg-type]
    bank = G2PBank(nlp_loader=lambda: load_nlp(without_torch=True))
    voices = VoiceStore(cache / "voices")
    pack = voices.pack("af_heart")
    vocab = engines["after"].vocab
    inputs = {}
    for name, text in RTF_TEXTS.items():
        phonemes = "".join(c for c in bank.phonemize(text, BY_CODE["en-us"])[0].phonemes if c in vocab)
        inputs[name] = ([0, *(vocab[c] for c in phonemes), 0], voices.style_for(pack, len(phonemes)))
    for engine in engines.values():  # first runs out of the way
        engine.run(*inputs["short"], 1.0)
    samples: dict[tuple[str, str], list[tuple[float, float, float]]] = {(e, t): [] for e in engines for t in inputs}
    for r in range(rounds):
        for text, (ids, style) in inputs.items():
            order = list(engines) if r % 2 == 0 else list(engines)[::-1]
            for label in order:
                wall, cpu = time.perf_counter(), time.process_time()
                out = engines[label].run(ids, style, 1.0)
                samples[(label, text)].append((time.perf_counter() - wall, time.process_time() - cpu,
                                               out.audio.shape[0] / 24000))
    rows = []
    for text in inputs:
        for label in engines:
            runs = samples[(label, text)]
            audio = runs[0][2]
            wall = statistics.median(x[0] for x in runs)
            cpu = statistics.median(x[1] for x in runs)
            rows.append({"engine": label, "text": text, "phonemes": len(inputs[text][0]) - 2, "audio_s": round(audio, 2),
                         "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                         "rtf_wall": round(wall / audio, 3), "rtf_cpu": round(cpu / audio, 3)})
    return {"rounds": rounds, "rows": rows}


def cold_cache_env(base: Path, tmp: Path) -> dict[str, str]:
    """A cache directory with the real model and voices but no optimised graph."""
    from kokorod.assets.model import MODEL_FILENAME

    (tmp / "voices").symlink_to(base / "voices")
    (tmp / MODEL_FILENAME).symlink_to(base / MODEL_FILENAME)
    return {"KOKOROD_CACHE_DIR": str(tmp)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="tree of the code before (e.g. a git worktree)")
    parser.add_argument("--after", type=Path, default=ROOT, help="tree of the code after (default: this checkout)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="a further tree to measure in the same run (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--syntheses", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="first run the after tree once with an empty graph cache")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--rtf", type=int, default=0, metavar="ROUNDS",
                        help="instead: the engines' real-time factor, before vs after, ROUNDS interleaved rounds")
    parser.add_argument("--rtf-variant", action="append", default=[], metavar="OPTION=VALUE",
                        help="with --rtf: also this tree's engine with a load option (dequantize=conv, threads=1, spinning=1)")
    args = parser.parse_args()
    if args.rtf:
        cpu0 = cpu_info()
        print(describe(cpu0))
        report = engine_rtf(args.before.resolve(), args.rtf, args.rtf_variant)
        print(f"{'engine':24s} {'text':9s} {'phon':>4s} {'audio_s':>7s} {'wall_s':>7s} {'cpu_s':>7s} {'RTFwall':>7s} {'RTFcpu':>7s}")
        for row in report["rows"]:  # type: ignore[union-attr]
            print(f"{row['engine']:24s} {row['text']:9s} {row['phonemes']:4d} {row['audio_s']:7.2f} {row['wall_s']:7.3f} "
                  f"{row['cpu_s']:7.3f} {row['rtf_wall']:7.3f} {row['rtf_cpu']:7.3f}")
        cpu0["load_avg_1m_end"] = list(os.getloadavg())
        print(f"load average at end: {cpu0['load_avg_1m_end']}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"cpu": cpu0, **report}, indent=1) + "\n")
        return 0

    from kokorod.assets.paths import default_cache_dir

    cpu = cpu_info()
    print(describe(cpu))
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="kokorod-footprint-") as tmp_name:
        tmp = Path(tmp_name)
        if args.cold:
            cold = tmp / "cold-cache"
            cold.mkdir()
            row = run_daemon(trees["after"], "after-cold", syntheses=args.syntheses,
                             env_extra=cold_cache_env(default_cache_dir(), cold), log_dir=tmp)
            results.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(cold, ignore_errors=True)
        for r in range(args.repeats):
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for label in order:
                row = run_daemon(trees[label], label, syntheses=args.syntheses, env_extra={}, log_dir=tmp)
                row["repeat"] = r
                results.append(row)
                print(json.dumps(row), flush=True)
    cpu["load_avg_1m_end"] = list(os.getloadavg())

    def med(label: str, key: str) -> float:
        return statistics.median(float(row[key]) for row in results if row["tree"] == label)  # type: ignore[arg-type]

    others = [t for t in trees if t != "before"]
    print(f"\nmedians of {args.repeats} starts; ratio = tree / before")
    print(f"{'metric':16s} {'before':>9s} " + " ".join(f"{t:>9s} {'ratio':>6s}" for t in others))
    summary: dict[str, dict[str, float]] = {}
    for key in ("ready_s", "idle_rss_mb", "rss_after_mb", "peak_rss_mb"):
        b = med("before", key)
        summary[key] = {"before": b}
        cells = []
        for t in others:
            v = med(t, key)
            summary[key][t], summary[key][f"{t}/before"] = v, v / b
            cells.append(f"{v:9.2f} {v / b:6.2f}")
        print(f"{key:16s} {b:9.2f} " + " ".join(cells))
    for label in trees:
        rows = [row for row in results if row["tree"] == label]
        print(f"torch mapped ({label}): {sorted({bool(row['torch']) for row in rows})}")
    cold_rows = [row for row in results if row["tree"] == "after-cold"]
    if cold_rows:
        print(f"after, first start with an empty graph cache: ready in {cold_rows[0]['ready_s']:.2f} s")
    print(f"load average at end: {cpu['load_avg_1m_end']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": cpu, "runs": results, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
