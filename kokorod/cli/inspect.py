"""``kokorod voices`` and ``kokorod phonemize``: look at the voices and at how
words will be said, in-process and without the model."""

from __future__ import annotations

import argparse
import sys


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("phonemize", help="print each word's phonemes and where they come from (to write lexicon entries)")
    p.add_argument("text", help="the text")
    p.add_argument("--lang", default=None, help="language: en-us, en-gb, es, fr, hi, it, pt-br, ja, zh (default: the voice's)")
    p.add_argument("--voice", default=None, help="take the language from this voice (default af_heart)")
    p.add_argument("--lexicon", default=None, metavar="PATH", help="a lexicon file (TOML or JSON), as `serve --lexicon`")
    p.add_argument("--no-builtin", action="store_true", help="without the built-in tech lexicon")
    p.add_argument("--json", action="store_true", help="one JSON object, as the daemon's phonemes event")
    p.set_defaults(handler=run_phonemize)

    p = sub.add_parser("voices", help="list the voices, grouped by language")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--lang", default=None, help="only this language's voices (e.g. es, ja)")
    p.set_defaults(handler=run_voices)


def run_voices(args: argparse.Namespace) -> int:
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


def run_phonemize(args: argparse.Namespace) -> int:
    """Each word with its phonemes and their source, in-process (G2P only, no model)."""
    import functools
    import json

    from kokorod.assets.paths import resolve_cache_dir
    from kokorod.speech.synthesizer import phonemize_words
    from kokorod.text.g2p import G2PBank
    from kokorod.text.g2p.english import load_nlp
    from kokorod.text.languages import for_voice, resolve
    from kokorod.text.lexicon import LexiconError, load_lexicon_file, model_vocab

    lang = resolve(args.lang) if args.lang else for_voice(args.voice or "af_heart")
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
