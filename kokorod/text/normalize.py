"""Written text -> speakable text for misaki's English G2P.

``normalize(text)`` removes markdown syntax (see ``markdown.py``) and then
rewrites the written forms misaki 0.9.4 gets wrong.  Each rule below was
checked against the real G2P; things misaki already reads well ($3.50, 9:30,
Dr., Mr., 1st, 1990s, 10,000, 50%, &, AI/API/GPU, C++, x86, -5, 100+, ½) are
deliberately left alone.  What misaki got wrong, and what we say instead:

=====================  ===========================  ============================
written                misaki 0.9.4                 spoken here
=====================  ===========================  ============================
https://github.com/a   "H T T P S colon slash..."   github dot com slash a
a.b@example.com        "A B at example com"         a dot b at example dot com
file.txt, node.js      pause inside ("file. T X T") file dot txt
+1 555 123 4567        "five hundred fifty five..." plus 1, 5 5 5, 1 2 3, 4 5 6 7
Call 555-2187          "five hundred fifty five.."  5 5 5, 2 1 8 7 (cue: call, tel...)
1-800-555-0199         "one eight hundred five.."   1, 800, 5 5 5, 0 1 9 9
ZIP 94103, 94103-1234  "ninety four thousand..."    9 4 1 0 3, 1 2 3 4
4111 1111 1111 1111    "forty one eleven eleven.."  4 1 1 1, 1 1 1 1, ...
order 1234-5678        "twelve thirty four fifty.." order 1 2 3 4, 5 6 7 8
2024-05-01, 12/25/2024 digit soup                   May 1st, 2024
v2.0, 2.0.1            "vee two zero", "two zero 1" version 2 point 0, 2 point 0 point 1
Python 3.12, iOS 17.2  "three point one two"        Python 3 point 12
192.168.1.1:8080       "..one, eight thousand 80"   192 dot 168 dot 1 dot 1 colon 8080
3/4                    "three four"                 three quarters
2023–2024, pages 10-12 "two thousand twenty three.." 2023 to 2024, pages 10 to 12
$5M, $1.2B, 5k, 65M    "five M dollars", "five K"   $5 million, 5 thousand
€ 5                    drops the "€"                €5
10x                    "ten ex"                     10 times
5 km, 3 mm, 10 ms      "K M", "m", "M S"            5 kilometers ...
1.5km, 37.5°C          "one.five" (broken decimal)  1.5 kilometers, 37.5 degrees Celsius
#1                     "one"                        number 1
C#, F#                 "C hash"                     C sharp
e.g., i.e.             "E G", "I E"                 for example, that is
St., Inc., Jr., Fig.   stray pause / "J R"          Saint|Street, Inc, Junior, Figure
Henry VIII, Chapter IV "V I I I", "I V"             Henry the 8th, Chapter 4
~5, a -> b, 5 < 6      "tilde", ")", silence        about 5, a to b, 5 less than 6
x^2                    "x two"                      x squared
--                     silence (no pause)           — (a pause)
emoji                  "grinning face"              dropped
CJK / Arabic / Hangul  "Chinese letter" x N         dropped (en voice can't say it)
« » ¿ ¡ [ ] < >        not in Kokoro's vocabulary   “ ” (dropped) ( ) ( )
a<b, x>5               silence                      a less than b, x greater than 5
<br>, <!-- note -->    (markdown: dropped)          dropped and reported
private use (U+E000..) dropped silently             dropped and reported
control, zero-width    swallow neighbouring words   a space (joiners: dropped)
=====================  ===========================  ============================

Numbers that are not quantities (phones, ZIP codes, card / account / order
numbers, IP addresses, versions) and the ranges they must not be taken for are
``numbers_en``'s: its docstring has the rules, both sides of each ("Call
555-2187" is a phone number, "pages 10-12" and "Sold 555-2187 units" are
ranges; "ZIP 94103" digits, "94103 people" a number; "Python 3.12" a
version, "Pi is 3.14" a decimal), and why 0 is "zero", never "oh".  Those
rules look at the words before the number (``apply_context_rule``).

misaki only emits its unknown marker '❓' when neither its lexicon nor the
espeak fallback produces phonemes; with the fallback on we could not make it
appear for any input (control characters came closest: "a\\x00b" loses the
"b").  The cleanup above also keeps symbols outside Kokoro's phoneme
vocabulary ('[', '«', '¿', ...) out of the phonemes.

``Normalized.spans`` maps spoken text back to written text: one
``Replacement`` for every place where the spoken *words* differ from the
written ones.  Pure syntax removal ("**", "# ", link targets) and punctuation
changes produce no span because the words are still the written ones.
"""

from __future__ import annotations

import re

from kokorod.text import numbers_en
from kokorod.text.long_numbers import read_long_runs
from kokorod.text.markdown import strip_markdown
# Normalized and Replacement are re-exported: the segmenter and outside code take them from here.
from kokorod.text.rewrite import Normalized, Replacement, Rule, apply_context_rule, apply_rule, assemble
from kokorod.text.shared_rules import CLEANUP_RULES, EMAIL_RE, ENTITY_RULE, FILE_RE, FULLWIDTH_RULE, PRIVATE_USE, URL_RE
from kokorod.text.shared_rules import say_email, say_url

__all__ = ["STARTERS", "Normalized", "Replacement", "apply_context_rule", "apply_rule", "assemble", "ends_sentence",
           "normalize", "say_url"]


# Capitalised words that, after an ambiguous abbreviation ("U.S.", "Inc."),
# mean a new sentence started: "in the U.S. Then he left" vs "the U.S. Army".
# Shared with the segmenter so both make the same call.
STARTERS = frozenset(
    """the a an this that these those it its he she they we i you his her their our my your
    there here then but and so or yet however in on at for if when while after before since
    because although as what why how who where which also now today yesterday tomorrow
    meanwhile still thus therefore some many most all each every no not yes please let do does
    did is are was were can could will would should just even only later first next finally
    of to with by from one two another other such both neither either""".split()
)

_CLOSERS = "\"'”’)]*_"


def normalize(text: str) -> Normalized:
    dropped: list[str] = []

    def drop(m: re.Match[str]) -> str:
        dropped.append(m.group())
        return ""

    # Unspeakable text goes first, before the cleanup deletes zero-width joiners,
    # so an emoji sequence is reported as it was written.
    pieces = apply_rule(strip_markdown(text, dropped), UNSPEAKABLE_EN, drop)
    pieces = apply_rule(pieces, _MODIFIERS, lambda m: "")
    for pattern, repl in _RULES:
        pieces = apply_rule(pieces, pattern, repl)
    if _DIGIT.search(text) is not None:  # digit rules: skipped for text without one (speed)
        pieces = read_long_runs(pieces)  # 16+ digits: in groups, before any rule reads them as a number
        for pattern, repl in _DATE_RULES:
            pieces = apply_rule(pieces, pattern, repl)
        for pattern, context_repl in numbers_en.RULES:
            pieces = apply_context_rule(pieces, pattern, context_repl)
        for pattern, repl in _DIGIT_RULES:
            pieces = apply_rule(pieces, pattern, repl)
    for pattern, repl in _LATE_RULES:
        pieces = apply_rule(pieces, pattern, repl)
    return assemble(pieces, dropped)


_DIGIT = re.compile(r"\d")


# --------------------------------------------------------------------- helpers

def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_MONTHS = "January February March April May June July August September October November December".split()


def _date(year: str, month: str, day: str) -> str | None:
    y, mo, d = int(year), int(month), int(day)
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{_MONTHS[mo - 1]} {_ordinal(d)}, {y}"


def _slash_date(m: re.Match[str]) -> str | None:
    a, b, y = m.groups()
    if int(a) > 12 >= int(b):  # 25/12/2024: day first
        a, b = b, a
    return _date(y, a, b)


_NUMS = "zero one two three four five six seven eight nine".split()
_DENOMS = {2: "half", 3: "third", 4: "quarter", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth",
           10: "tenth"}
_SCALE = {"K": "thousand", "k": "thousand", "M": "million", "m": "million", "B": "billion", "bn": "billion",
          "T": "trillion"}


def _fraction(m: re.Match[str]) -> str | None:
    n, d = int(m.group(1)), int(m.group(2))
    if n >= d:  # 24/7, 9/11, 5/3: not a simple fraction
        return None
    word = _DENOMS[d] if n == 1 else ("halves" if d == 2 else _DENOMS[d] + "s")
    return f"{_NUMS[n]} {word}"


_UNITS: dict[str, tuple[str, str]] = {
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "ms": ("millisecond", "milliseconds"), "µs": ("microsecond", "microseconds"),
    "μs": ("microsecond", "microseconds"), "ns": ("nanosecond", "nanoseconds"),
    "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"), "PB": ("petabyte", "petabytes"),
    "Kbps": ("kilobit per second", "kilobits per second"), "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"), "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "MW": ("megawatt", "megawatts"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
    "°C": ("degree Celsius", "degrees Celsius"), "℃": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}


def _unit(m: re.Match[str]) -> str:
    num, unit = m.group(1), m.group(2)
    one = num.lstrip("-") in ("1", "1.0")
    return f"{num} {_UNITS[unit][0 if one else 1]}"


_ABBREVS = {
    "e.g.": "for example", "i.e.": "that is", "cf.": "compare", "approx.": "approximately",
    "Approx.": "Approximately", "Prof.": "Professor", "Fig.": "Figure", "fig.": "figure",
    "Figs.": "Figures", "Eq.": "Equation", "eq.": "equation", "Vol.": "Volume", "vol.": "volume",
    "pp.": "pages", "Ch.": "Chapter", "ch.": "chapter", "Sec.": "Section", "Jr.": "Junior",
    "Sr.": "Senior", "Inc.": "Inc", "Ltd.": "Limited", "Corp.": "Corporation", "Co.": "Company",
    "Bros.": "Brothers", "Ave.": "Avenue", "Blvd.": "Boulevard", "Rd.": "Road", "Mt.": "Mount",
    "Dept.": "Department", "Univ.": "University", "Gov.": "Governor", "Sen.": "Senator",
    "Rep.": "Representative", "Gen.": "General", "Capt.": "Captain", "Lt.": "Lieutenant",
    "Sgt.": "Sergeant", "Col.": "Colonel", "Rev.": "Reverend", "Hon.": "Honorable", "ca.": "circa",
    "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Jun.": "June",
    "Jul.": "July", "Aug.": "August", "Sep.": "September", "Sept.": "September",
    "Oct.": "October", "Nov.": "November", "Dec.": "December", "St.": "",
}


def ends_sentence(text: str, end: int) -> bool:
    """After an abbreviation's '.', does the sentence end?  (End of text, or a
    capitalised sentence-starting word follows; see STARTERS.)"""
    rest = text[end:].lstrip(_CLOSERS)
    if not rest.strip():
        return True
    m = re.match(r"\s+([A-Z][a-z]*)\b", rest)
    return bool(m and m.group(1).lower() in STARTERS)


def _abbrev(m: re.Match[str]) -> str:
    word, text = m.group(), m.string
    said = _ABBREVS[word]
    if word == "St.":  # "Main St." is a street; "St. Mary" a saint
        before = re.search(r"([A-Za-z]+)\s+$", text[:m.start()])
        after_cap = re.match(r"\s+[A-Z]", text[m.end():])
        named = before is not None and before.group(1)[0].isupper() and before.group(1).lower() not in STARTERS
        said = "Street" if named or not after_cap else "Saint"
    return said + ("." if ends_sentence(text, m.end()) else "")


_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}


def _roman(numeral: str) -> int:
    total = 0
    for i, ch in enumerate(numeral):
        v = _ROMAN_VALUES[ch]
        total += -v if i + 1 < len(numeral) and _ROMAN_VALUES[numeral[i + 1]] > v else v
    return total


def _roman_rule(m: re.Match[str]) -> str | None:
    """"Chapter IV" -> "Chapter 4", "Henry VIII" -> "Henry the 8th"; other
    capital I/V/X words ("I", "VI" the editor) are left alone."""
    before = _WORD_BEFORE.search(m.string, max(0, m.start() - 16), m.start())
    if before is None:
        return None
    word, numeral = before.group(1), m.group()
    if word.lower() in _CUES:
        return str(_roman(numeral))
    if word in _NAMES and len(numeral) > 1:
        return f"the {_ordinal(_roman(numeral))}"
    return None


def _power(m: re.Match[str]) -> str:
    return {"2": " squared", "3": " cubed"}.get(m.group(1), f" to the power of {m.group(1)}")


_COMPARE = {"<=": "less than or equal to", ">=": "greater than or equal to", "!=": "not equal to",
            "==": "equals", "<": "less than", ">": "greater than"}
_PUNCT_MAP = {"«": "“", "»": "”", "„": "“", "‹": "‘", "›": "’", "[": "(", "]": ")", "¿": "", "¡": "",
              "。": ". ", "、": ", ", "「": "“", "」": "”", "『": "“", "』": "”", "【": "(", "】": ")",
              "•": "", "·": "", "†": "", "‡": "", "‑": "-", "‐": "-", "|": ", ", "~": "", "^": "", "*": "", "`": "",
              # Angle brackets left by the rules above ("Press <Enter>", "Vec<String>"): misaki
              # would drop them, and with them the grouping; brackets keep it.
              "<": "(", ">": ")"}

_NUM = r"\d+(?:\.\d+)?"
_ROMAN_RE = r"(?=[IVX])X{0,3}(?:IX|IV|V?I{0,3})"
_WORD_BEFORE = re.compile(r"([A-Za-z]+)\s+$")
_CUES = frozenset("""chapter part volume book act scene phase stage level type class article section war
    episode season grade category round appendix step tier mark apollo rocky fantasy""".split())
_NAMES = frozenset("""Henry Louis Edward George Elizabeth Charles James William Richard Philip John Pius Leo
    Gregory Benedict Paul Frederick Napoleon Catherine Mary Anne Victoria Alexander Peter Ramesses Innocent
    Clement Urban Alfonso Ferdinand Nicholas Ivan Constantine Otto Francis David Malcolm Robert Harold
    Stephen Wilhelm Gustav Olaf Christian Felipe Juan Carlos Ludwig""".split())


# The English reading of what every language shares (shared_rules).
_RULES: list[Rule] = [
    *CLEANUP_RULES,
    FULLWIDTH_RULE,
    ENTITY_RULE,
    (EMAIL_RE, say_email),
    (URL_RE, lambda m: say_url(m.group())),
    (FILE_RE, lambda m: f"{m.group(1)} dot {m.group(2)}"),
]
# Rules that only match around a digit: skipped for text without one (speed).
# Dates first (2024-05-01 is no range) ...
_DATE_RULES: list[Rule] = [
    (re.compile(r"(?<![\w.-])(\d{4})-(\d{2})-(\d{2})(?![\w-]|\.\d)"), lambda m: _date(*m.groups())),
    (re.compile(r"(?<![\w/.])(\d{1,2})/(\d{1,2})/(\d{4})(?![\w/])"), _slash_date),
]
# Then numbers_en.RULES (phones, ZIP codes, digit groups, IPs, versions, ranges),
# then the quantities.
_DIGIT_RULES: list[Rule] = [
    (re.compile(r"(?<![\w/.,])([1-9])/(10|[2-9])(?![\w/]|[.,]\d)"), _fraction),
    (re.compile(r"(?<=[$€£¥])\s+(?=\d)"), lambda m: ""),  # misaki drops the symbol in "€ 5"
    (re.compile(rf"([$€£¥])\s?({_NUM})\s?(K|k|M|m|B|bn|T)\b"),
     lambda m: f"{m.group(1)}{m.group(2)} {_SCALE[m.group(3)]}"),
    (re.compile(rf"(?<![\w.$€£])({_NUM})(k|M|B|bn)\b"),  # "5k users", "65M parameters"
     lambda m: f"{m.group(1)} {_SCALE[m.group(2)]}"),
    (re.compile(rf"(?<![\w.])({_NUM})x\b"), lambda m: f"{m.group(1)} times"),
    (re.compile(r"(?<![\w.])(-?\d+(?:,\d{3})*(?:\.\d+)?)\s?("
                + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")(?![\w/°])"), _unit),
    (re.compile(r"(?<![\w.])(\d+\.\d+)(?=[A-Za-z])"), lambda m: m.group() + " "),  # "1.5GHz": misaki breaks it
    (re.compile(r"(?<![\w&#])#(\d+)\b"), lambda m: f"number {m.group(1)}"),
]
_LATE_RULES: list[Rule] = [
    (re.compile(r"\b([CFJ])#(?![\w#])"), lambda m: f"{m.group(1)} sharp"),
    (re.compile(r"(?<![\w.])\.NET\b"), lambda m: "dot net"),
    (re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(a) for a in sorted(_ABBREVS, key=len, reverse=True)) + r")"
                r"(?!\w)"), _abbrev),
    (re.compile(r"(?<![\w/])w/o(?![\w/])"), lambda m: "without"),
    (re.compile(r"(?<![\w/])w/(?=\s)"), lambda m: "with"),
    (re.compile(rf"(?<=\s)(?:{_ROMAN_RE})\b(?!['’]?\w|\.\w)"), _roman_rule),
    (re.compile(r"->|=>|→|⇒|⟶"), lambda m: " to "),
    (re.compile(r"~\s?(?=\d)"), lambda m: "about "),
    (re.compile(r"(?<=[\s\d])(<=|>=|!=|==|<|>)(?=[\s\d-])"), lambda m: f" {_COMPARE[m.group(1)]} "),
    # "a<b", "x>5": a comparison between one-character operands.
    (re.compile(r"(?<=(?<![\w.])[A-Za-z0-9])(<=|>=|<|>)(?=[A-Za-z0-9](?![\w.]))"),
     lambda m: f" {_COMPARE[m.group(1)]} "),
    (re.compile(r"\^(\d+)"), _power),
    (re.compile(r"(?<=\d)\s*\*\s*(?=\d)"), lambda m: " times "),
    (re.compile(r"(?<=[\w\s])--(?=[\w\s])"), lambda m: " — "),
    (re.compile(r"(?<!\S)(?:[:;=][-o^']?[)(\]\[DPpO3/\\|*]|<3|\^_\^|xD|XD)(?!\S)"), lambda m: ""),  # emoticons
(re.compile("[" + re.escape("".join(_PUNCT_MAP)) + "]"), lambda m: _PUNCT_MAP[m.group()]),
]
# What the English voices cannot say at all; removed and reported (``dropped``).
# misaki would spell other scripts letter by letter ("Привет" as "pe er i ve..."),
# or name each character; a lone Greek letter (α, π, Δ) it reads well, so only
# Greek words go.
_EMOJI = "\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF"
_EMOJI_MODS = "\uFE0E\uFE0F\u200D\u20E3\U000E0020-\U000E007F"
_FOREIGN = ("\u0400-\u052F\u0590-\u08FF\u0900-\u0DFF\u0E00-\u0EFF\u1100-\u11FF\u3040-\u30FF"
            "\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF")
_FOREIGN_WORD = f"(?:[{_FOREIGN}]+|[\u0370-\u03FF]{{2,}})"
UNSPEAKABLE_EN = re.compile(f"[{_EMOJI}][{_EMOJI}{_EMOJI_MODS}]*|{_FOREIGN_WORD}(?:[ \t'’-]+{_FOREIGN_WORD})*"
                            f"|[{PRIVATE_USE}]+")
_MODIFIERS = re.compile(r"[\uFE0E\uFE0F\u200D\u20E3\U000E0020-\U000E007F]+")  # left over: not text
