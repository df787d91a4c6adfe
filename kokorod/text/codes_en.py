"""English codes of letters and digits: IPv6 and MAC addresses, UK postcodes.

Read character by character in their groups, as people read them out, with
hyphens between the characters of a group so that misaki keeps each one a
letter or a digit (a lone "A" would be the article). The rules are context
rules (``repl(match, before)``) and run in ``numbers_en.RULES``, in its order.
"""

from __future__ import annotations

import re


# UK postcodes ("SW1A 1AA", "M1 1AE", "EC1A 1BB"): by format.  Letters are
# joined by hyphens ("A-A"), or misaki takes a lone "A" for the article.  The
# inward code's letters are never C I K M O V, and "PS5 5GB" is a size.
POSTCODE = re.compile(r"(?<![\w-])([A-Z]{1,2})(\d[A-Z\d]?)\s(\d)([ABD-HJLNP-UW-Z]{2})(?![\w-])")


def postcode(m: re.Match[str], before: str) -> str | None:
    area, district, sector, unit = m.groups()
    if unit in ("GB", "TB", "PB"):
        return None
    digits_, letter = (district[:-1], district[-1]) if district[-1].isalpha() else (district, "")
    outward = "-".join(area) + " " + digits_ + (" " + letter if letter else "")
    return f"{outward}, {sector} {'-'.join(unit)}"


# IPv6 ("2001:db8::1", "fe80::1"): each group's characters joined by hyphens
# (``hex_group``: a lone "A" would be the article), "colon" between groups,
# "double colon" for "::".  Needs a "::" or eight groups, and a hex letter or
# "::", so "9:30:15" stays a time.
IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*(?:::|[A-Fa-f]))(?:[0-9A-Fa-f]{1,4}|:)(?::{1,2}[0-9A-Fa-f]{1,4})+:{0,2}"
                   r"(?![\w:]|\.\d)")


def hex_group(group: str) -> str:
    """"8a2e" -> "8-A-2-E": hyphens keep each character a letter or a digit.
    A final "A" is glued to the character before ("DB8A" -> "D-B-8A"):
    after a hyphen, with a word next, misaki takes it for the article."""
    chars = list(group.upper())
    if len(chars) >= 2 and chars[-1] == "A":
        chars[-2:] = [chars[-2] + "A"]
    return "-".join(chars)


def ipv6(m: re.Match[str], before: str) -> str | None:
    text = m.group()
    groups = text.split(":")
    if "::" not in text and len(groups) != 8 or text.count("::") > 1 or len(groups) < 3:
        return None
    out: list[str] = []
    for i, g in enumerate(groups):
        if g:
            if out and out[-1] not in ("double colon",):
                out.append("colon")
            out.append(hex_group(g))
        elif i > 0 and groups[i - 1] == "" and (i < 2 or groups[i - 2] != ""):
            pass
        elif "double colon" not in out:
            out.append("double colon")
    return " ".join(out)


# MAC addresses ("00:1A:2B:3C:4D:5E", "00-1A-..."): pairs read like IPv6 groups.
MAC = re.compile(r"(?<![\w:.-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])")


def mac(m: re.Match[str], before: str) -> str:
    sep = " colon " if m.group(1) == ":" else ", "
    return sep.join(hex_group(g) for g in re.split(r"[:-]", m.group()))
