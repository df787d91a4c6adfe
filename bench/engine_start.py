#!/usr/bin/env python3
"""What --engine auto costs a start: ``serve`` → ``/readyz``, in one run.

Prints the machine first. In a fresh cache directory (the shared model and
voices linked in, the candidates' optimised graphs built first, untimed):

1. ``--engine onnx``: int8, nothing measured (what ``auto`` did before);
2. ``--engine auto``, first start: no record, the candidates are measured;
3. ``--engine auto``, second start: the record is read, nothing measured;

``--rounds`` times, the record removed before each round's first auto start.
``--cold`` adds a first auto start with no graph cache at all (it builds
both candidates' graphs: minutes on a loaded 2-core machine).

    PYTHONPATH=. .venv/bin/python bench/engine_start.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
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


def serve_to_ready(cache: Path, *extra: str) -> tuple[float, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = cache / f"daemon-{port}.log"
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kokorod", "serve", "--port", str(port), "--cache-dir",
                                 str(cache), "--first-audio-ms", "0", *extra], stdout=out, stderr=subprocess.STDOUT)
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
        finally:
            proc.terminate()
            proc.wait(30)
    chosen = next((line.split("INFO kokorod.engine: ")[1] for line in log.read_text().splitlines()
                   if "kokorod.engine: engine " in line), "")
    return elapsed, chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cold", action="store_true")
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
            t, chosen = serve_to_ready(cache, "--engine", "auto")
            print(json.dumps({"start": "auto, cold (no graph cache, no record)", "serve_to_ready_s": round(t, 2),
                              "engine": chosen}, ensure_ascii=False))
        else:
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from kokorod.engine import "
                            "load_engine; [load_engine(k, cache_dir=Path(sys.argv[1])) for k in ('onnx', 'onnx-fp32')]",
                            str(cache)], check=True)
        for r in range(args.rounds):
            for record in (cache / "onnx").glob("engine-choice-*.json"):
                record.unlink()
            for label, extra in (("onnx (forced: nothing measured, as auto before)", ("--engine", "onnx")),
                                 ("auto, first start (measures)", ("--engine", "auto")),
                                 ("auto, second start (record)", ("--engine", "auto"))):
                t, chosen = serve_to_ready(cache, *extra)
                print(json.dumps({"round": r + 1, "start": label, "serve_to_ready_s": round(t, 2),
                                  "engine": chosen}, ensure_ascii=False))
        shutil.rmtree(cache / "onnx", ignore_errors=True)


if __name__ == "__main__":
    main()
