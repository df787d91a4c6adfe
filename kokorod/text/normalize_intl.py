"""Written text -> speakable text for the non-English voices.

``normalizer_for(lang)`` returns the normaliser for a language code.  English
('en-us', 'en-gb') gets ``normalize.normalize`` unchanged; none of its English
rules (abbreviations, unit words, "dot"/"slash", e.g./i.e., Roman numerals)
run for the other languages: "Dr." in Spanish is left to espeak-ng, which
expands it itself, and "5 km" is not "5 kilometers".

The other languages share the English machinery (markdown stripping, the
piece list of ``rewrite.apply_rule`` and the ``Replacement`` spans of
``rewrite.assemble``) and add, in this order:

1. Removal of what the voice cannot say, *reported* in ``Normalized.dropped``:
   emoji, and letters of scripts the language does not use.  es/fr/it/pt-br
   keep Latin only; hi keeps Devanagari + Latin; zh Han + Latin; ja kana + Han
   + Latin.  Latin is kept everywhere: espeak-ng reads it, and for zh/ja the
   G2P passes Latin runs to the English G2P.
2. The English cleanup of invisible/control characters and HTML entities
   (shared rule objects, not copies).
3. URLs, e-mail addresses and file names with the language's "dot"/"at".
4. Numbers, dates, times, money (``numbers_intl``), only if a digit occurs.
5. The English full-width/ligature -> plain rule.  It runs after the numbers
   because a rewritten piece is final: "５０" made "50" first could no longer
   be read as a number.  (Number patterns match full-width digits: \d does.)
6. Punctuation neither the G2P nor Kokoro's phoneme vocabulary takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from kokorod.text import numbers_intl
from kokorod.text.languages import resolve
from kokorod.text.long_numbers import reader_for, read_long_runs
from kokorod.text.markdown import strip_markdown
from kokorod.text.normalize import normalize
from kokorod.text.rewrite import Normalized, Rule, apply_rule, assemble
from kokorod.text.shared_rules import (
    CLEANUP_RULES, EMAIL_RE, ENTITY_RULE, FILE_RE, FULLWIDTH_RULE, PRIVATE_USE, TLDS, URL_END, URL_RE, say_url,
)

# English rules reused as they are (the same objects, not copies).
_INVISIBLE, _FULLWIDTH, _ENTITY = CLEANUP_RULES, FULLWIDTH_RULE, ENTITY_RULE
_EMAIL, _URL, _FILE = EMAIL_RE, URL_RE, FILE_RE


# --------------------------------------------------------------- unspeakable

_EMOJI = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u231A\u231B\u23E9-\u23FA"
_EMOJI_MOD = "\uFE0E\uFE0F\u200D\u20E3\U000E0020-\U000E007F"
# Letter blocks by script.  Block-level (not per code point) is precise enough
# here: the question is only "is this a script the voice reads?".
_SCRIPTS = {
    "greek": "\u0370-\u03FF\u1F00-\u1FFF",
    "cyrillic": "\u0400-\u052F\u1C80-\u1C8F\u2DE0-\u2DFF\uA640-\uA69F",
    "armenian": "\u0530-\u058F",
    "rtl": "\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF",  # Hebrew, Arabic, Syriac, Thaana, N'Ko
    "devanagari": "\u0900-\u097F\uA8E0-\uA8FF\u1CD0-\u1CFF",
    "indic": "\u0980-\u0DFF",  # Bengali ... Sinhala
    "sea": "\u0E00-\u0FFF\u1000-\u109F\u1780-\u17FF",  # Thai, Lao, Tibetan, Myanmar, Khmer
    "other": "\u10A0-\u10FF\u1200-\u13FF\u1800-\u18AF",  # Georgian, Ethiopic, Cherokee, Mongolian
    "hangul": "\u1100-\u11FF\u3130-\u318F\uA960-\uA97F\uAC00-\uD7FF\uFFA0-\uFFDC",
    "kana": "\u3040-\u30FA\u30FC-\u30FF\u31F0-\u31FF\uFF66-\uFF9F",  # not '・' (U+30FB): punctuation
    "bopomofo": "\u3100-\u312F\u31A0-\u31BF",
    "han": "\u2E80-\u2FDF\u3005\u3007\u3021-\u3029\u3038-\u303B\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF"
           "\U00020000-\U0003134F",
}
_KEEP = {"hi": {"devanagari"}, "zh": {"han"}, "ja": {"han", "kana"}}  # plus Latin, always


def _unspeakable(code: str) -> re.Pattern[str]:
    foreign = "".join(r for name, r in _SCRIPTS.items() if name not in _KEEP.get(code, set()))
    letter = f"[{foreign}][{foreign}\u0300-\u036F\u200C\u200D]*"
    # Runs of foreign words joined by spaces or hyphens go as one entry ("Привет мир").
    return re.compile(f"[{_EMOJI}][{_EMOJI}{_EMOJI_MOD}]*|{letter}(?:[ \t'’-]+{letter})*|[{PRIVATE_USE}]+")


_LONE_MODIFIER = re.compile(f"[{_EMOJI_MOD}]+")  # a variation selector left after text: not text itself


# ------------------------------------------------------------ URLs, e-mail

class _Say:
    def __init__(self, dot: str, at: str, slash: str, underscore: str, dash: str, plus: str) -> None:
        self.dot, self.at, self.slash, self.underscore, self.dash, self.plus = dot, at, slash, underscore, dash, plus


_SAY = {
    "es": _Say("punto", "arroba", "barra", "guion bajo", "guion", "más"),
    "fr": _Say("point", "arobase", "slash", "tiret bas", "tiret", "plus"),
    "it": _Say("punto", "chiocciola", "slash", "trattino basso", "trattino", "più"),
    "pt-br": _Say("ponto", "arroba", "barra", "sublinhado", "hífen", "mais"),
    "hi": _Say("डॉट", "एट", "स्लैश", "अंडरस्कोर", "डैश", "प्लस"),
    "zh": _Say("点", "艾特", "斜杠", "下划线", "横杠", "加"),
    "ja": _Say("ドット", "アット", "スラッシュ", "アンダーバー", "ハイフン", "プラス"),
}


def _url(say: _Say, url: str) -> str:
    # shared_rules.say_url drops the scheme, "www." and the query, and joins the
    # rest with the language's words for "dot" and "slash".
    said = re.sub(r"[^\w\s]+", " ", say_url(url, say.dot, say.slash))  # a stray "¿" or "»" glued to the URL
    return " ".join(said.split())


def _email(say: _Say, address: str) -> str:
    local, _, domain = address.partition("@")
    for sym, word in ((".", say.dot), ("_", say.underscore), ("-", say.dash), ("+", say.plus)):
        local = local.replace(sym, f" {word} ")
    return " ".join(local.split()) + f" {say.at} " + f" {say.dot} ".join(domain.split("."))


_MORETLDS = f"es|it|br|pt|in|cn|mx|ar|cl|be|ch|{TLDS}"  # the languages' own TLDs, which the English list lacks
_DOMAINS = re.compile(rf"(?i)(?<![\w@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_MORETLDS})"
                      rf"(?:/[^\s<>\"'`]*?)?{URL_END}")
# Chinese and Japanese run words together: "网址https://x.com。" has no space to
# end the URL at, and Han letters are \w (the English patterns' boundaries).
# So here ASCII-only boundaries and URLs that end at the first non-ASCII character.
_ASCII = re.ASCII | re.IGNORECASE
_CJK_URL = re.compile(rf"(?<![A-Za-z0-9@/.])(?:(?:https?|ftp)://|www\.)[\w\-.~:/?#@!$&*+=%,;]*[\w/]"
                      rf"|(?<![A-Za-z0-9@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_MORETLDS})\b"
                      rf"(?:/[\w\-.~/%]*[\w/])?", _ASCII)


def _web_rules(code: str) -> list[Rule]:
    say = _SAY[code]
    cjk = code in ("zh", "ja")
    email = re.compile(_EMAIL.pattern, _ASCII) if cjk else _EMAIL
    files = re.compile(_FILE.pattern, _ASCII) if cjk else _FILE
    urls = [_CJK_URL] if cjk else [_URL, _DOMAINS]
    return [
        (email, lambda m: _email(say, m.group())),
        *((pattern, lambda m: _url(say, m.group())) for pattern in urls),
        (files, lambda m: f"{m.group(1)} {say.dot} {m.group(2)}"),  # "config.json": phonemizer splits at '.'
    ]


# -------------------------------------------------------------- punctuation

def _mapper(table: dict[str, str]) -> Rule:
    return re.compile("[" + re.escape("".join(table)) + "]"), lambda m: table[m.group()]


# Kokoro's vocabulary lacks « » ‹ › ¿ ¡ [ ] { }; espeak-ng passes [ ] { } ¿ ¡
# into its phonemes.  misaki's EspeakG2P turns « » into “ ” itself; doing it
# here too keeps the text independent of that.
_LATIN_PUNCT = {"«": "“", "»": "”", "‹": "", "›": "", "[": "(", "]": ")", "{": "(", "}": ")", "¿": "", "¡": "",
                "<": "(", ">": ")"}  # "<Enter>": the G2Ps would drop the brackets; the word stays grouped
_PUNCT: dict[str, list[Rule]] = {
    # ¿ ¡ carry nothing espeak-ng or Kokoro uses (the intonation comes from the final ? !).
    "es": [_mapper(_LATIN_PUNCT)],
    # French typography spaces before ? ! : ; » and after «: "Bonjour !" must end
    # a sentence like "Bonjour!" (espeak-ng otherwise emits a detached "!").
    "fr": [(re.compile(r"(?<=\S)[ \u00a0\u202f]+(?=[?!:;»])|(?<=«)[ \u00a0\u202f]+"), lambda m: ""),
           _mapper(_LATIN_PUNCT)],
    "it": [_mapper(_LATIN_PUNCT)],
    "pt-br": [_mapper(_LATIN_PUNCT)],
    # espeak-ng drops the danda without a pause; '.' gives the sentence end.
    "hi": [(re.compile(r"\s*[।॥]+"), lambda m: "."), _mapper(_LATIN_PUNCT)],
    # misaki's ZHG2P maps 、，。．！：；？«»《》「」【】（） itself; the rest would
    # reach the phonemes raw (its legacy path passes non-Han text through).
    "zh": [_mapper({"『": "“", "』": "”", "〈": "“", "〉": "”", "‘": "“", "’": "”", "〔": "(", "〕": ")",
                    "[": "(", "]": ")", "{": "(", "}": ")", "·": " ", "・": " ", "~": "", "〜": "", "‥": "…",
                    "〃": "", "¿": "", "¡": "", "<": "(", ">": ")"})],
    # cutlet maps 。、？！「」『』：；（）《》・～〜«» ; it maps 【】 to [ ], which
    # Kokoro lacks, so those become corner brackets (-> “ ”) first.
    "ja": [_mapper({"【": "「", "】": "」", "〔": "(", "〕": ")", "〈": "「", "〉": "」", "[": "(", "]": ")",
                    "‥": "…", "·": "・", "¿": "", "¡": "", "<": "(", ">": ")"})],
}

_NUMBERS: dict[str, Callable[[], list[Rule]]] = {
    "zh": numbers_intl.chinese_rules, "ja": numbers_intl.japanese_rules, "hi": numbers_intl.hindi_rules,
}
# cutlet turns '〜' before a digit into "から" but never sees it after NFKC made
# the full-width '～' ASCII; U+301C is outside the full-width block.
_JA_EARLY: list[Rule] = [(re.compile("～"), lambda m: "〜")]
_DIGIT = re.compile(r"\d")


class _Normalizer:
    def __init__(self, code: str) -> None:
        self.code = code
        self.drop = _unspeakable(code)
        self.early = _JA_EARLY if code == "ja" else []
        self.rules = [*_INVISIBLE, *_web_rules(code)]
        self.digit_rules = _NUMBERS[code]() if code in _NUMBERS else numbers_intl.latin_rules(code)
        self.long_runs = reader_for(code)
        self.late = _PUNCT[code]

    def __call__(self, text: str) -> Normalized:
        dropped: list[str] = []

        def drop(m: re.Match[str]) -> str:
            dropped.append(m.group())
            return ""

        pieces = strip_markdown(text, dropped)  # HTML tags and comments: reported
        for pattern, repl in self.early:
            pieces = apply_rule(pieces, pattern, repl)
        def entity(m: re.Match[str]) -> str | None:  # "&#128512;" is an emoji too
            said = _ENTITY[1](m)
            return drop(m) if said and self.drop.fullmatch(said) else said

        # Drop before the shared cleanup, which deletes zero-width joiners, so an
        # emoji sequence is reported as written.
        pieces = apply_rule(pieces, self.drop, drop)
        for pattern, repl in [*self.rules[:2], (_ENTITY[0], entity), *self.rules[2:]]:
            pieces = apply_rule(pieces, pattern, repl)
        pieces = apply_rule(pieces, _LONE_MODIFIER, lambda m: "")
        if _DIGIT.search(text):
            pieces = read_long_runs(pieces, *self.long_runs)  # before any rule reads them as a number
            for pattern, repl in self.digit_rules:
                pieces = apply_rule(pieces, pattern, repl)
        for pattern, repl in [_FULLWIDTH, *self.late]:
            pieces = apply_rule(pieces, pattern, repl)
        out = assemble(pieces)
        return Normalized(out.spoken, out.spans, tuple(dropped))


@lru_cache(maxsize=None)
def normalizer_for(lang_code: str) -> Callable[[str], Normalized]:
    """The normaliser for a language code ('en-us', 'es', 'pt-br', 'zh', ...;
    aliases as in ``languages.resolve``, which raises InputError if unknown)."""
    code = resolve(lang_code).code
    if code in ("en-us", "en-gb"):
        return normalize
    return _Normalizer(code)
