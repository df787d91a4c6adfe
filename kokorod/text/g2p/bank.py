"""One G2P per language, built on first use, and model-sized pieces of phonemes.

Which G2P serves a language is Kokoro's own choice (``kokoro.KPipeline``):
misaki's English G2P for en-us/en-gb, misaki's espeak-ng G2P for es, fr, hi,
it and pt-br, misaki's Chinese and Japanese G2Ps for zh and ja. Each returns
tokens with written text and phonemes, so every language gets word times.

Building a G2P loads dictionaries (spaCy, jieba, unidic), so the bank builds
them lazily on the engine thread and keeps them; a language whose packages are
missing raises ``LanguageUnavailable`` with the command that fixes it.

Pronunciation lexicons (``lexicons``: the daemon's file and the built-in tech
lexicon; a session's own passed per call) are applied here: inside misaki's
English G2P, which asks them before its own lexicon for every written word,
and to the word tokens of the other languages' G2Ps, whose phonemes a matching
entry replaces (punctuation the G2P attached to the word is kept). Either way a
token keeps its written text.
"""

from __future__ import annotations

import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

from kokorod.model_facts import MAX_PHONEMES
from kokorod.errors import AssetError
from kokorod.text.languages import BY_CODE, Language, missing_modules
from kokorod.text.lexicon import DaemonLexicons, Lexicon, LexiconChain, builtin_lexicon
from kokorod.text.tokens import Token

G2P = Callable[[str], list[Any]]  # text -> tokens with .text, .phonemes, .whitespace

# Punctuation tokens after which a long input may be split, best first.
_SPLIT_RANK = {".": 0, "!": 0, "?": 0, "…": 0, "。": 0, "！": 0, "？": 0, ";": 1, ":": 1, ",": 2, "—": 2, "–": 2,
               "，": 2, "、": 2}


class LanguageUnavailable(AssetError):
    """A language's G2P cannot be loaded on this machine."""

    def __init__(self, lang: Language, detail: str, fix: str) -> None:
        super().__init__(f"{lang.name} ({lang.code}) is not available: {detail}", fix)
        self.lang = lang


@dataclass
class Phonemized:
    """Phonemes for one model call (≤ MAX_PHONEMES) and the tokens behind them."""

    phonemes: str
    tokens: list[Any]


# Phoneme characters a G2P attaches to a word for its punctuation ("zoɾblaks,").
_PUNCT_PHONEMES = frozenset(';:,.!?—…"()“” ')


def _punct_edges(phonemes: str) -> tuple[str, str]:
    lead = len(phonemes) - len(phonemes.lstrip("".join(_PUNCT_PHONEMES)))
    trail = len(phonemes) - len(phonemes.rstrip("".join(_PUNCT_PHONEMES)))
    if lead + trail >= len(phonemes):
        return "", ""
    return phonemes[:lead].strip(), phonemes[len(phonemes) - trail:].strip() if trail else ""


def apply_lexicons(tokens: list[Any], chain: LexiconChain, lang: str) -> list[Any]:
    """Replace the phonemes of every word token an entry matches, in place."""
    if not chain:
        return tokens
    for tok in tokens:
        if not tok.text or not any(c.isalnum() for c in tok.text):
            continue
        match = chain.lookup(tok.text, lang)
        if match is not None:
            lead, trail = _punct_edges(tok.phonemes or "")
            tok.phonemes = lead + match.phonemes + trail
    return tokens


class G2PBank:
    def __init__(self, nlp_loader: Callable[[], Any] | None = None, *, builtin: bool = True,
                 cache_dir: Path | None = None) -> None:
        """``cache_dir``: the asset cache, where the English lexicon is kept packed
        and memory-mapped (None: packed in memory at each build)."""
        self.cache_dir = cache_dir
        # Daemon-wide lexicon layers; ``lexicons.file`` is swapped on reload.
        self.lexicons = DaemonLexicons(builtin=builtin_lexicon() if builtin else None)
        self._nlp_loader = nlp_loader
        self._nlp: Any = None
        self._nlp_lock = threading.Lock()
        self._g2ps: dict[str, G2P] = {}
        self._build_lock = threading.RLock()  # zh/ja build the English G2P inside their own build

    def unavailable(self, lang: Language) -> LanguageUnavailable | None:
        """Why ``lang`` cannot be spoken here (missing packages), without loading it."""
        missing = missing_modules(lang.modules)
        if missing:
            return LanguageUnavailable(lang, "missing Python packages: " + ", ".join(missing), lang.fix)
        return None

    def get(self, lang: Language) -> G2P:
        g2p = self._g2ps.get(lang.code)
        if g2p is not None:
            return g2p
        with self._build_lock:
            if lang.code not in self._g2ps:
                problem = self.unavailable(lang)
                if problem is not None:
                    raise problem
                try:
                    self._g2ps[lang.code] = self._build(lang)
                except LanguageUnavailable:
                    raise
                except (ImportError, AssetError, OSError, RuntimeError) as exc:
                    fix = exc.fix if isinstance(exc, AssetError) and exc.fix else lang.fix
                    # An AssetError's str() already ends with its fix; say it once, as the fix.
                    detail = exc.message if isinstance(exc, AssetError) else str(exc)
                    raise LanguageUnavailable(lang, f"{type(exc).__name__}: {detail}", fix) from exc
            return self._g2ps[lang.code]

    def _english(self, british: bool) -> G2P:
        from kokorod.text.g2p.english import EnglishG2P, load_nlp

        if self._nlp is None:
            self._nlp = (self._nlp_loader or load_nlp)()
        g2p = EnglishG2P(self._nlp, self._nlp_lock, british=british, cache_dir=self.cache_dir)
        g2p.default_lexicons = self.lexicons.chain
        return g2p

    def _build(self, lang: Language) -> G2P:
        if lang.code in ("en-us", "en-gb"):
            return self._english(lang.british)
        if lang.espeak is not None:
            from kokorod.text.g2p.espeak import EspeakWordG2P

            return EspeakWordG2P(lang.espeak)
        # Latin-script runs inside Chinese or Japanese text ("iPhone", "AI") are
        # read as English, which the model can say, instead of letter soup.
        latin = self.get(BY_CODE["en-us"])
        if lang.code == "zh":
            from kokorod.text.g2p.chinese import ChineseG2P

            return ChineseG2P(latin=latin)
        if lang.code == "ja":
            from kokorod.text.g2p.japanese import JapaneseG2P

            return JapaneseG2P(latin=latin)
        raise LanguageUnavailable(lang, "no G2P for this language", "report this")

    def chain(self, session: Lexicon | None = None) -> LexiconChain:
        """The lexicon layers for one call: ``session``, the daemon's file, built-in."""
        return self.lexicons.chain(session)

    def tokens(self, text: str, lang: Language, lexicon: Lexicon | None = None) -> list[Any]:
        """The G2P's tokens for ``text``, lexicons applied (``lexicon``: the session's)."""
        g2p = self.get(lang)
        chain = self.chain(lexicon)
        if lang.code in ("en-us", "en-gb"):
            return g2p(text, chain)  # type: ignore[call-arg]
        return apply_lexicons(g2p(text), chain, lang.code)

    def phonemize(self, text: str, lang: Language, lexicon: Lexicon | None = None) -> list[Phonemized]:
        """Phonemes for ``text`` split into model-sized pieces at natural boundaries.

        Nothing is dropped: an input longer than the model window becomes several
        pieces, cut after sentence punctuation if possible, then clause
        punctuation, then between words.
        """
        return split_tokens(self.tokens(text, lang, lexicon), MAX_PHONEMES)


def _token_phonemes(tok: Any) -> str:
    return (tok.phonemes or "") + (" " if tok.whitespace else "")


def split_tokens(tokens: list[Any], limit: int) -> list[Phonemized]:
    pieces: list[Phonemized] = []
    start = 0
    while start < len(tokens):
        length = 0
        end = start
        best_cut: tuple[int, int] | None = None  # (rank, index after the cut)
        while end < len(tokens):
            add = len(_token_phonemes(tokens[end]))
            if length + add > limit and end > start:
                break
            length += add
            rank = _SPLIT_RANK.get(tokens[end].text)
            if rank is not None and (best_cut is None or rank <= best_cut[0]):
                best_cut = (rank, end + 1)
            end += 1
        if end < len(tokens):
            # Too long: cut at the best punctuation seen, else between words.
            cut = best_cut[1] if best_cut else end
        else:
            cut = end
        chunk = tokens[start:cut]
        text = "".join(_token_phonemes(t) for t in chunk).strip()
        if len(text) > limit:  # a single enormous token (a 600-letter "word"): hard cut
            text = text[:limit]
        if text:
            pieces.append(Phonemized(text, chunk))
        start = cut
    return pieces


__all__ = ["G2PBank", "LanguageUnavailable", "Phonemized", "Token", "apply_lexicons", "split_tokens"]
