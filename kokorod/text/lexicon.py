"""Pronunciation lexicons: written word → phonemes in Kokoro's alphabet, per language.

Sans-I/O: this module parses, validates and looks up; reading a file is the
caller's business (``load_lexicon_file`` is the one thin exception, so the
CLI, the daemon and the tests read files the same way). docs/pronunciation.md
is the user's view of everything here.

Shape. A lexicon maps a language code (``"en-us"``, ``"es"``, …) or ``"*"``
(every language) to ``{word: phonemes}``. On the wire and in files a key whose
value is a string is a word for every language; a key whose value is a map is
a language (code or alias) and holds that language's words::

    {"Zorblax": "zˈɔɹblæks", "es": {"Zorblax": "θoɾβlaks"}}

Validation (``parse_lexicon``): a word is 1–64 characters with no whitespace;
its phonemes are 1–64 characters (surrounding spaces trimmed), every one of
them in the model's phoneme vocabulary (Kokoro's ``config.json``, the same
table the engines map phonemes to ids with: ``model_vocab``); a lexicon holds
at most ``max_entries`` entries. Every error names the entry (and, for files,
the line) and, for an unknown phoneme, which character it is.

Matching (``LexiconChain.lookup``) is per token, as the G2P splits text:

1. the token as written ("Zorblax"), then case-folded ("ZORBLAX", "zorblax"
   match an entry "Zorblax"; an entry written "ZORBLAX" also matches
   "Zorblax"). An exact-case entry wins over a case-folded one, so "US" and
   "us" may have entries of their own.
2. Surrounding punctuation is not part of the word ("Zorblax," and
   "(Zorblax)" match "Zorblax"); the G2Ps keep punctuation as tokens or
   phonemes of its own.
3. A possessive "Zorblax's" / "Zorblax’s" of a word with an entry but no entry
   of its own is the entry plus /ɪz/ after a sibilant, /s/ after another
   voiceless sound, else /z/ (the English rule; in every language, since the
   text is the user's).
4. The language's own section before ``"*"``; layers in precedence order:
   the session's lexicon, then the daemon's file, then the built-in one.

The written text of a matched token is never changed: word events keep it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

# The model's phoneme vocabulary: what a lexicon entry may use (re-exported here).
from kokorod.model_facts import model_vocab

ALL = "*"
WORD_MAX_CHARS = 64
PHONEMES_MAX_CHARS = 64
SESSION_MAX_ENTRIES = 500
FILE_MAX_ENTRIES = 50_000

# Layer names, as `phonemize` reports a word's source.
SESSION, FILE, BUILTIN = "session", "file", "built-in"

# Characters people type for a phoneme the vocabulary spells otherwise.
_HINTS = {"g": "ɡ (U+0261, script g)", "'": "ˈ (U+02C8, primary stress)", ":": "ː (U+02D0, length mark)",
          ",": "ˌ (U+02CC, secondary stress)" , "R": "ɹ", "r": "ɹ (English r)", "ɝ": "ɜɹ", "ɫ": "l",
          "e": "A (misaki's /eɪ/)"}
_POSSESSIVE = re.compile(r"^(.+?)['’]s$", re.IGNORECASE)
# Punctuation around a word in running text; apostrophes and hyphens inside a word stay.
_EDGE_PUNCT = "\"'“”‘’«»()[]{}<>.,;:!?¡¿…—–-*_`"
_SIBILANT_END = set("szʃʒʧʤ")
_VOICELESS_END = set("ptkfθ")


class LexiconError(ValueError):
    """An invalid lexicon: ``message`` names the entry, and the line for files."""

    def __init__(self, message: str, *, word: str | None = None, lang: str | None = None,
                 line: int | None = None, path: str | None = None) -> None:
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)
        self.message = where + message
        self.word, self.lang, self.line, self.path = word, lang, line, path


def _show(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def entry_problem(word: Any, phonemes: Any, vocab: Iterable[str] | None = None) -> str | None:
    """Why ``word → phonemes`` is not a valid entry (None: it is)."""
    if not isinstance(word, str) or not word:
        return "the word is empty"
    if len(word) > WORD_MAX_CHARS:
        return f"the word is {len(word)} characters long; at most {WORD_MAX_CHARS}"
    if any(c.isspace() for c in word):
        return "the word contains whitespace; an entry is one word (a token as written)"
    if not isinstance(phonemes, str):
        return "the phonemes must be a string"
    ps = phonemes.strip()
    if not ps:
        return "the phonemes are empty"
    if len(ps) > PHONEMES_MAX_CHARS:
        return f"the phonemes are {len(ps)} characters long; at most {PHONEMES_MAX_CHARS}"
    known = model_vocab() if vocab is None else vocab
    for ch in ps:
        if ch not in known:
            hint = _HINTS.get(ch)
            return (f"unknown phoneme {_show(ch)}: not in Kokoro's phoneme vocabulary"
                    + (f" (did you mean {hint}?)" if hint else "")
                    + "; `kokorod phonemize` shows the phonemes of similar words")
    return None


def _fold(word: str) -> str:
    return word.casefold()


@dataclass(frozen=True)
class Lexicon:
    """One layer: ``entries[lang][word] = phonemes`` (``lang`` a code or ``ALL``)."""

    entries: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = SESSION
    _folded: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded: dict[str, dict[str, str]] = {}
        for lang, words in self.entries.items():
            table: dict[str, str] = {}
            # An entry written in lower case is the folded form's first choice.
            for word, ps in sorted(words.items(), key=lambda kv: kv[0] != _fold(kv[0])):
                table.setdefault(_fold(word), ps)
            folded[lang] = table
        object.__setattr__(self, "_folded", folded)

    def __len__(self) -> int:
        return sum(len(words) for words in self.entries.values())

    def __bool__(self) -> bool:
        return len(self) > 0

    def get(self, word: str, lang: str) -> str | None:
        """Exact case, then case-folded; the language's section, then ``ALL``'s."""
        for code in (lang, ALL):
            words = self.entries.get(code)
            if words is not None and (ps := words.get(word)) is not None:
                return ps
        folded = _fold(word)
        for code in (lang, ALL):
            table = self._folded.get(code)
            if table is not None and (ps := table.get(folded)) is not None:
                return ps
        return None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.entries.get(ALL, {}))
        for lang, words in self.entries.items():
            if lang != ALL:
                out[lang] = dict(words)
        return out


EMPTY = Lexicon({}, SESSION)


@dataclass(frozen=True)
class Match:
    phonemes: str
    source: str
    word: str  # the entry's word as written in the lexicon


def possessive_suffix(phonemes: str) -> str:
    """/ɪz/, /s/ or /z/ after ``phonemes`` (the English possessive rule)."""
    last = next((c for c in reversed(phonemes) if c.isalpha() or c in "ʃʒʧʤθðŋ"), "")
    if last in _SIBILANT_END:
        return "ɪz"
    if last in _VOICELESS_END:
        return "s"
    return "z"


def strip_edges(text: str) -> tuple[str, str, str]:
    """(leading punctuation, word, trailing punctuation) of a token."""
    core = text.strip(_EDGE_PUNCT)
    if not core:
        return "", text, ""
    start = text.find(core)
    return text[:start], core, text[start + len(core):]


class LexiconChain:
    """The layers that apply to one synthesis, highest precedence first."""

    def __init__(self, layers: Sequence[Lexicon | None]) -> None:
        self.layers = tuple(layer for layer in layers if layer)

    def __bool__(self) -> bool:
        return bool(self.layers)

    def lookup(self, text: str, lang: str) -> Match | None:
        """The phonemes for token ``text`` (as the G2P cut it), or None."""
        if not self.layers or not text:
            return None
        _, core, _ = strip_edges(text)
        poss = _POSSESSIVE.match(core)
        for layer in self.layers:
            ps = layer.get(core, lang)
            if ps is not None:
                return Match(ps, layer.source, core)
            if poss is not None:
                ps = layer.get(poss.group(1), lang)
                if ps is not None:
                    return Match(ps + possessive_suffix(ps), layer.source, poss.group(1))
        return None


# --------------------------------------------------------------------------
# Parsing and validation


def _lang_code(key: str) -> str | None:
    from kokorod.errors import InputError
    from kokorod.text.languages import resolve

    try:
        return resolve(key).code
    except InputError:
        return None


def parse_lexicon(raw: Any, *, source: str = SESSION, max_entries: int = SESSION_MAX_ENTRIES,
                  vocab: Iterable[str] | None = None, path: str | None = None,
                  line_of: Any = None) -> Lexicon:
    """Validate a lexicon map (from the wire, TOML or JSON) into a ``Lexicon``.

    ``line_of(lang, word) -> int | None`` gives a file's line for an entry's
    error; raises ``LexiconError`` naming the first bad entry."""
    if not isinstance(raw, dict):
        raise LexiconError("a lexicon must be a map of word → phonemes (or language → such a map)", path=path)
    known = model_vocab() if vocab is None else frozenset(vocab)
    entries: dict[str, dict[str, str]] = {}
    count = 0

    def add(lang: str, word: Any, ps: Any, shown_lang: str | None) -> None:
        nonlocal count
        where = f"entry {word!r}" + (f" in [{shown_lang}]" if shown_lang else "")
        line = line_of(shown_lang, word) if line_of is not None and isinstance(word, str) else None
        problem = entry_problem(word, ps, known)
        if problem is not None:
            raise LexiconError(f"{where}: {problem}", word=word if isinstance(word, str) else None,
                               lang=lang, line=line, path=path)
        count += 1
        if count > max_entries:
            raise LexiconError(f"more than {max_entries} entries (at {where})", word=word, lang=lang,
                               line=line, path=path)
        entries.setdefault(lang, {})[word] = ps.strip()

    for key, value in raw.items():
        if isinstance(value, dict):
            code = _lang_code(key) if isinstance(key, str) else None
            if code is None:
                from kokorod.text.languages import CODES

                raise LexiconError(f"section {key!r}: not a language (one of {', '.join(CODES)}); "
                                   "a word's value must be a string of phonemes",
                                   lang=None, line=line_of(None, key) if line_of is not None else None, path=path)
            for word, ps in value.items():
                add(code, word, ps, key)
        else:
            add(ALL, key, value, None)
    return Lexicon(entries, source)


def _toml_lines(text: str) -> Any:
    """``line_of`` for a TOML text: the line of ``word`` under ``[lang]``."""
    lines = text.splitlines()

    def line_of(lang: str | None, word: str) -> int | None:
        section: str | None = None
        for number, line in enumerate(lines, 1):
            s = line.strip()
            if s.startswith("[") and not s.startswith("[["):
                section = s.strip("[] \t").strip("\"'")
                if lang is None and section == word:
                    return number
                continue
            if section != lang:
                continue
            key = s.split("=", 1)[0].strip().strip("\"'") if "=" in s else None
            if key == word:
                return number
        return None

    return line_of


def _json_lines(text: str) -> Any:
    lines = text.splitlines()

    def line_of(lang: str | None, word: str) -> int | None:
        needle = json.dumps(word, ensure_ascii=False)
        for number, line in enumerate(lines, 1):
            if needle in line or json.dumps(word) in line:
                return number
        return None

    return line_of


def parse_lexicon_text(text: str, *, path: str = "<lexicon>", fmt: str | None = None,
                       vocab: Iterable[str] | None = None, max_entries: int = FILE_MAX_ENTRIES) -> Lexicon:
    """A lexicon file's text (TOML, or JSON if ``fmt == "json"`` or the path ends
    in .json) as the daemon's ``file`` layer."""
    fmt = fmt or ("json" if path.lower().endswith(".json") else "toml")
    if fmt == "json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LexiconError(f"not valid JSON: {exc.msg}", line=exc.lineno, path=path) from None
        line_of = _json_lines(text)
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError:
                raise LexiconError("TOML needs Python 3.11 (or `pip install tomli`); or write the lexicon as "
                                   "JSON (a .json file)", path=path) from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise LexiconError(f"not valid TOML: {exc}", line=int(m.group(1)) if m else None, path=path) from None
        line_of = _toml_lines(text)
    return parse_lexicon(raw, source=FILE, max_entries=max_entries, vocab=vocab, path=path, line_of=line_of)


def load_lexicon_file(path: str | Path, *, vocab: Iterable[str] | None = None) -> Lexicon:
    """Read and validate a lexicon file; ``LexiconError`` for anything wrong with it."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LexiconError(f"cannot read the lexicon file: {exc.strerror or exc}", path=name) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LexiconError(f"not UTF-8 text (byte {exc.start})", path=name) from None
    return parse_lexicon_text(text, path=name, vocab=vocab)


@dataclass
class DaemonLexicons:
    """The daemon-wide layers, shared by every session and engine worker.

    ``file`` is replaced whole on reload (one attribute assignment, atomic for
    readers: a synthesis in flight keeps the chain it started with)."""

    builtin: Lexicon | None = None
    file: Lexicon | None = None
    file_path: str | None = None

    def chain(self, session: Lexicon | None = None) -> LexiconChain:
        return LexiconChain((session, self.file, self.builtin))


def builtin_lexicon() -> Lexicon:
    from kokorod.text.lexicon_tech import TECH

    return _builtin(tuple(sorted((k, tuple(sorted(v.items()))) for k, v in TECH.items())))


@lru_cache(maxsize=1)
def _builtin(items: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]) -> Lexicon:
    return Lexicon({lang: dict(words) for lang, words in items}, BUILTIN)


__all__ = [
    "ALL", "BUILTIN", "FILE", "FILE_MAX_ENTRIES", "PHONEMES_MAX_CHARS", "SESSION", "SESSION_MAX_ENTRIES",
    "WORD_MAX_CHARS", "DaemonLexicons", "Lexicon", "LexiconChain", "LexiconError", "Match", "builtin_lexicon",
    "entry_problem", "load_lexicon_file", "model_vocab", "parse_lexicon", "parse_lexicon_text", "possessive_suffix",
    "strip_edges",
]
