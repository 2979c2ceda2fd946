"""Rebuild the bundled captcha font: Noto Sans CJK SC Bold cut down to the 19 captcha characters.

It also keeps U+0261 (LATIN SMALL LETTER SCRIPT G), the face's single-storey g: the real captchas draw
``g`` single-storey, Noto's ``g`` is double-storey, so the renderer draws a label's ``g`` with U+0261.

Run ``python -m ocr_core.assets.make_captcha_font`` on a machine with Debian's ``fonts-noto-cjk``.
The subset (about 5 KB) is made the same way as the plate subset (``make_font_subset``), from the same
face, under the same licence (SIL OFL 1.1, ``fonts/LICENSE-OFL.txt``; Noto has no reserved font name).
"""

from __future__ import annotations

import sys

from ocr_core.assets.make_font_subset import DEFAULT_SOURCE, FONTS_DIR, subset_font

CAPTCHA_GLYPHS = "2345678bcdefgmnpwxy"  # kept literal: ocr_core.data.captcha.CAPTCHA_ALPHABET
EXTRA_GLYPHS = "\u0261"  # single-storey g (ocr_core.data.captcha draws the label's g with it)
OUTPUT = FONTS_DIR / "NotoSansCJKsc-Bold-captcha.otf"


def main() -> int:
    """Write the subset next to the plate font and print its size."""
    if not DEFAULT_SOURCE.is_file():
        print(f"{DEFAULT_SOURCE} does not exist; install fonts-noto-cjk.", file=sys.stderr)
        return 2
    size = subset_font(DEFAULT_SOURCE, OUTPUT, text=CAPTCHA_GLYPHS + EXTRA_GLYPHS)
    print(f"wrote {OUTPUT} ({size / 1024:.1f} KB, {len(CAPTCHA_GLYPHS) + len(EXTRA_GLYPHS)} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
