"""WER on a text full of tech words, with the built-in tech lexicon on and off (same run).

    .venv/bin/python bench/tech_lexicon_wer.py              # the paragraph, on vs off
    .venv/bin/python bench/tech_lexicon_wer.py --per-word   # also each entry in a carrier sentence

In-process (the daemon's own Synthesizer, normaliser and G2P; the ONNX model),
judged by the test recogniser (faster-whisper tiny.en, tests/support/asr.py).
The lexicon is toggled by swapping the G2P bank's built-in layer between runs,
so both sides use the same model session, voice and text. Per word, an entry
counts as heard when the recogniser writes the word (case and punctuation
ignored) or one of the spellings in ``HEARD_AS`` (how a listener writes a
reading: "Jason" is not "JSON", so only forms that are the word are listed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = (
    "Parse the JSON and the YAML config, then update the README. "
    "The TOML file lists every PyPI package, and pytest runs from the Makefile. "
    "Start the async server with uvicorn and uvloop, and read stdin and stdout. "
    "Store the data in PostgreSQL, cache it in Redis, and keep a GUID per row. "
    "Run kubectl and systemctl on the host, then check journalctl for errors. "
    "The CUDA build of ONNX runtime is faster; install it in a venv. "
    "Write the regex, then add the enum and the params to the CHANGELOG. "
    "Deploy with Vite and Deno on Vercel, and log in with SAML or LDAP over IPv6."
)

# Spellings that are the word itself, as a recogniser may write it.
HEARD_AS: dict[str, tuple[str, ...]] = {
    "JSON": ("json",), "README": ("readme", "read me"), "PyPI": ("pypi", "pi pi"),
    "kubectl": ("kubectl", "kube control", "cube control", "kubecontrol"), "k8s": ("kubernetes", "k8s"),
    "systemctl": ("systemctl", "system control"), "journalctl": ("journalctl", "journal control"),
    "sysctl": ("sysctl", "sys control", "sis control"), "stdin": ("stdin", "standard in"), "stdout": ("stdout", "standard out"),
    "stderr": ("stderr", "standard error"), "stdio": ("stdio", "standard io", "standard i o"),
    "stdlib": ("stdlib", "standard lib"), "mkdir": ("mkdir", "make dir", "make deer", "make dear"),
    "IPv4": ("ipv4", "ip v4", "ip v 4", "ipv four"), "IPv6": ("ipv6", "ip v6", "ip v 6", "ipv six"),
    "TODO": ("todo", "to do"), "TODOs": ("todos", "to dos"), "FIXME": ("fixme", "fix me"),
    "CHANGELOG": ("changelog", "change log"), "SQLAlchemy": ("sqlalchemy", "sql alchemy", "sequel alchemy"),
    "PostgreSQL": ("postgresql", "postgres sql", "postgres ql"), "zsh": ("zsh", "z shell", "zshell"),
    "Makefile": ("makefile", "make file"), "pyproject": ("pyproject", "pi project", "py project"),
    "dotenv": ("dotenv", "dot env"), "printf": ("printf", "print f"), "nullptr": ("nullptr", "null pointer"),
    "rustc": ("rustc", "rust c"), "libc": ("libc", "lib c"), "glibc": ("glibc", "g lib c"),
    "Btrfs": ("btrfs", "butter fs", "butterfs"), "virtualenv": ("virtualenv", "virtual env"),
    "venv": ("venv", "v env"), "pipenv": ("pipenv", "pip env"), "pytest": ("pytest", "pi test", "py test"),
    "mypy": ("mypy", "my pi", "my py"), "aiohttp": ("aiohttp", "aio http"), "asyncio": ("asyncio", "async io"),
    "CPython": ("cpython", "c python"), "subprocess": ("subprocess", "sub process"), "IoT": ("iot",),
    "inode": ("inode", "i node"), "uvicorn": ("uvicorn", "uv corn"),
    # Homophones: the recogniser wrote the same sounds as another word.
    "Clojure": ("closure",), "Jupyter": ("jupiter",), "ONNX": ("onyx",), "PaaS": ("pass",), "JPG": ("jpeg",),
    "Deno": ("dino",), "JSONs": ("jason's", "jasons"), "TODO": ("2 2", "to do", "todo"), "TOML": ("tamil", "toml"),
    "tmux": ("tmux", "teamux", "t mux"),
}


def _norm(text: str) -> str:
    from tests.support.asr import normalize_words

    return " " + normalize_words(text) + " "


def heard(word: str, transcript: str) -> bool:
    t = _norm(transcript)
    forms = (word.lower(),) + HEARD_AS.get(word, ())
    return any(_norm(f) in t for f in forms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("--per-word", action="store_true", help="also check each entry in a carrier sentence")
    parser.add_argument("--lang", default="en-us", choices=("en-us", "en-gb"))
    parser.add_argument("--words", default=None, help="with --per-word: only these words (comma-separated)")
    args = parser.parse_args()

    from kokorod.speech.build import EngineOptions, build_synthesizer
    from kokorod.text.languages import BY_CODE
    from kokorod.text.lexicon import builtin_lexicon
    from kokorod.text.normalize_intl import normalizer_for
    from tests.support.asr import transcribe, word_error_rate

    lang = BY_CODE[args.lang]
    voice = args.voice if args.lang == "en-us" or args.voice != "af_heart" else "bf_emma"
    synth = build_synthesizer(EngineOptions())
    builtin = builtin_lexicon()
    bank = synth.g2p
    normalize = normalizer_for(lang.code)

    def say(text: str, on: bool) -> str:
        bank.lexicons.builtin = builtin if on else None
        chunk = synth.synthesize(normalize(text).spoken, voice=voice, lang=lang)
        return transcribe(chunk.audio, 24000)[0]

    started = time.perf_counter()
    entries = len(builtin.entries.get(lang.code, {}))
    print(f"built-in tech lexicon: {entries} words for {lang.code}, {len(builtin)} entries in all "
          f"(en-us + en-gb); voice {voice}")
    results = {}
    for on in (False, True):
        hyp = say(TEXT, on)
        results[on] = word_error_rate(TEXT, hyp)
        print(f"\nlexicon {'on ' if on else 'off'}: WER {results[on]:.3f}\n  heard: {hyp}")
    print(f"\nWER off {results[False]:.3f} -> on {results[True]:.3f}")

    if args.per_word:
        words = sorted(builtin.entries.get(lang.code, {}))
        if args.words:
            words = [w for w in args.words.split(",") if w in words]
        hits = {False: 0, True: 0}
        bad: list[str] = []
        print(f"\n{'word':14s} {'off':4s} {'on':4s}  transcript with the entry")
        for word in words:
            sentence = f"Next, we open the {word} page."
            got = {on: say(sentence, on) for on in (False, True)}
            ok = {on: heard(word, got[on]) for on in (False, True)}
            for on in ok:
                hits[on] += ok[on]
            if not ok[True]:
                bad.append(word)
            print(f"{word:14s} {'yes' if ok[False] else 'no':4s} {'yes' if ok[True] else 'no':4s}  {got[True]}")
        n = len(words)
        print(f"\nheard as the word: off {hits[False]}/{n}, on {hits[True]}/{n}; not heard with the entry: "
              + (", ".join(bad) or "none"))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
