"""English numbers that are not quantities: phone numbers, ZIP and UK postal
codes, card, account and order numbers, IP (v4, v6) and MAC addresses,
version strings, and the ranges they must not be mistaken for.

misaki reads every digit run as a quantity ("94103" is "ninety-four thousand
one hundred three", "Python 3.12" "three point one two"), and our own range
rule made "Call 555-2187" "555 to 2187".  People read these
digit by digit, in the groups they are written in, with a short pause between
groups.  The rules here decide from the format and from the words just
before the number (the *cue*), and leave quantities alone.

Reading
-------
- A digit group is read digit by digit, "5 5 5"; groups are joined with a
  comma, which Kokoro says as a short pause: "5 5 5, 2 1 8 7".
- 0 is always "zero", never "oh".  "Oh" is what many Americans say in phone
  numbers, but "zero" is right in every position and every kind of number
  here (card numbers, IP addresses, versions), is the digit the recogniser
  and a listener writing it down cannot confuse with the letter O, and is
  what misaki says for "0" anyway.  One reading everywhere.
- A toll-free or premium area code 800 / 900 is said the way everyone says
  it: "1-800-555-0199" -> "1, 800, 5 5 5, 0 1 9 9" ("one, eight hundred...").
- A group longer than five digits, or an unseparated run, is split into
  groups of three or four ("12345678" -> "1 2 3 4, 5 6 7 8"); a 10-digit US
  number "4155552187" after a phone cue -> "4 1 5, 5 5 5, 2 1 8 7".

Decisions, both sides
---------------------
=============================  ==============================  ================================
written                        read as                         but
=============================  ==============================  ================================
(415) 555-2187, 415-555-2187,  phone, by format alone          --
415.555.2187, +1 415 555 2187,
1-800-555-0199, +44 20 7946
0958
Call 555-2187, tel 555 2187,   phone: 3-4 digits with a phone  pages 10-12, 1990–1995,
my number is 555-2187          cue among the 5 words before    10-20 minutes, scores 3-2:
                               (call, phone, tel, fax, dial,   ranges, "10 to 12"; a
                               text, number, mobile, ...)      range cue nearer than the
                                                               phone cue wins ("a number of
                                                               200-1000 users"); no US
                                                               number starts with 0 or 1
                                                               ("Call 100-1000 people")
Call 020 7946 0958             phone: a cue and 7-15 digits    2023-2024 after "call": a
                               in groups (3-4, 0-led, 3+       4-4 pair stays a range
                               groups) or unseparated
ZIP 94103, CA 94103,           ZIP: digit by digit, after      12345 people, $12345:
94103-1234                     zip / postal code / a state     numbers; 5-4 digits are
                               code; ZIP+4 by format alone     always ZIP+4 (no range goes
                                                               from 5 digits down to 4)
4111 1111 1111 1111,           digit groups, by format: four   123456789012345, 1234 5678
4111-1111-1111-1111,           groups of four, Amex 4-6-5, or  (two groups), 1,000,000: left
1234-5678-9012                 3+ hyphenated groups            as numbers (16 digits or more
                                                               are never a quantity:
                                                               ``long_numbers``)
order 1234-5678, account       digit groups after an ID cue    1234-5678 alone: a range
12345678, Order #12345         (order, account, card, ref,
                               confirmation, tracking, ...)
192.168.1.1(:8080, /24)        "192 dot 168 dot 1 dot 1 colon  version 1.2.3.4: points
                               8080" (4 parts, each <= 255)
2001:db8::1, fe80::1           "2-0-0-1 colon D-B-8 double     9:30:15, 16:9: times, ratios
                               colon 1" (a "::" or 8 groups)
00:1A:2B:3C:4D:5E              MAC: "0-0 colon 1A colon 2-B.." --
SW1A 1AA, M1 1AE               UK postcode: "S-W 1 A, 1 A-A"   PS5 5GB (a size), A4 paper
v1.2.3, 3.11.7, Python 3.12,   "version 1 point 2 point 3",    3.14, $3.50, 9:30, 1.5km: left
iOS 17.2, Ubuntu 22.04         "3 point 11 point 7", "Python   alone (misaki reads them
                               3 point 12", "22 point 0 4"     well: "three point one four")
=============================  ==============================  ================================

Versions: each part is a whole number ("three point eleven point seven",
"Python three point twelve"), as people say them; a part written with a
leading zero keeps its digits ("22.04" -> "twenty-two point zero four").
A two-part version needs a cue right before it: "version", "release" or a
product name from ``VERSION_CUES`` ("Python", "iOS", "Node", ...); "Pi is
3.14" stays a decimal.  Three or more parts are a version by format.

Dates ("2024-05-01") are read by ``normalize`` before these rules run.

Limits.  The cue must be in the same segment as the number: the normaliser
sees one segment at a time.  The segmenter never cuts inside a number written
without spaces ("415-555-2187"), but it may cut between the cue and the number
at a clause mark in the first segment ("For support, call our phone line:" |
"555-2187": then a range), and a forced cut (first segment over 12 words) may
fall between the space-separated groups of "+1 415 555 2187".

Each rule is ``(pattern, repl)``; ``repl(match, before)`` gets the spoken text
before the match (across markdown pieces, so "**Call** 555-2187" still sees
"Call") and returns the spoken form, or None to leave the text to later
rules.  ``rewrite.apply_context_rule`` runs them.  The codes with letters
(IPv6 and MAC addresses, UK postcodes) are read in ``codes_en``.
"""

from __future__ import annotations

import re

from kokorod.text.codes_en import IPV6, MAC, POSTCODE, ipv6, mac, postcode
from kokorod.text.rewrite import CONTEXT_CHARS, ContextRule

_CUE_WORDS = 5  # a cue counts among this many words before the number

PHONE_CUES = frozenset(
    """call calls calling called phone phones phoned telephone tel ph fax dial dialed dialing text texting
    sms number num mobile cell cellphone hotline helpline whatsapp ring reach contact""".split()
)
RANGE_CUES = frozenset(
    """from between pages page pp p ages age aged of about around roughly approximately nearly almost
    range ranges score scores scored won lost beat years year chapters chapter verses lines items steps""".split()
)
ID_CUES = frozenset(
    """order account acct card ref reference confirmation booking tracking invoice ticket serial policy
    id pin routing transaction passport license licence sku iban""".split()
)
ZIP_CUES = frozenset("zip zipcode postcode postal".split())
US_STATES = frozenset(
    """AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND
    OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR""".split()
)
# Product names after which "3.12" is a version ("Python 3 point 12").  Case
# matters: "Go 1.22" is a version, "go 1.5 miles" is not.
VERSION_CUES = frozenset(
    """Python Java Node Node.js Ruby Rust Go Golang Swift Kotlin Scala Perl PHP Lua Julia Dart Elixir Erlang
    Haskell TypeScript JavaScript ECMAScript Rails Django Flask React Angular Vue Svelte Next.js Electron
    Qt GTK iOS iPadOS macOS watchOS tvOS visionOS Android Ubuntu Debian Fedora RHEL CentOS Windows Linux
    kernel Chrome Firefox Safari Edge GCC Clang LLVM CUDA cuDNN PyTorch TensorFlow NumPy numpy pandas pip
    js npm Yarn Xcode Unity Unreal Blender Postgres PostgreSQL MySQL MariaDB SQLite Redis MongoDB Kubernetes
    Docker Terraform Ansible Gradle Maven OpenSSL OpenSSH TLS SSL HTTP Bluetooth USB Wi-Fi WiFi PCIe DDR
    Firmware firmware Release release Version version Ver ver Build build""".split()
)

_WORD = re.compile(r"[A-Za-z][A-Za-z.-]*[A-Za-z]|[A-Za-z]")


def _words_before(before: str, n: int = _CUE_WORDS) -> list[str]:
    """The last ``n`` words of ``before``, nearest first, lowercased."""
    return [w.lower() for w in _WORD.findall(before[-CONTEXT_CHARS:])[-n:]][::-1]


def _cue(before: str, cues: frozenset[str], against: frozenset[str] = frozenset()) -> bool:
    """Is there a word of ``cues`` among the words before, nearer than any of ``against``?"""
    for w in _words_before(before):
        if w in cues:
            return True
        if w in against:
            return False
    return False


# ------------------------------------------------------------------ reading

def digits(group: str) -> str:
    """"2187" -> "2 1 8 7" (misaki says each lone digit; 0 is "zero")."""
    return " ".join(group)


def split_run(run: str) -> list[str]:
    """An unseparated digit run -> groups of three or four, as people chunk
    it: 7 -> 3+4, 10 -> 3+3+4, 11 starting with 1 -> 1+3+3+4, runs up to
    five digits stay whole, others in near-equal groups of at most four."""
    n = len(run)
    if n <= 5:
        return [run]
    if n == 7:
        return [run[:3], run[3:]]
    if n == 10:
        return [run[:3], run[3:6], run[6:]]
    if n == 11 and run[0] == "1":
        return [run[0], *split_run(run[1:])]
    k = -(-n // 4)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    out, pos = [], 0
    for size in sizes:
        out.append(run[pos:pos + size])
        pos += size
    return out


def say_groups(groups: list[str]) -> str:
    parts: list[str] = []
    for g in groups:
        parts.extend(digits(p) for p in split_run(g))
    return ", ".join(parts)


def _say_phone_groups(groups: list[str], plus: bool = False) -> str:
    """Groups of a phone number; a leading "+" is "plus", 800/900 area codes
    are "eight hundred" / "nine hundred"."""
    said: list[str] = []
    for i, g in enumerate(groups):
        area = i == 0 or (i == 1 and groups[0] == "1")
        if area and g in ("800", "900") and (plus or len(groups) >= 3):
            said.append(g)
        else:
            said.extend(digits(p) for p in split_run(g))
    out = ", ".join(said)
    return "plus " + out if plus else out


# ------------------------------------------------------------------- phones

_END = r"(?![\w-]|[.,]\d)"  # not followed by more of a word or number
_PHONE_FORMAT = re.compile(
    r"(?<![\w+.,/-])(?:(?:\+1[ .-]?|1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r"|\+\d{1,3}(?:[ .-]\(?\d{1,5}\)?|\(\d{1,5}\)){1,5}[ .-]\d{2,8})" + _END
)


def _phone_format(m: re.Match[str], before: str) -> str | None:
    text = m.group()
    groups = re.findall(r"\d+", text)
    if text.startswith("+") and sum(map(len, groups)) < 8:  # "+1 2 3": not a phone number
        return None
    return _say_phone_groups(groups, plus=text.startswith("+"))


# After a phone cue: 3-4 ("555-2187", "555 2187"), a 0-led national number
# ("020 7946 0958", "030 1234567"), three or more groups, or an unseparated run.
_PHONE_CUED = re.compile(
    r"(?<![\w+.,/$€£¥#-])(?:[2-9]\d{2}[ .-]\d{4}|0\d{1,4}[ .-]\d{3,8}(?:[ .-]\d{2,8}){0,3}"
    r"|\d{2,5}(?:[ .-]\d{2,8}){2,4}|\d{7,15})" + _END
)


def _phone_cued(m: re.Match[str], before: str) -> str | None:
    groups = re.findall(r"\d+", m.group())
    if not 7 <= sum(map(len, groups)) <= 15 or not _cue(before, PHONE_CUES, RANGE_CUES):
        return None
    return _say_phone_groups(groups)


# ---------------------------------------------------------------- ZIP codes

_ZIP = re.compile(r"(?<![\w.,$€£¥#/-])(\d{5})(?:-(\d{4}))?" + _END)
_STATE_BEFORE = re.compile(r"\b([A-Z]{2}),?\s+$")


def _zip(m: re.Match[str], before: str) -> str | None:
    five, four = m.groups()
    if four is None:
        state = _STATE_BEFORE.search(before)
        if not (state and state.group(1) in US_STATES) and not _cue(before, ZIP_CUES):
            return None
        return digits(five)
    return f"{digits(five)}, {digits(four)}"


# ---------------------------------------- cards, accounts, other digit groups

_CARD = re.compile(
    r"(?<![\w.,/$€£¥-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}|\d{4}([ -])\d{6}\2\d{5}|\d+(?:-\d+){2,})" + _END
)


def _card(m: re.Match[str], before: str) -> str | None:
    groups = re.findall(r"\d+", m.group())
    if sum(map(len, groups)) < 7:  # "1-2-3" stays
        return None
    return say_groups(groups)


# After an ID cue: two or more groups, or one run of five or more digits
# (four after "PIN"); "Order #12345" -> "Order number 1 2 3 4 5".
_ID_CUED = re.compile(r"(?<![\w.,/$€£¥-])(#\s?)?(\d+(?:[ -]\d+)+|\d{4,})" + _END)


def _id_cued(m: re.Match[str], before: str) -> str | None:
    groups = re.findall(r"\d+", m.group(2))
    total = sum(map(len, groups))
    words = _words_before(before, 3)
    if not words or not any(w in ID_CUES for w in words) or total < (4 if "pin" in words else 5):
        return None
    if len(groups) == 1 and not m.group(1) and words[0] not in ID_CUES and words[0] not in ("number", "no", "is"):
        return None  # "order 3 of 12345 items": the cue must be right there
    return ("number " if m.group(1) else "") + say_groups(groups)


# --------------------------------------------------- IP addresses, versions

_VERSION = re.compile(
    r"(?<![\w.$€£¥])(?:v(\d+(?:\.\d+)*)|V(\d+(?:\.\d+)+)|(\d+(?:\.\d+){2,})((?::\d{1,5}|/\d{1,2})(?!\w))?"
    r"|(\d+\.\d+))(?!\w|\.\d)"
)


def _part(p: str) -> str:
    """A version part: a whole number, or digit by digit with a leading zero."""
    return digits(p) if len(p) > 1 and p[0] == "0" else p


def _version(m: re.Match[str], before: str) -> str | None:
    words = _words_before(before, 2)
    cued = bool(words) and (words[0] in ("version", "ver", "release", "build")
                            or any(w in VERSION_CUES for w in _WORD.findall(before[-CONTEXT_CHARS:])[-1:]))
    prefixed = m.group(1) or m.group(2)
    if prefixed is not None:
        said = " point ".join(map(_part, prefixed.split(".")))
        return said if words and words[0] == "version" else "version " + said
    if m.group(5) is not None:  # two parts: a decimal unless a version cue is right before
        if not cued:
            return None
        major, minor = m.group(5).split(".")
        return f"{major} point {_part(minor)}"
    parts = m.group(3).split(".")
    suffix = m.group(4) or ""
    ip = len(parts) == 4 and all(int(p) <= 255 for p in parts) and not cued
    if suffix and not ip:
        return None  # "1.2.3:80" is no address we know: leave it
    if ip:
        said = " dot ".join(parts)
        if suffix:
            said += (" colon " if suffix[0] == ":" else " slash ") + suffix[1:]
        return said
    return " point ".join(map(_part, parts))


# ------------------------------------------------------------------- ranges

_RANGE = re.compile(r"(?<![\w.,/-])(\d+(?:[.,]\d+)?)(?:\s?[–—]\s?|-)(\d+(?:[.,]\d+)?)(?![\w/-]|[.,]\d)")


def _range(m: re.Match[str], before: str) -> str:
    return f"{m.group(1)} to {m.group(2)}"


# In this order: a phone number's groups must not be taken for a range, a
# ZIP+4 neither, an IP address not for a version.
RULES: list[ContextRule] = [
    (MAC, mac),
    (IPV6, ipv6),
    (_PHONE_FORMAT, _phone_format),
    (_PHONE_CUED, _phone_cued),
    (_ZIP, _zip),
    (POSTCODE, postcode),
    (_CARD, _card),
    (_ID_CUED, _id_cued),
    (_VERSION, _version),
    (_RANGE, _range),
]
