#!/usr/bin/env python3
"""What --engine auto costs a start: ``serve`` → ``/readyz``, in one run.

Prints the machine first. In a fresh cache directory (the shared model and
voices linked in, the candidates' optimised graphs built first, untimed):

1. ``--engine onnx``: int8, nothing measured (what ``auto`` did before);
2. ``--engine auto``, first start: no record, the candidates are measured
   (today after ready, while idle: also timed, ready → measured);
3. ``--engine auto``, second start: the record is read, nothing measured;

``--rounds`` times, the record removed before each round's first auto start.
``--before TREE`` adds the same first auto start from another checkout (say,
``git worktree add /tmp/before d4e5d37``, which measured before ready),
alternating with this tree's. ``--cold`` adds a first auto start with no
graph cache at all (it builds both candidates' graphs: minutes on a loaded
2-core machine).

    PYTHONPATH=. .venv/bin/python bench/engine_start.py --rounds 2 [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SHARED = ("kokoro-v1.0.int8.onnx", "voices", "lexicon", "langid")


def engine_source(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("kokorod_engine_info{"):
                return line.split('source="')[1].split('"')[0]
    return ""


def serve_to_ready(cache: Path, *extra: str, tree: Path = ROOT, until_measured: bool = False) -> tuple[float, str, float | None]:
    """serve → /readyz seconds, the engine log line, and (``until_measured``)
    seconds from ready until /metrics says the engine was measured."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = cache / f"daemon-{port}.log"
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--port", str(port), "--cache-dir",
                                 str(cache), "--first-audio-ms", "0", *extra], stdout=out, stderr=subprocess.STDOUT,
                                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
        measured_s = None
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            elapsed = time.perf_counter() - started
            while until_measured:
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                if engine_source(port) in ("measured", "cached"):
                    measured_s = time.perf_counter() - started - elapsed
                    break
                time.sleep(0.25)
        finally:
            proc.terminate()
            proc.wait(30)
    chosen = next((line.split("INFO kokorod.engine: ")[1] for line in log.read_text().splitlines()
                   if "kokorod.engine: engine " in line), "")
    return elapsed, chosen, measured_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--before", type=Path, default=None, help="another checkout, to time its first auto start too")
    args = ap.parse_args()
    from machine import cpu_info

    from kokorod.assets.paths import resolve_cache_dir

    print(json.dumps({"machine": cpu_info()}))
    shared = resolve_cache_dir(None)
    with tempfile.TemporaryDirectory(prefix="kokorod-engine-start-") as tmp:
        cache = Path(tmp)
        for name in SHARED:
            (cache / name).symlink_to(shared / name)
        if args.cold:
            t, chosen, _ = serve_to_ready(cache, "--engine", "auto")
            print(json.dumps({"start": "auto, cold (no graph cache, no record)", "serve_to_ready_s": round(t, 2),
                              "engine": chosen}, ensure_ascii=False))
        else:
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from kokorod.engine import "
                            "load_engine; [load_engine(k, cache_dir=Path(sys.argv[1])) for k in ('onnx', 'onnx-fp32')]",
                            str(cache)], check=True)
        for r in range(args.rounds):
            for record in (cache / "onnx").glob("engine-choice-*.json"):
                record.unlink()
            starts: list[tuple[str, tuple[str, ...], Path, bool]] = [
                ("onnx (forced: nothing measured, as auto before)", ("--engine", "onnx"), ROOT, False)]
            first = ("auto, first start (measures)", ("--engine", "auto"), ROOT, True)
            if args.before is not None:
                before = (f"auto, first start, {args.before.name} tree", ("--engine", "auto"), args.before, True)
                starts += [before, first] if r % 2 == 0 else [first, before]
            else:
                starts.append(first)
            starts.append(("auto, second start (record)", ("--engine", "auto"), ROOT, False))
            for label, extra, tree, until_measured in starts:
                if until_measured:
                    for record in (cache / "onnx").glob("engine-choice-*.json"):
                        record.unlink()
                t, chosen, measured_s = serve_to_ready(cache, *extra, tree=tree, until_measured=until_measured)
                print(json.dumps({"round": r + 1, "start": label, "serve_to_ready_s": round(t, 2),
                                  "ready_to_measured_s": None if measured_s is None else round(measured_s, 2),
                                  "engine": chosen}, ensure_ascii=False), flush=True)
        shutil.rmtree(cache / "onnx", ignore_errors=True)


if __name__ == "__main__":
    main()
