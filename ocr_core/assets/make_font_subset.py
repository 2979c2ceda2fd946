"""Rebuild the bundled plate font: a glyph subset of Noto Sans CJK SC Bold plus its OFL licence.

Run ``python -m ocr_core.assets.make_font_subset`` on a machine with Debian's ``fonts-noto-cjk``
installed. The output is byte-reproducible (the head timestamp is kept from the source font).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

from ocr_core.atomic import atomic_path, write_bytes_atomic

DEFAULT_SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
DEFAULT_COPYRIGHT_FILE = Path("/usr/share/doc/fonts-noto-cjk/copyright")
FONTS_DIR = Path(__file__).resolve().parent / "fonts"
DEFAULT_OUTPUT = FONTS_DIR / "NotoSansCJKsc-Bold-plates.otf"
DEFAULT_LICENSE = FONTS_DIR / "LICENSE-OFL.txt"
FACE_POSTSCRIPT_NAME = "NotoSansCJKsc-Bold"
MAX_BYTES = 300 * 1024

# Kept literal (not imported from ocr_core.data.synth) so this script runs without numpy/cv2.
PLATE_PROVINCES = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
PLATE_SPECIAL = "警学"
LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
SEPARATOR = "\u00b7"
PLATE_GLYPHS = PLATE_PROVINCES + PLATE_SPECIAL + LATIN + DIGITS + SEPARATOR


def find_face_index(collection_path: Path, postscript_name: str = FACE_POSTSCRIPT_NAME) -> int:
    """Return the index of the face whose PostScript name matches inside a .ttc collection."""
    collection = TTCollection(str(collection_path), lazy=True)
    try:
        for index, face in enumerate(collection.fonts):
            if face["name"].getDebugName(6) == postscript_name:
                return index
    finally:
        collection.close()
    raise SystemExit(f"{collection_path} has no face named {postscript_name}; install fonts-noto-cjk.")


def subset_font(source: Path, output: Path, text: str = PLATE_GLYPHS) -> int:
    """Subset the SC Bold face of source to the given characters, write it to output, return its size."""
    index = find_face_index(source)
    # recalcTimestamp=False keeps head.modified from the source, so reruns give identical bytes.
    font = TTFont(str(source), fontNumber=index, recalcTimestamp=False)
    options = subset.Options()
    # Keep every name record: the copyright, licence and trademark strings must travel with the font.
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.name_legacy = True
    options.notdef_outline = True
    options.layout_features = []
    options.hinting = False
    options.desubroutinize = True
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=[ord(ch) for ch in text])
    subsetter.subset(font)
    missing = [ch for ch in text if ord(ch) not in font.getBestCmap()]
    if missing:
        raise SystemExit(f"{source} lacks glyphs for {''.join(missing)!r}; use a full Noto Sans CJK font.")
    with atomic_path(output) as tmp:
        font.save(tmp)
        font.close()
    return output.stat().st_size


def extract_ofl_text(copyright_file: Path) -> str:
    """Return the SIL OFL 1.1 text from a Debian copyright file, preceded by the font's copyright line."""
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    # The first "License: SIL-1.1" line belongs to a Files stanza; the text is in the stanza whose
    # "License:" line is followed by indented continuation lines.
    starts = [
        i
        for i, line in enumerate(lines[:-1])
        if line.strip() == "License: SIL-1.1" and lines[i + 1].startswith(" ")
    ]
    if not starts:
        raise SystemExit(f"{copyright_file} has no SIL-1.1 licence text; pass --copyright-file.")
    start = starts[0]
    body: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        # Debian copyright format: continuation lines start with one space, " ." is a blank line.
        body.append("" if line == " ." else line[1:])
    header = [
        "This directory holds a subset of Noto Sans CJK SC Bold (glyphs for Chinese licence plates only),",
        "made by ocr_core/assets/make_font_subset.py from Debian's fonts-noto-cjk package.",
        "",
        "Copyright © 2014-2021 Adobe (http://www.adobe.com/).",
        "Noto is a trademark of Google Inc.",
        "",
        "This Font Software is licensed under the SIL Open Font License, Version 1.1.",
        "This license is copied below, and is also available with a FAQ at: https://openfontlicense.org",
        "",
    ]
    return "\n".join(header + body).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, write the subset font and its licence, and return an exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m ocr_core.assets.make_font_subset",
        description="Subset Noto Sans CJK SC Bold to the glyphs of Chinese licence plates "
        "(31 provinces, 警学, A-Z, 0-9 and the middle dot) and write the OFL licence next to it.",
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="NotoSansCJK-Bold.ttc path")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="subset .otf to write")
    parser.add_argument(
        "--copyright-file", type=Path, default=DEFAULT_COPYRIGHT_FILE, help="Debian copyright file with the OFL"
    )
    parser.add_argument("--license-output", type=Path, default=DEFAULT_LICENSE, help="licence text to write")
    args = parser.parse_args(argv)

    if not args.source.is_file():
        print(f"{args.source} does not exist; install fonts-noto-cjk or pass --source.", file=sys.stderr)
        return 2
    if not args.copyright_file.is_file():
        print(f"{args.copyright_file} does not exist; pass --copyright-file.", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    size = subset_font(args.source, args.output)
    if size > MAX_BYTES:
        print(f"{args.output} is {size} bytes, over the {MAX_BYTES}-byte budget.", file=sys.stderr)
        return 1
    write_bytes_atomic(args.license_output, extract_ofl_text(args.copyright_file).encode("utf-8"))
    print(f"wrote {args.output} ({size / 1024:.1f} KB, {len(PLATE_GLYPHS)} characters) and {args.license_output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
