"""The ``kokorod`` command line: serve, say, pipe, phonemize, voices, fetch, doctor, service."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from kokorod import __version__
from kokorod.errors import KokorodError

DEFAULT_URL = "ws://127.0.0.1:8765/v1/stream"
Handler = Callable[[argparse.Namespace], int]
SAY_EPILOG = """narrate a book (Markdown headings become chapters):
  kokorod say -f book.md -o book.mp3 --captions book.vtt --words-json book.json
  kokorod say -f book.md -o book.m4a --split-chapters   # book/01 Title.m4a, book/02 ...
  cat article.txt | kokorod say -f - -o article.opus --quiet
the format follows -o's extension: .wav .mp3 .opus .ogg .flac .m4a .aac (or --format).
Ctrl-C keeps a playable file of everything spoken so far and says where it stopped."""


def _engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", default=os.environ.get("KOKOROD_ENGINE", "auto"),
                   choices=("auto", "onnx", "onnx-fp32", "torch"),
                   help="synthesis engine: auto (default) = the ONNX variant measured fastest on this CPU at the "
                        "daemon's first start (recorded), onnx = int8, onnx-fp32 = fp32 convolutions, torch")
    g.add_argument("--cache-dir", default=None, help="asset cache (default: $KOKOROD_CACHE_DIR or the user cache dir)")
    g.add_argument("--model", default=None, help="model file: .onnx for --engine onnx, .pth for --engine torch")
    g.add_argument("--config", default=None, help="Kokoro config.json for --engine torch (default: from the hub)")
    g.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, mps")
    g.add_argument("--trim-silence", default=None, metavar="K|off",
                   help="ONNX: decode only K frames (25 ms each) of each chunk's edge silence; off decodes all of it "
                        "(default: $KOKOROD_ONNX_TRIM_SILENCE, else on with K=8)")


def _speech_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", default=None, help="voice or blend, e.g. af_heart or af_heart:0.7,af_bella:0.3")
    p.add_argument("--speed", type=float, default=1.0, help="0.5 to 2.0 (default 1.0)")
    p.add_argument("--lang", default=None, help="language of the text: en-us, en-gb, es, fr, hi, it, pt-br, ja, zh "
                   "(default: the voice's)")


def _client_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `say` and `pipe`, which talk to the daemon when one runs."""
    p.add_argument("-o", "--output", default=None,
                   help="write a file instead of playing (say: .wav .mp3 .opus .ogg .flac .m4a .aac; pipe: WAV)")
    p.add_argument("--url", default=os.environ.get("KOKOROD_URL", DEFAULT_URL), help=f"daemon URL (default {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="daemon token (default: $KOKOROD_TOKEN)")
    p.add_argument("--local", action="store_true", help="never use the daemon; synthesize in this process")
    p.add_argument("--words", action="store_true", help="print each word in time with playback")


def cmd_voices(args: argparse.Namespace) -> int:
    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.assets.voices import VoiceStore, voice_info

    from kokorod.text.languages import LANGUAGES, resolve

    store = VoiceStore(resolve_cache_dir(args.cache_dir) / "voices")
    store.ensure_available()
    only = resolve(args.lang).code if args.lang else None
    infos = [voice_info(name) for name in store.names()]
    for lang in LANGUAGES:  # grouped by language, in Kokoro's order
        for info in (i for i in infos if i.lang == lang.code and only in (None, lang.code)):
            print(f"{info.name:16s}{info.lang:8s}{info.language:22s}{info.gender}")
    return 0


def cmd_phonemize(args: argparse.Namespace) -> int:
    """Each word with its phonemes and their source, in-process (G2P only, no model)."""
    import functools
    import json

    from kokorod.speech.synthesizer import phonemize_words
    from kokorod.text.g2p import G2PBank
    from kokorod.text.g2p.english import load_nlp
    from kokorod.text.languages import for_voice, resolve
    from kokorod.text.lexicon import LexiconError, load_lexicon_file, model_vocab

    lang = resolve(args.lang) if args.lang else for_voice(args.voice or "af_heart")
    from kokorod.assets.paths import resolve_cache_dir

    bank = G2PBank(nlp_loader=functools.partial(load_nlp, without_torch=True), builtin=not args.no_builtin,
                   cache_dir=resolve_cache_dir(getattr(args, "cache_dir", None)))
    if bank.unavailable(lang) is not None:
        raise bank.unavailable(lang)  # type: ignore[misc]
    if args.lexicon:
        try:
            bank.lexicons.file = load_lexicon_file(args.lexicon)
        except LexiconError as exc:
            print(f"kokorod: error: {exc.message}", file=sys.stderr)
            return 2
    words = phonemize_words(bank, args.text, lang=lang, vocab=model_vocab())
    if args.json:
        print(json.dumps({"lang": lang.code, "words": [w.__dict__ for w in words]}, ensure_ascii=False))
        return 0
    width = max((len(w.text) for w in words), default=0)
    for w in words:
        print(f"{w.text:<{width}}  {w.phonemes:<24}  {w.source}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from kokorod.assets.doctor import fetch
    from kokorod.assets.paths import resolve_cache_dir

    fetch(resolve_cache_dir(args.cache_dir))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from kokorod.assets.doctor import doctor
    from kokorod.assets.paths import resolve_cache_dir

    cache = resolve_cache_dir(args.cache_dir)
    print(f"kokorod {__version__}, cache {cache}")
    checks = doctor(cache)
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


def cmd_say(args: argparse.Namespace) -> int:
    from kokorod.say import run_say

    return run_say(args)


def cmd_pipe(args: argparse.Namespace) -> int:
    from kokorod.say import run_pipe

    return run_pipe(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from kokorod.app import run_server

    return run_server(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kokorod", description="Real-time streaming speech daemon (Kokoro-82M).")
    parser.add_argument("--version", action="version", version=f"kokorod {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the WebSocket daemon")
    from kokorod.config import add_server_args

    add_server_args(p)
    _engine_args(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("say", help="speak text or narrate a file (through the daemon when it runs, else in-process)",
                       description="Speak text, or narrate a text or Markdown file of any length into an audio file "
                       "with captions and chapters.", epilog=SAY_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="?", default=None, help="the text to speak (or use -f)")
    _client_args(p)
    from kokorod.narrate.options import add_narrate_args

    add_narrate_args(p)
    _speech_args(p)
    _engine_args(p)
    p.set_defaults(handler=cmd_say)

    p = sub.add_parser("pipe", help="speak stdin as it arrives (e.g. an LLM's output)")
    _client_args(p)
    _speech_args(p)
    _engine_args(p)
    p.set_defaults(handler=cmd_pipe)

    p = sub.add_parser("phonemize", help="print each word's phonemes and where they come from (to write lexicon entries)")
    p.add_argument("text", help="the text")
    p.add_argument("--lang", default=None, help="language: en-us, en-gb, es, fr, hi, it, pt-br, ja, zh (default: the voice's)")
    p.add_argument("--voice", default=None, help="take the language from this voice (default af_heart)")
    p.add_argument("--lexicon", default=None, metavar="PATH", help="a lexicon file (TOML or JSON), as `serve --lexicon`")
    p.add_argument("--no-builtin", action="store_true", help="without the built-in tech lexicon")
    p.add_argument("--json", action="store_true", help="one JSON object, as the daemon's phonemes event")
    p.set_defaults(handler=cmd_phonemize)

    p = sub.add_parser("voices", help="list the voices, grouped by language")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--lang", default=None, help="only this language's voices (e.g. es, ja)")
    p.set_defaults(handler=cmd_voices)

    p = sub.add_parser("fetch", help="prepare every asset for offline use")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(handler=cmd_fetch)

    p = sub.add_parser("doctor", help="report which assets are found where")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(handler=cmd_doctor)

    try:
        from kokorod.service_cli import register_cli
    except ImportError:  # the service module is optional at import time
        pass
    else:
        register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KokorodError as exc:
        print(f"kokorod: error: {exc.message}" + (f" (fix: {exc.fix})" if exc.fix else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Downstream closed (e.g. `kokorod voices | head`); not an error worth a traceback.
        return 0


if __name__ == "__main__":
    sys.exit(main())
