"""What machine a benchmark ran on: printed first by every bench, kept in its JSON.

Figures from one machine say little about another (the same 2-core kind
measured RTF 0.15 on one CPU and 0.50 on another: int8 convolutions are slow
without VNNI), so every result names its CPU, instruction set and load."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# The instruction-set features that move Kokoro's int8 ONNX speed the most.
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_info() -> dict[str, Any]:
    model: str | None = None
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux: no flags
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    info: dict[str, Any] = {"model": model or platform.processor() or platform.machine(), "cpus": cpus,
                            "flags": {f: f in flags for f in FLAGS}, "load_avg_1m": round(os.getloadavg()[0], 2),
                            "python": platform.python_version()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def describe(info: dict[str, Any] | None = None) -> str:
    """One line for the top of a bench's output."""
    info = info or cpu_info()
    flags = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in info["flags"].items())
    return (f"CPU: {info['model']} ({info['cpus']} cpus), {flags}; load average {info['load_avg_1m']}; "
            f"python {info['python']}" + (f", onnxruntime {info['onnxruntime']}" if "onnxruntime" in info else ""))


def daemon_env() -> dict[str, str]:
    """The environment for a daemon a bench starts: int8 (``--engine onnx``)
    unless the bench says otherwise. With ``auto`` a daemon with no record
    measures its candidates once it is idle, in the middle of a bench (two
    daemons side by side then steal each other's CPU, and loading the fp32
    candidate peaks near 2 GB): the first-audio bench measured 0.97x instead
    of ~0.4x that way. Benches that compare engines pass ``--engine``."""
    env = dict(os.environ)
    env.setdefault("KOKOROD_ENGINE", "onnx")
    return env
