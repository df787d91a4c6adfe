"""Numbers, dates, times and money as words in es, fr, it and pt-br (via
num2words): the rules ``latin_rules(code)`` gives to ``normalize_intl``. See
``numbers_intl`` for why digits are read before the G2P; every rewrite becomes
a ``Replacement`` span, so word events keep the digits.
"""

from __future__ import annotations

import re
from decimal import Decimal

from num2words import num2words

from kokorod.text.rewrite import Rule

# An amount as written in es/fr/it/pt: "1.000,5", "1 000", "3,5", "3.5", "12".
# A '.' (or a no-break / narrow no-break space) followed by exactly three
# digits groups thousands; otherwise '.' and ',' are decimal separators.
_NUM = r"\d{1,3}(?:[.\u00a0\u202f]\d{3})+(?!\d)(?:,\d+)?|\d+(?:[.,]\d+)?"
_NUM_FR = r"\d{1,3}(?:[.\u00a0\u202f ]\d{3})+(?!\d)(?:,\d+)?|\d+(?:[.,]\d+)?"  # + plain-space groups
_END = r"(?!\d|[.,]\d)"


def _split(num: str) -> tuple[str, str | None]:
    """"1.000,5" -> ("1000", "5"); "3.5" -> ("3", "5"); "1.000" -> ("1000", None)."""
    if re.fullmatch(r"\d{1,3}(?:[.\u00a0\u202f ]\d{3})+(?:,\d+)?", num):
        whole, _, frac = num.partition(",")
        return re.sub(r"\D", "", whole), frac or None
    sep = re.search(r"[.,]", num)
    return (num, None) if sep is None else (num[:sep.start()], num[sep.end():])


# ------------------------------------------------------------ es fr it pt-br

class _Latin:
    """The words one Romance language needs around its numbers."""

    def __init__(self, n2w: str, comma: str, minus: str, percent: str, point: str, to: str, plus: str,
                 months: str, date: str, first: bool) -> None:
        self.n2w, self.comma, self.minus, self.percent = n2w, comma, minus, percent
        self.point, self.to, self.plus = point, to, plus
        self.months = months.split()
        self.date = date      # "{d} de {m} de {y}"
        self.first = first    # day 1 of a month is said as an ordinal ("premier mai")

    def card(self, n: int) -> str:
        if n >= 10**15:  # num2words overflows (pt at 10**18) and nobody says these
            return self.digits(str(n))
        return str(num2words(n, lang=self.n2w))

    def digits(self, s: str) -> str:
        return " ".join(self.card(int(d)) for d in s if d.isdigit())

    def number(self, num: str, neg: bool = False) -> str:
        whole, frac = _split(num)
        if len(whole) > 1 and whole[0] == "0" and frac is None:
            said = self.digits(whole)  # "007", "0612345678": codes, not quantities
        else:
            said = self.card(int(whole))
        if frac is not None:
            rest = frac.lstrip("0")
            tail = [self.card(0)] * (len(frac) - len(rest))
            if rest:  # "3,25" -> "tres coma veinticinco"; long tails digit by digit
                tail.append(self.card(int(rest)) if len(rest) <= 3 else self.digits(rest))
            said += f" {self.comma} " + " ".join(tail)
        return f"{self.minus} {said}" if neg else said

    def ordinal(self, n: int, fem: bool) -> str:
        said = str(num2words(n, lang=self.n2w, to="ordinal"))
        if fem:  # es/it/pt ordinals agree by their final vowel; French has only "première"
            said = said.replace("premier", "première") if self.n2w == "fr" else re.sub(r"o\b", "a", said)
        return said


_LANGS = {
    "es": _Latin("es", "coma", "menos", "por ciento", "punto", "a", "más",
                 "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
                 "{d} de {m} de {y}", False),
    "fr": _Latin("fr", "virgule", "moins", "pour cent", "point", "à", "plus",
                 "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
                 "{d} {m} {y}", True),
    "it": _Latin("it", "virgola", "meno", "per cento", "punto", "a", "più",
                 "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
                 "{d} {m} {y}", True),
    "pt-br": _Latin("pt_BR", "vírgula", "menos", "por cento", "ponto", "a", "mais",
                    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
                    "{d} de {m} de {y}", True),
}

_CURRENCY = {"€": "EUR", "EUR": "EUR", "$": "USD", "US$": "USD", "USD": "USD", "£": "GBP", "R$": "BRL"}
_PT_NOUNS = {"EUR": ("euro", "euros"), "USD": ("dólar", "dólares"), "GBP": ("libra", "libras")}
_OF = {"es": "de ", "it": "di ", "fr": "de "}  # "un millón de euros"


def _money(L: _Latin, num: str, code: str) -> str:
    whole, frac = _split(num)
    if (frac is not None and len(frac) > 2) or len(whole) > 15 or (code == "BRL" and L.n2w in ("fr", "it")):
        return f"{L.number(num)} " + ("reais" if code == "BRL" else code)  # nothing num2words can say
    value = Decimal(f"{int(whole)}.{(frac or '0').ljust(2, '0')}")
    if L.n2w == "pt_BR":  # num2words' pt_BR only knows reais; swap the nouns for the others
        said = str(num2words(value, lang="pt_BR", to="currency"))
        if code in _PT_NOUNS:
            one, many = _PT_NOUNS[code]
            said = re.sub(r"\breais\b", many, re.sub(r"\breal\b", one, said))
            if code == "GBP":  # libra is feminine
                said = re.sub(r"\bum (?=libras?\b)", "uma ", re.sub(r"\bdois (?=libras\b)", "duas ", said))
        return said
    said = str(num2words(value, lang=L.n2w, to="currency", currency=code))
    if value == int(value):  # "tres euros con cero céntimos" -> "tres euros"
        said = re.sub(r"\s+(?:con|et|e) (?:cero|zéro|zero) \S+$", "", said)
    n = int(value)
    card = L.card(n)
    if n and n % 10**6 == 0 and said.startswith(card + " "):  # "un millón euros" -> "un millón de euros"
        noun = said[len(card) + 1:]
        of = "d'" if L.n2w == "fr" and noun[:1] in "aeiouy" else _OF[L.n2w]
        said = f"{card} {of}{noun}"
    if L.n2w == "fr":
        said = re.sub(r"\bun (?=livres?\b)", "une ", said)
    return said


def _fem_hour(L: _Latin, said: str) -> str:
    """Hours are feminine (la hora, l'heure, l'ora, a hora): "una", "une", "duas"."""
    if L.n2w == "pt_BR":
        return re.sub(r"\bdois$", "duas", re.sub(r"\bum$", "uma", said))
    return re.sub(r"\bun$", "une", said) if L.n2w == "fr" else re.sub(r"uno$", "una", said)


def _time(L: _Latin, h: int, m: int) -> str:
    hour = _fem_hour(L, L.card(h))
    if L.n2w == "fr":
        said = f"{hour} heure" + ("s" if h > 1 else "")
        return f"{said} {_fem_hour(L, L.card(m))}" if m else said
    if m:
        return f"{hour} y {L.card(m)}" if L.n2w == "es" else f"{hour} e {L.card(m)}"
    if L.n2w == "es":
        return f"{hour} en punto"
    return f"{hour} hora" + ("s" if h > 1 else "") if L.n2w == "pt_BR" else hour


def _date(L: _Latin, y: str, mo: str, d: str) -> str | None:
    month, day = int(mo), int(d)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    said_day = L.ordinal(1, False) if day == 1 and L.first else L.card(day)
    return L.date.format(d=said_day, m=L.months[month - 1], y=L.card(int(y)))


def _slash_date(L: _Latin, m: re.Match[str]) -> str | None:
    d, mo, y = m.group(1), m.group(3), m.group(4)
    if int(mo) > 12 >= int(d):  # "12/25/2024": written month first
        d, mo = mo, d
    return _date(L, y, mo, d)


def _then_space(m: re.Match[str], said: str) -> str:
    """"5km" -> "cinco km": a number glued to letters keeps a word boundary."""
    nxt = m.string[m.end():m.end() + 1]
    return said + " " if nxt.isalpha() else said


def _version(L: _Latin, m: re.Match[str]) -> str | None:
    parts = m.group().split(".")
    if all(len(p) == 3 for p in parts[1:]):
        return None  # "1.000.000" is a number (below)
    return f" {L.point} ".join(L.card(int(p)) for p in parts)


_ORDINALS = {  # written ordinal suffixes -> (feminine, apocopated "primer")
    "es": (r"\.?(º|ª|er\b)", {"ª": True}),
    "fr": (r"(ère|ere|re|er|ème|eme|e|nde|nd|ᵉʳ|ᵉ)\b", {"ère": True, "ere": True, "re": True, "nde": True}),
    "it": (r"([ºª])", {"ª": True}),
    "pt-br": (r"\.?([ºª])", {"ª": True}),
}


# Spanish shortens uno/primero/tercero before a noun ("un libro", "veintiún
# años", "el primer día") but not before these ("uno de mayo", "primero y").
_ES_LINKS = frozenset("de del y e o u en a al que con por para sin entre ni".split())


def _before_noun(m: re.Match[str]) -> bool:
    nxt = re.match(r"\s+([^\W\d_]+)", m.string[m.end():])
    return nxt is not None and nxt.group(1).lower() not in _ES_LINKS


def _ordinal(L: _Latin, fems: dict[str, bool], m: re.Match[str]) -> str:
    n, suffix = int(m.group(1)), m.group(2)
    if L.n2w == "fr" and n == 2 and suffix in ("nd", "nde"):
        return "seconde" if suffix == "nde" else "second"
    said = L.ordinal(n, fems.get(suffix, False))
    if L.n2w == "es" and (suffix == "er" or (suffix == "º" and _before_noun(m))):  # "1.er piso", "3.º día"
        said = re.sub(r"(prim|terc)ero$", r"\1er", said)
    return said


def _plain(L: _Latin, m: re.Match[str]) -> str:
    said = L.number(m.group(2), bool(m.group(1)))
    if L.n2w == "es" and said.endswith("uno") and _before_noun(m):
        said = re.sub(r"veintiuno$", "veintiún", re.sub(r"\buno$", "un", said))  # gender unknown: masculine
    return _then_space(m, said)


def latin_rules(code: str) -> list[Rule]:
    L = _LANGS[code]
    num = _NUM_FR if code == "fr" else _NUM
    cur = r"R\$|US\$|[$€£]"
    ord_suffix, fems = _ORDINALS[code]
    rules: list[Rule] = [
        (re.compile(r"(?<![\w+])\+(\d{1,3})((?:[ .-]?\(?\d{1,4}\)?){2,5})(?![\w-]|[.,]\d)"),  # +34 612 34 56 78
         lambda m: f"{L.plus} " + ", ".join(L.digits(g) for g in re.findall(r"\d+", m.group()))),
        (re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w-]|\.\d)"), lambda m: _date(L, *m.groups())),
        (re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?![\w/]|[.-]\d)"),
         lambda m: _slash_date(L, m)),
        (re.compile(r"(?<![\w:.,])([01]?\d|2[0-3])" + (r"(?::|h)" if code in ("fr", "pt-br") else ":")
                    + r"([0-5]\d)(?![\w:]|[.,]\d)"), lambda m: _time(L, int(m.group(1)), int(m.group(2)))),
    ]
    if code in ("fr", "pt-br"):  # "14h", "à 9 h"
        rules.append((re.compile(r"(?<![\w:.,])([01]?\d|2[0-3]) ?h(?!\w)"),
                      lambda m: _time(L, int(m.group(1)), 0)))
    rules += [
        (re.compile(rf"(?<![\w.])({cur})\s?({num}){_END}"),  # "€3.50", "R$ 3,50"
         lambda m: _money(L, m.group(2), _CURRENCY[m.group(1)])),
        (re.compile(rf"(?<![\w.,])({num})\s?({cur}|EUR\b|USD\b)"), lambda m: _money(L, m.group(1), _CURRENCY[m.group(2)])),
        (re.compile(rf"(?<![\w.,])([-−](?=\d))?({num})[\s\u202f]?%"),
         lambda m: f"{L.number(m.group(2), bool(m.group(1)))} {L.percent}"),
        (re.compile(r"(?<![\w.,])(\d{1,4})" + ord_suffix), lambda m: _then_space(m, _ordinal(L, fems, m))),
        (re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}(?!\w|\.\d)"), lambda m: _version(L, m)),  # 2.0.1, 192.168.1.1
        (re.compile(rf"(?<![\w.,/-])({num})(?:\s?[–—]\s?|-)({num})(?![\w/-]|[.,]\d)"),  # 10-20, 2023–2024
         lambda m: f"{L.number(m.group(1))} {L.to} {L.number(m.group(2))}"),
        (re.compile(rf"(?<![\w.,])([-−](?=\d))?({num}){_END}"), lambda m: _plain(L, m)),
    ]
    return rules
