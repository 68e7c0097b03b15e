"""Text as the recognisers read it: full-width forms and the many dashes, dots and spaces
residents type folded to one ASCII form each, character for character.

Every replacement is one character for one character, so an offset in the normalised text
is the same offset in the original: the map back to the original is the identity, and a
finding's span cuts the original text exactly (a full-width "１３９…" is replaced whole).
NFKC itself is not used because it may change a text's length (ligatures, "㎡" → "m2").
"""

from __future__ import annotations

# Full-width ASCII (U+FF01–U+FF5E) is ASCII shifted by 0xFEE0.
_TABLE: dict[int, str] = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}
# Spaces: ideographic, no-break, thin, figure.
_TABLE |= {ord(c): " " for c in "\u3000\u00a0\u2009\u2007\u202f"}
# Dashes people put in numbers: hyphen, non-breaking hyphen, figure/en/em dash, minus, ー.
_TABLE |= {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\ufe63"}
# Middle dots in plates (沪A·12345): Katakana, bullet, dot operator, hyphenation point.
_TABLE |= {ord(c): "·" for c in "\u30fb\u2022\u22c5\u2027\uff65"}
_TABLE[ord("＠")] = "@"  # already in the full-width range; named here for the reader
_TABLE[ord("。")] = "。"  # an ideographic full stop stays (it ends sentences, not numbers)


def normalise(text: str) -> str:
    """`text` with full-width characters and separators folded; the same length as `text`."""
    return text.translate(_TABLE)
