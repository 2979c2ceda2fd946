"""Text formats (plate masks) that a reading must follow, as regular expressions.

Seed 002 filtered its Russian data by the mask ``LDDDLLDD(D)``; PlateLens uses such masks twice: to count
how many readings of a model are impossible plates, and to constrain decoding to possible ones (the heads'
``decode_constrained``). A format is a regular expression over the whole reading; the ``regex`` package
matches prefixes partially, which is what a beam search needs to drop a prefix that can no longer
become a plate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex

# CCPD's province glyphs (its README lists them; 警 and 学 are suffixes of special plates, not provinces).
CN_PROVINCES = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
_CN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
# Russian plates use the 12 Cyrillic letters that look Latin; datasets write them with Latin letters.
_RU_LETTERS = "ABEKMHOPCTYX"

FORMATS: dict[str, str] = {
    "cn-blue": f"[{CN_PROVINCES}][{_CN_LETTERS}][{_CN_LETTERS}0-9]{{5}}",
    "cn-green": f"[{CN_PROVINCES}][{_CN_LETTERS}][{_CN_LETTERS}0-9]{{6}}",
    "cn": f"[{CN_PROVINCES}][{_CN_LETTERS}][{_CN_LETTERS}0-9]{{5,6}}",
    "ru": f"[{_RU_LETTERS}][0-9]{{3}}[{_RU_LETTERS}]{{2}}[0-9]{{2,3}}",
}
# Share of labels that must follow a format for ``detect_format`` to name it.
DETECT_SHARE = 0.95


@lru_cache(maxsize=64)
def compile_format(pattern: str) -> regex.Pattern:
    """The compiled expression of a format name (``FORMATS``) or a regular expression.

    Raises:
        ValueError: the expression does not compile.
    """
    try:
        return regex.compile(FORMATS.get(pattern, pattern))
    except regex.error as exc:
        raise ValueError(f"text format {pattern!r} is not a valid regular expression ({exc})") from None


def is_viable_prefix(pattern: regex.Pattern, prefix: str) -> bool:
    """Whether ``prefix`` can still be completed to a text that follows the format."""
    return pattern.fullmatch(prefix, partial=True) is not None


def follows(pattern: regex.Pattern, text: str) -> bool:
    """Whether ``text`` follows the format as a whole."""
    match = pattern.fullmatch(text)
    return match is not None and not match.partial


def detect_format(labels: Sequence[str]) -> str | None:
    """The narrowest known format that at least ``DETECT_SHARE`` of ``labels`` follow, else None."""
    labels = [t for t in labels if t]
    if not labels:
        return None
    for name in ("cn-blue", "cn-green", "cn", "ru"):
        pattern = compile_format(name)
        if sum(follows(pattern, t) for t in labels) >= DETECT_SHARE * len(labels):
            return name
    return None


def resolve_format(choice: str, stored: str | None, labels: Sequence[str] = ()) -> str | None:
    """The format to decode with: ``none``; ``auto`` (the checkpoint's ``stored`` one, else one the labels
    follow); or a format name or regular expression.

    Raises:
        ValueError: a regular expression that does not compile.
    """
    if choice == "none":
        return None
    if choice == "auto":
        return stored or detect_format(labels)
    compile_format(choice)
    return choice


def violations(texts: Sequence[str], pattern: str) -> list[bool]:
    """For every text, whether it breaks the format."""
    compiled = compile_format(pattern)
    return [not follows(compiled, t) for t in texts]


@dataclass(frozen=True)
class FormatReport:
    """How many readings break the format that a dataset's labels follow."""

    name: str
    n: int
    violations: int


def format_report(labels: Sequence[str], preds: Sequence[str]) -> FormatReport | None:
    """The known format the labels follow (``detect_format``) and the readings that break it; None if none."""
    name = detect_format(labels)
    if name is None:
        return None
    return FormatReport(name, len(preds), int(sum(violations(preds, name))))
