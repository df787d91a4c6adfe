"""Numbers, dates, times and money as words, for the non-English languages.

Why rewrite digits before the G2P: phonemizer (under misaki's ``EspeakG2P``)
cuts its input at punctuation before espeak-ng sees it, so "3,5", "1.000",
"14:30" reach espeak as separate numbers ("tres, cinco", "uno. cero cero
cero", "catorce: treinta") and "-5" loses its sign.  We read them here:
num2words for es/fr/it/pt-br, cn2an for zh, misaki's num2kana for ja (only
where cutlet reads digits wrongly), and for hi only the separators (espeak-ng
reads Hindi digits well by itself).

Each ``*_rules`` function returns ``Rule``s for ``normalize._apply``; every
rewrite becomes a ``Replacement`` span, so word events keep the digits.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache

from num2words import num2words

from kokorod.text.numbers_en import Rule

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


# ------------------------------------------------------------------------ hi

_HI_MONTHS = "जनवरी फ़रवरी मार्च अप्रैल मई जून जुलाई अगस्त सितंबर अक्टूबर नवंबर दिसंबर".split()
_HI_CURRENCY = {"₹": "रुपये", "Rs.": "रुपये", "Rs": "रुपये", "$": "डॉलर", "€": "यूरो", "£": "पाउंड"}


def _hi_date(y: str, mo: str, d: str) -> str | None:
    month, day = int(mo), int(d)
    return f"{day} {_HI_MONTHS[month - 1]} {int(y)}" if 1 <= month <= 12 and 1 <= day <= 31 else None


def _hi_dec(num: str) -> str:
    """"3.25" -> "3 दशमलव 2 5": digits after the point are said one by one."""
    whole, _, frac = num.partition(".")
    return f"{whole} दशमलव {' '.join(frac)}" if frac else whole


def hindi_rules() -> list[Rule]:
    """espeak-ng's Hindi voice reads digit runs ("25" पच्चीस, "100000" एक लाख);
    only what phonemizer would cut at punctuation is rewritten, digits kept."""
    dec = r"\d+(?:\.\d+)?"
    return [
        (re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w-]|\.\d)"), lambda m: _hi_date(*m.groups())),
        (re.compile(r"(?<![\w/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?![\w/]|[.-]\d)"),
         lambda m: _hi_date(m.group(3), *((m.group(1), m.group(2)) if int(m.group(2)) > 12 >= int(m.group(1))
                                          else (m.group(2), m.group(1))))),
        (re.compile(r"(?<![\w:.,])([01]?\d|2[0-3]):([0-5]\d)(?![\w:]|[.,]\d)(?:\s*बजे)?"),  # 14 बजकर 30 मिनट
         lambda m: f"{int(m.group(1))} बजे" if m.group(2) == "00" else f"{int(m.group(1))} बजकर {int(m.group(2))} मिनट"),
        (re.compile(r"(?<![\d,])\d{1,3}(?:,\d{2})*(?:,\d{3})+(?![\d,])"),  # 1,00,000 and 1,000,000
         lambda m: m.group().replace(",", "")),
        (re.compile(rf"(₹|Rs\.?|[$€£])\s?({dec})(?!\d)"), lambda m: f"{_hi_dec(m.group(2))} {_HI_CURRENCY[m.group(1)]}"),
        (re.compile(r"(?<![\w.])\d+\.\d+(?![\w]|\.\d)"), lambda m: _hi_dec(m.group())),
        (re.compile(r"(?<![\w.,])[-−](?=\d)"), lambda m: "माइनस "),
    ]


# ------------------------------------------------------------------------ zh

@lru_cache(maxsize=1)
def _cn2an() -> object:
    import cn2an  # lazy: imports its own data on first use
    return cn2an


def _cn(num: str) -> str:
    """cn2an's reading with 两 where Mandarin says it: 2000 两千, 20000 两万."""
    num = unicodedata.normalize("NFKC", num)
    whole, _, frac = num.lstrip("-").partition(".")
    if len(whole) > 15 or len(frac) > 15:  # cn2an reads at most 16 digits
        return ("负" if num[0] == "-" else "") + _zh_digits(whole) + ("点" + _zh_digits(frac) if frac else "")
    said = str(_cn2an().an2cn(num, "low"))  # type: ignore[attr-defined]
    return re.sub(r"(?:^|(?<=[万亿负]))二(?=[千万亿])", "两", said)


_ZH_DIGITS = "零一二三四五六七八九"
_ZH_CURRENCY = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
_ZH_PHONE_CUE = re.compile(r"(?:电话|手机|号码|热线|拨打|致电|传真|微信|QQ|编号|单号|验证码)[^\d]{0,4}$")


def _zh_digits(s: str) -> str:
    return "".join(_ZH_DIGITS[int(d)] for d in s if d.isdigit())


def _zh_date(y: str, mo: str, d: str) -> str | None:
    return f"{_zh_digits(y)}年{_cn(mo)}月{_cn(d)}日" if 1 <= int(mo) <= 12 and 1 <= int(d) <= 31 else None


def _zh_int(m: re.Match[str]) -> str:
    num, sign = unicodedata.normalize("NFKC", m.group(2)), m.group(1)
    before = m.string[max(0, m.start() - 12):m.start()]
    if (num[0] == "0" and len(num) > 1 and "." not in num) or len(num.split(".")[0]) >= 11 \
            or (_ZH_PHONE_CUE.search(before) and "." not in num):
        return ("负" if sign else "") + _zh_digits(num)  # a code or a phone number: digit by digit
    return _cn(("-" if sign else "") + num)


def chinese_rules() -> list[Rule]:
    num = r"\d+(?:[.．]\d+)?"
    return [
        (re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+(?![\d,])"), lambda m: _cn(m.group().replace(",", ""))),  # 1,000
        # Phone numbers, digit by digit: 138-1234-5678, 010-12345678, +86 138 1234 5678.
        (re.compile(r"(?<![\d-])(?:\+\d{1,3}(?:[ -]\d{1,4}){2,4}|\d{3}(?:[ -]\d{4}){2}|0\d{2,3}-\d{7,8})(?![\d-])"),
         lambda m: ("加" if m.group()[0] == "+" else "") + ", ".join(_zh_digits(g) for g in re.findall(r"\d+", m.group()))),
        (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d])"), lambda m: _zh_date(*m.groups())),
        (re.compile(r"(?<!\d)(\d{4})(?=年)"), lambda m: _zh_digits(m.group())),  # 2024年: 二零二四年
        (re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?![\d:])"),
         lambda m: f"{_cn(m.group(1))}点" + (f"{'零' if m.group(2)[0] == '0' else ''}{_cn(m.group(2))}分"
                                              if m.group(2) != "00" else "")
         + (f"{_cn(m.group(3))}秒" if m.group(3) else "")),
        (re.compile(rf"([¥￥$€£])\s?({num})(?!\d)"), lambda m: f"{_cn(m.group(2))}{_ZH_CURRENCY[m.group(1)]}"),
        (re.compile(rf"(?<![A-Za-z0-9.])(-?{num})\s?[%％]"), lambda m: f"百分之{_cn(m.group(1))}"),
        (re.compile(rf"(?<![A-Za-z0-9.])(-?{num})\s?‰"), lambda m: f"千分之{_cn(m.group(1))}"),
        (re.compile(r"(?<![\d/.])(\d{1,3})/(\d{1,3})(?![\d/])"), lambda m: f"{_cn(m.group(2))}分之{_cn(m.group(1))}"),
        (re.compile(rf"(?<![\d.])({num})\s?[-–—~～]\s?({num})(?![\d.])"), lambda m: f"{_cn(m.group(1))}到{_cn(m.group(2))}"),
        # A sign only where a number starts ("GPT-4" is not minus four).
        (re.compile(rf"(?<![\d.])((?<![A-Za-z0-9])-)?({num})(?![\d])"), _zh_int),
    ]


# ------------------------------------------------------------------------ ja

def _kana(n: int) -> str:
    from misaki.num2kana import Convert  # lazy: misaki's Japanese helper

    s = str(n)
    if len(s) > 9:  # Convert returns an English error message beyond 9 digits
        return "".join(Convert(d) for d in s)
    return str(Convert(s))


# Readings cutlet (digit-by-digit Convert + the word after it) gets wrong.
_JA_MONTH = {4: "しがつ", 7: "しちがつ", 9: "くがつ"}
_JA_DAY = {1: "ついたち", 2: "ふつか", 3: "みっか", 4: "よっか", 5: "いつか", 6: "むいか", 7: "なのか",
           8: "ようか", 9: "ここのか", 10: "とおか", 14: "じゅうよっか", 20: "はつか", 24: "にじゅうよっか"}
_JA_HOUR = {0: "れいじ", 4: "よじ", 7: "しちじ", 9: "くじ", 14: "じゅうよじ", 17: "じゅうしちじ", 19: "じゅうくじ"}
_JA_CURRENCY = {"¥": "円", "￥": "円", "$": "ドル", "€": "ユーロ", "£": "ポンド"}


def _ja_month(n: int) -> str:
    return _JA_MONTH.get(n, _kana(n) + "がつ")


def _ja_day(n: int) -> str:
    return _JA_DAY.get(n, _kana(n) + "にち")


def _ja_minutes(n: int) -> str:
    said = _kana(n)
    if n % 10 in (0, 1, 6, 8):  # いっぷん, ろっぷん, はっぷん, じゅっぷん
        return re.sub(r"(いち|ろく|はち|じゅう)$", lambda m: m.group()[:-1] + "っ", said) + "ぷん"
    return said + ("ぷん" if n % 10 in (3, 4) else "ふん")


def _ja_num(num: str, neg: bool = False) -> str:
    whole, _, frac = unicodedata.normalize("NFKC", num).replace(",", "").partition(".")
    said = _kana(int(whole)) + ("てん" + "".join(_kana(int(d)) for d in frac) if frac else "")
    return ("マイナス" if neg else "") + said


def japanese_rules() -> list[Rule]:
    num = r"\d{1,3}(?:,\d{3})+(?!\d)(?:[.．]\d+)?|\d+(?:[.．]\d+)?"
    return [
        (re.compile(r"(?<!\d)(\d{2,4})-(\d{2,4})-(\d{3,4})(?![\d-])"),  # 090-1234-5678: digit by digit
         lambda m: "、".join("".join(_kana(int(d)) for d in g) for g in m.groups())),
        (re.compile(r"(?<!\d)(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?!\d)"),
         lambda m: f"{m.group(1)}年{_ja_month(int(m.group(2)))}{_ja_day(int(m.group(3)))}"
         if 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31 else None),
        (re.compile(r"(?<!\d)(1[0-2]|0?[1-9])月(3[01]|[12]\d|0?[1-9])日"),
         lambda m: _ja_month(int(m.group(1))) + _ja_day(int(m.group(2)))),
        (re.compile(r"(?<!\d)0?([479])月"), lambda m: _JA_MONTH[int(m.group(1))]),
        (re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])"),
         lambda m: _JA_HOUR.get(int(m.group(1)), _kana(int(m.group(1))) + "じ")
         + (_ja_minutes(int(m.group(2))) if m.group(2) != "00" else "")),
        (re.compile(rf"([¥￥$€£])\s?({num})"), lambda m: _ja_num(m.group(2)) + _JA_CURRENCY[m.group(1)]),
        (re.compile(rf"(?<![A-Za-z0-9.])([-−])?({num})\s?[%％]"), lambda m: _ja_num(m.group(2), bool(m.group(1))) + "パーセント"),
        (re.compile(rf"(?<![A-Za-z0-9.])[-−](?=\d)({num})"), lambda m: _ja_num(m.group(1), True)),
        # Grouped thousands, decimals and long numbers; other digit runs stay for cutlet.
        (re.compile(r"(?<![\d.])(?:\d{1,3}(?:,\d{3})+(?!\d)(?:[.．]\d+)?|\d+[.．]\d+|\d{10,})(?![\d])"),
         lambda m: _ja_num(m.group())),
    ]
