"""Rules every language's normaliser runs, whatever its language: invisible
and control characters, fullwidth forms, HTML entities, and the written forms
of the web (email addresses, URLs, file names), which are said in English
words here ("dot", "slash"); ``normalize_intl`` says them in its own words
with the same patterns.
"""

from __future__ import annotations

import html
import re
import unicodedata
import urllib.parse

from kokorod.text.rewrite import Rule

TLDS = "com|org|net|io|ai|dev|edu|gov|app|co|uk|de|fr|jp|info|ly|gg|tv|ca|xyz|tech|cloud|eu|nl|ch|au"
URL_END = r"(?=[.,;:!?)\]'\"]*(?:\s|$))"
# Private-use characters (an icon font's glyphs, a vendor's symbols) mean nothing
# to any G2P: misaki drops them silently.
PRIVATE_USE = "\uE000-\uF8FF\U000F0000-\U000FFFFD\U00100000-\U0010FFFD"

# Invisible / control characters make misaki drop neighbouring words.  A
# zero-width space or a control character separates words; joiners do not.
CLEANUP_RULES: list[Rule] = [
    (re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b]+"), lambda m: " "),
    (re.compile(r"[\u00ad\u200c-\u200f\u2060\ufeff]+"), lambda m: ""),
]
# Fullwidth forms, ligatures, math alphanumerics -> plain letters.
FULLWIDTH_RULE: Rule = (re.compile(r"[\uff01-\uff5e\ufb00-\ufb06\U0001d400-\U0001d7ff]+"),
                        lambda m: unicodedata.normalize("NFKC", m.group()))
ENTITY_RULE: Rule = (re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{1,6}|#x[0-9a-fA-F]{1,6});"), lambda m: html.unescape(m.group()))
EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
URL_RE = re.compile(rf"(?i)(?<![\w@/.])(?:(?:https?|ftp)://|www\.)[^\s<>\"'`]+?{URL_END}"
                    rf"|(?<![\w@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{TLDS})(?:/[^\s<>\"'`]*?)?{URL_END}")
FILE_RE = re.compile(r"(?<![\w/.])([\w-]+)\.(py|js|ts|tsx|jsx|md|txt|json|ya?ml|toml|rs|go|sh|cpp|hpp|java|rb|"
                     r"php|sql|html|css|csv|pdf|png|jpe?g|gif|svg|zip|gz|exe|log|ini|cfg|conf|xml|lock|wav|mp3|"
                     r"mp4|onnx|bin|dll)\b(?!\.\w)")


def say_url(url: str, dot: str = "dot", slash: str = "slash") -> str:
    u = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.I)
    u = re.sub(r"^www\.", "", u, flags=re.I)
    u = re.split(r"[?#]", u, maxsplit=1)[0].rstrip("/")  # queries are unlistenable
    host, _, path = u.partition("/")
    words = [f" {dot} ".join(p for p in host.split(":")[0].split(".") if p)]
    for part in path.split("/"):
        part = re.sub(r"[-_+~=%]+", " ", urllib.parse.unquote(part)).replace(".", f" {dot} ")
        if part.strip():
            words.append(" ".join(part.split()))
    return f" {slash} ".join(words)


def say_email(m: re.Match[str]) -> str:
    local, _, domain = m.group().partition("@")
    for sym, word in ((".", " dot "), ("_", " underscore "), ("-", " dash "), ("+", " plus ")):
        local = local.replace(sym, word)
    return " ".join(local.split()) + " at " + " dot ".join(domain.split("."))
