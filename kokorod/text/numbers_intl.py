"""Numbers, dates, times and money as words, for the non-English languages.

Why rewrite digits before the G2P: phonemizer (under misaki's ``EspeakG2P``)
cuts its input at punctuation before espeak-ng sees it, so "3,5", "1.000",
"14:30" reach espeak as separate numbers ("tres, cinco", "uno. cero cero
cero", "catorce: treinta") and "-5" loses its sign.  We read them here:
num2words for es/fr/it/pt-br, cn2an for zh, misaki's num2kana for ja (only
where cutlet reads digits wrongly), and for hi only the separators (espeak-ng
reads Hindi digits well by itself).

Each ``*_rules`` function returns ``Rule``s for ``rewrite.apply_rule``; every
rewrite becomes a ``Replacement`` span, so word events keep the digits.
es/fr/it/pt-br's rules are in ``numbers_romance`` (``latin_rules``, re-exported
here); hi, zh and ja's are here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from kokorod.text.numbers_romance import latin_rules
from kokorod.text.rewrite import Rule

__all__ = ["chinese_rules", "hindi_rules", "japanese_rules", "latin_rules"]

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
