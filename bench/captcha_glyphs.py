"""Real against synthetic glyphs: the first character of each captcha, cropped at the model input.

    python bench/captcha_glyphs.py [--chars gnmw] [--per-char 10] [--seed 99] [--out glyphs.png]

The real captchas draw their first character at a fixed place (its left ink edge at about x = 29 of
200, the same in every file: the per-position mean image is sharp at position 0), so a fixed window
crops it; the synthetic window starts 4 px left of the glyph's own left edge
(``render_captcha_with_boxes``). Only the real TRAIN split is read (``captcha_split``); the test split
is never looked at.

For each character, prints how many real train captchas start with it and, for real and synthetic
alike, the top and bottom rows (at 128x32, the model input) where the mean crop's darkness is over half
its maximum, and the mean ink share (pixels < 100) of the crop. (Widths are not measured: the next
glyph overlaps the window in the real set.) ``--out`` saves a montage: per character a row of real crops, then a row of
synthetic ones, then the two mean crops, 4x enlarged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from ocr_core.data.captcha import (
    CAPTCHA_ALPHABET,
    captcha_split,
    random_captcha_label,
    render_captcha_with_boxes,
)
from ocr_core.data.image_io import read_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from captcha_look import REAL, SIZE, model_view

SCALE = SIZE[0] / 200  # 200-wide captcha to the 128-wide model input
REAL_LEFT = 25.0  # real first-glyph window start (200-px image), 4 px left of its ink edge
WINDOW = 36.0  # crop width (200-px image)


def crop(grey: np.ndarray, left200: float) -> np.ndarray:
    """The model-input columns of [left200, left200 + WINDOW) of the 200-px image."""
    a = round(left200 * SCALE)
    return grey[:, a: a + round(WINDOW * SCALE)]


def ink_box(mean: np.ndarray) -> tuple[int, int, float]:
    """(top, bottom, ink share) of a mean crop (float grey)."""
    dark = 255.0 - mean
    dark -= np.percentile(dark, 5)
    strong = dark > 0.5 * dark.max()
    rows = np.flatnonzero(strong.any(axis=1))
    return int(rows.min()), int(rows.max()), float((mean < 100).mean())


def synthetic_crops(char: str, count: int, seed: int) -> list[np.ndarray]:
    """count synthetic captchas whose label starts with char, first glyph cropped."""
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, ord(char), i])
        label = char + random_captcha_label(rng)[1:]
        rgb, boxes = render_captcha_with_boxes(label, rng)
        out.append(crop(model_view(rgb), boxes[0][0] - 4))
    return out


def main() -> int:
    """Print the per-character table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", default=CAPTCHA_ALPHABET, help="characters to compare (default: all 19)")
    parser.add_argument("--per-char", type=int, default=10, help="crops per character in the montage")
    parser.add_argument("--synthetic", type=int, default=40, help="synthetic captchas per character (default 40)")
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--out", type=Path, default=None, help="save the montage (PNG)")
    args = parser.parse_args()
    if not args.real.is_dir():
        print(f"skipped: {args.real} is absent (the real captchas are needed for the comparison)")
        return 0
    train, _test = captcha_split(args.real)  # the test split is never read here
    print("| char | real n | real rows (top-bottom) | synthetic rows | real ink | synthetic ink |")
    print("|---|---|---|---|---|---|")
    bands = []
    for char in args.chars:
        real = [crop(model_view(read_rgb(p)), REAL_LEFT) for p in train if p.stem[0] == char]
        fake = synthetic_crops(char, args.synthetic, args.seed)
        if not real:
            continue
        rm, fm = np.mean(real, axis=0), np.mean(fake, axis=0)
        rb, fb = ink_box(rm), ink_box(fm)
        print(f"| {char} | {len(real)} | {rb[0]}-{rb[1]} | {fb[0]}-{fb[1]} | {rb[2]:.3f} | {fb[2]:.3f} |")
        k = args.per_char
        pad = [np.full_like(rm, 255)] * k
        bands.append(np.concatenate((real[:k] + pad)[:k] + [rm], axis=1))
        bands.append(np.concatenate(fake[:k] + [fm], axis=1))
        bands.append(np.full((4, bands[-1].shape[1]), 128, np.float32))
    if args.out is not None and bands:
        grid = np.concatenate(bands, axis=0).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(args.out), cv2.resize(grid, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
