"""Option groups several commands share: the engine (serve, say, pipe), the
speech (say, pipe) and talking to a daemon (say, pipe), so a new flag reaches
every command that needs it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kokorod.errors import InputError

DEFAULT_URL = "ws://127.0.0.1:8765/v1/stream"


def add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", default=os.environ.get("KOKOROD_ENGINE", "auto"),
                   choices=("auto", "onnx", "onnx-fp32", "openvino-split", "torch"),
                   help="synthesis engine: auto (default) = the ONNX variant measured fastest on this CPU (the "
                        "daemon measures once, after ready, while idle; recorded), onnx = int8, onnx-fp32 = fp32 "
                        "convolutions, openvino-split = int8 front + OpenVINO bf16 decoder (kokorod[openvino]), "
                        "torch")
    g.add_argument("--cache-dir", default=None, help="asset cache (default: $KOKOROD_CACHE_DIR or the user cache dir)")
    g.add_argument("--model", default=None, help="model file: .onnx for --engine onnx, .pth for --engine torch")
    g.add_argument("--config", default=None, help="Kokoro config.json for --engine torch (default: from the hub)")
    g.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, mps")
    g.add_argument("--trim-silence", default=None, metavar="K|off",
                   help="ONNX: decode only K frames (25 ms each) of the silence before each chunk's speech and "
                        "min(K, 2) after it; off decodes all of it (default: $KOKOROD_ONNX_TRIM_SILENCE, else K=8)")


def add_speech_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", default=None, help="voice or blend, e.g. af_heart or af_heart:0.7,af_bella:0.3")
    p.add_argument("--speed", type=float, default=1.0, help="0.5 to 2.0 (default 1.0)")
    p.add_argument("--lang", default=None, help="language of the text: en-us, en-gb, es, fr, hi, it, pt-br, ja, zh "
                   "(default: the voice's)")


def add_client_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `say` and `pipe`, which talk to the daemon when one runs."""
    p.add_argument("-o", "--output", default=None,
                   help="write a file instead of playing (say: .wav .mp3 .opus .ogg .flac .m4a .aac; pipe: WAV)")
    p.add_argument("--url", default=os.environ.get("KOKOROD_URL", DEFAULT_URL), help=f"daemon URL (default {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="daemon token (default: $KOKOROD_TOKEN)")
    p.add_argument("--local", action="store_true", help="never use the daemon; synthesize in this process")
    p.add_argument("--words", action="store_true", help="print each word in time with playback")


def check_client_args(args: argparse.Namespace) -> None:
    """Before anything loads or connects: a bad speed or an -o into a missing
    directory fails at once, not after the speech."""
    from kokorod.speech.synthesizer import check_speed

    check_speed(args.speed)
    if args.output is not None and Path(args.output).parent and not Path(args.output).expanduser().parent.exists():
        raise InputError(f"directory {Path(args.output).parent} does not exist", "create it or pick another -o path")
