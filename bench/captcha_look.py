"""Synthetic captchas against the real ones, measured at the model's input size (grey 32x128).

    python bench/captcha_look.py [--count 500] [--seed 99] [--real ../shared/data/captcha] [--grid out.png]

Only the real TRAIN split is measured (``ocr_core.data.captcha.captcha_split``); the held-out test
split is never looked at, so nothing in the renderer is tuned on it. Each image is resized to 128x32
and converted to grey as the captcha demo's input (``to_model_input``'s luma). Per image:

- ink: share of pixels darker than 100 (glyphs and strike line);
- fringe: share of mid-grey pixels (100-180), the hairy halo around the glyphs; fringe first and fringe
  last: the same over columns 15-25% of the width (the first glyph) and 45-65% (the fourth and fifth);
- text rows: rows of the text band (columns 15-60% of the width) where over 10% of the pixels are ink;
- stroke: median length of horizontal ink runs inside that band (pixels at 128 wide);
- line: ink pixels per column right of the text (columns 78-86% of the width, where only the strike
  line is), a proxy for the line's thickness; 0 where the line ends earlier;
- bg left / bg right: median grey of the non-ink pixels of the first and last 10% of columns;
- noise: standard deviation of (image - 3x3 median) over the background pixels of the last 10% of columns;
- doubled: share of labels with two equal adjacent characters.

Prints one table of means (with the 10th-90th percentile range). ``--grid`` saves real and synthetic
crops side by side. Exits 0 with a note when the real folder is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ocr_core.data import synth
from ocr_core.data.captcha import captcha_split
from ocr_core.data.image_io import read_rgb
from ocr_core.data.sources import list_source

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha"
SIZE = (128, 32)  # model input (width, height) of the captcha demo (arch small)
_LUMA = np.float32([0.299, 0.587, 0.114])


def model_view(rgb: np.ndarray) -> np.ndarray:
    """A crop as the model sees it: stretched to 128x32, grey (float32 0-255)."""
    small = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    return np.rint(small @ _LUMA)


def measure(grey: np.ndarray) -> dict[str, float]:
    """The measures of one 32x128 grey crop (see the module doc)."""
    h, w = grey.shape
    ink = grey < 100
    band = ink[:, int(0.15 * w): int(0.60 * w)]
    runs = []
    for row in band:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        runs += list(edges[1::2] - edges[0::2])
    right = ink[:, int(0.78 * w): int(0.86 * w)]
    bg = ~ink & (grey > 180)
    left_cols, right_cols = slice(0, int(0.1 * w)), slice(int(0.9 * w), w)
    resid = grey - cv2.medianBlur(grey.astype(np.uint8), 3).astype(np.float32)
    right_bg = bg[:, right_cols]
    return {
        "ink": float(ink.mean()),
        "fringe": float(((grey >= 100) & (grey < 180)).mean()),
        "fringe first": float(((grey >= 100) & (grey < 180))[:, int(0.15 * w): int(0.25 * w)].mean()),
        "fringe last": float(((grey >= 100) & (grey < 180))[:, int(0.45 * w): int(0.65 * w)].mean()),
        "text rows": float((band.mean(axis=1) > 0.10).sum()),
        "stroke": float(np.median(runs)) if runs else 0.0,
        "line": float(right.sum(axis=0).mean()),
        "bg left": float(np.median(grey[:, left_cols][bg[:, left_cols]])) if bg[:, left_cols].any() else float("nan"),
        "bg right": float(np.median(grey[:, right_cols][right_bg])) if right_bg.any() else float("nan"),
        "noise": float(resid[:, right_cols][right_bg].std()) if right_bg.sum() > 10 else float("nan"),
    }


def doubled(label: str) -> bool:
    return any(a == b for a, b in zip(label, label[1:]))


def table(rows: dict[str, tuple[list[np.ndarray], list[str]]]) -> str:
    """Markdown table: one row per measure, one column per set (mean, p10-p90)."""
    stats = {name: [measure(g) for g in greys] for name, (greys, _) in rows.items()}
    keys = list(next(iter(stats.values()))[0])
    lines = ["| measure | " + " | ".join(f"{n} (n={len(rows[n][0])})" for n in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for key in keys:
        cells = []
        for name in rows:
            values = np.array([s[key] for s in stats[name]], np.float64)
            values = values[np.isfinite(values)]
            p10, p90 = np.percentile(values, [10, 90])
            digits = 3 if key.startswith(("ink", "fringe")) else 1
            cells.append(f"{values.mean():.{digits}f} ({p10:.{digits}f}-{p90:.{digits}f})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("| doubled | " + " | ".join(f"{np.mean([doubled(l) for l in labels]):.3f}"
                                           for _, labels in rows.values()) + " |")
    return "\n".join(lines)


def main() -> int:
    """Print the comparison table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="synthetic captchas to generate (default 500)")
    parser.add_argument("--seed", type=int, default=99, help="synthetic seed (default 99)")
    parser.add_argument("--real", type=Path, default=REAL, help="the real captcha folder")
    parser.add_argument("--grid", type=Path, default=None, help="save 8 real and 8 synthetic crops (PNG)")
    args = parser.parse_args()
    if not args.real.is_dir():
        print(f"skipped: {args.real} is absent (the real captchas are needed for the comparison)")
        return 0
    train, _test = captcha_split(args.real)  # the test split is never read here
    real = ([model_view(read_rgb(p)) for p in train], [p.stem for p in train])
    with tempfile.TemporaryDirectory() as tmp:
        synth.generate(Path(tmp), args.count, args.seed, styles=("captcha",))
        samples = list_source(Path(tmp)).samples
        fake = ([model_view(read_rgb(s.path)) for s in samples], [s.label for s in samples])
    print(f"Captcha look at the model input (grey {SIZE[0]}x{SIZE[1]}): mean (p10-p90)\n")
    print(table({"real train split": real, f"synthetic (seed {args.seed})": fake}))
    if args.grid is not None:
        pairs = [np.concatenate([real[0][i * 7], fake[0][i]], axis=1) for i in range(8)]
        grid = np.concatenate(pairs, axis=0).astype(np.uint8)
        cv2.imwrite(str(args.grid), cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))
        print(f"\nwrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
