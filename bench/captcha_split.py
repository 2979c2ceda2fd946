"""Write the fixed held-out split of the real captchas as two manifests and print its size.

    python bench/captcha_split.py [--real ../shared/data/captcha]

Writes ``workspace/datasets/captcha-real-split/train.csv`` and ``test.csv`` (columns ``file,text``,
absolute paths; the images are not copied). The split is ``ocr_core.data.captcha.captcha_split``: a file
is in the test split when the first 8 bytes of sha1("captcha-test:" + file name), read as a fraction of
2**64, are below 0.3 (341 train and 146 test of the 487). Nothing trains on test.csv; the captcha demo
never reads a real captcha at all. Exits 0 with a note when the real folder is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ocr_core.data.sources import list_source
from ocr_core.workspace import ensure_captcha_split

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha"


def main() -> int:
    """Write the manifests; print their paths, sizes and doubled-character counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=REAL, help="the real captcha folder")
    args = parser.parse_args()
    if not args.real.is_dir():
        print(f"skipped: {args.real} is absent")
        return 0
    for manifest in ensure_captcha_split(args.real):
        labels = [s.label for s in list_source(manifest).samples]
        doubled = sum(any(a == b for a, b in zip(t, t[1:])) for t in labels)
        print(f"{manifest}: {len(labels)} captchas, {doubled} with a doubled character")
    return 0


if __name__ == "__main__":
    sys.exit(main())
