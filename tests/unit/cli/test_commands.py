"""The command line's shape: each command family registers its subcommand and
handler (kokorod.cli), ``kokorod --help`` loads no model code, and serve's flags
make the daemon's plain ``ServerConfig``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kokorod
from kokorod.cli import build_parser
from kokorod.cli.serve import config_from_args
from kokorod.config import ServerConfig, ServerLimits


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)  # type: ignore[arg-type]


def test_every_command_is_registered_in_help_order_with_a_handler() -> None:
    assert _commands() == ["serve", "say", "pipe", "phonemize", "voices", "fetch", "doctor", "service"]
    parser = build_parser()
    for argv in (["serve"], ["say", "hi"], ["pipe"], ["phonemize", "hi"], ["voices"], ["fetch"], ["doctor"],
                 ["service", "status"]):
        assert callable(parser.parse_args(argv).handler), argv


def test_building_the_parser_loads_no_model_code() -> None:
    """`kokorod --help` and a typo answer at once: the handlers import what they run."""
    probe = ("import sys, kokorod.cli; kokorod.cli.build_parser(); "
             "print(' '.join(m for m in ('kokorod.engine', 'kokorod.daemon', 'kokorod.text.g2p', 'kokorod.client', "
             "'onnxruntime', 'soxr', 'soundfile', 'av', 'torch', 'spacy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(kokorod.__file__).resolve().parents[1])  # wherever this test file lives
    assert out.stdout.split() == []


def test_serve_flags_make_the_server_config() -> None:
    args = build_parser().parse_args(["serve", "--port", "9100", "--cache-mb", "0", "--max-queued", "0",
                                      "--voice-for", "fr=ff_siwis", "--allow-origin", "http://a.test"])
    config = config_from_args(args)
    assert isinstance(config, ServerConfig)
    assert (config.port, config.chunk_cache_mb, config.voice_for) == (9100, 0, (("fr", "ff_siwis"),))
    assert config.allowed_origins == ("http://a.test",)
    assert config.limits == ServerLimits(max_queued=0)
    defaults = config_from_args(build_parser().parse_args(["serve"]))
    assert defaults.limits == ServerLimits() and defaults.first_audio_ms == ServerConfig.first_audio_ms
