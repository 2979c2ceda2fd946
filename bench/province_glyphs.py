"""The province glyph of real crops against synthetic ones, measured at the model's 128x32 input.

    python bench/province_glyphs.py [--count 300] [--seed 7] [--montage workspace/province-montage.png]
                                    [--upscale area|linear|cubic]

Blue plates only (7-character labels). Each crop is resized to 128x32 like the model input; the white
ink is found by Otsu's threshold on the smallest RGB channel (blue paint has little red, white ink has
all three) in the middle rows, and the column profile of that ink splits the first two glyphs. Per crop
it measures the province glyph's width, height and ink density (ink share of its box), its width and
density relative to the letter after it, the gap to the letter, where the glyph starts, and how sharp
its edges are (mean gradient at the ink boundary over the ink-paint contrast), and whether the glyph's
ink column profile splits in two (split: the gap between 皖's halves shows, i.e. thin strokes). It prints the medians
and quartiles for the real crops of the train half of bench/real_accuracy.py's split (the validation
half is never looked at) and for synthetic blue plates labelled 皖 from the current renderer.
--montage writes the left third of real (top) and synthetic (bottom) crops side by side, 3x. --upscale
says how crops smaller than 128x32 are enlarged first: area averaging (the default, as this script always
did), or linear or cubic, as a model's ``InputSpec.upscale`` does; larger crops are always area-averaged.
Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from real_plates import REAL_PLATES, VAL_FRACTION, skipped_line

from ocr_core.atomic import atomic_path
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.data.image_io import read_rgb, resize_to_input
from ocr_core.data.sources import split_by_hash
from ocr_core.preprocess import UPSCALE_MODES

IN_W, IN_H = 128, 32
ROWS = slice(5, 27)  # middle rows: the glyphs, not the frame or the car body
MEASURES = ("start", "width", "height", "density", "width_ratio", "density_ratio", "gap", "sharpness", "split")


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for x, on in enumerate(flags):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


def glyph_measures(rgb: np.ndarray, upscale: str = "area") -> dict[str, float] | None:
    """Measure the province glyph and the letter after it on a blue plate crop; None when not found.

    ``upscale`` enlarges a crop smaller than the input: "area", or an ``InputSpec.upscale`` mode.
    """
    if upscale == "area":
        small = cv2.resize(rgb, (IN_W, IN_H), interpolation=cv2.INTER_AREA)
    else:
        small = resize_to_input(rgb, IN_H, IN_W, upscale)
    white = small.min(axis=2)
    band = white[ROWS, :64]
    threshold, _ = cv2.threshold(np.ascontiguousarray(band), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = band > threshold
    profile = ink.mean(axis=0)
    raw = [r for r in _runs(profile > 0.12) if r[1] - r[0] >= 2]
    # A one- or two-column gap inside the first 11 px is the gap between 皖's two halves, not the letter.
    split = 0.0
    while len(raw) >= 3 and raw[1][0] - raw[0][1] <= 2 and raw[1][1] - raw[0][0] <= 20:
        raw[0:2] = [(raw[0][0], raw[1][1])]
        split = 1.0
    runs = [r for r in raw if r[1] - r[0] >= 3]
    if len(runs) < 2:
        return None
    (p0, p1), (l0, l1) = runs[0], runs[1]
    prov, letter = ink[:, p0:p1], ink[:, l0:l1]
    prov_rows = np.flatnonzero(prov.any(axis=1))
    letter_rows = np.flatnonzero(letter.any(axis=1))
    if prov_rows.size == 0 or letter_rows.size == 0:
        return None
    prov_box = prov[prov_rows[0] : prov_rows[-1] + 1]
    letter_box = letter[letter_rows[0] : letter_rows[-1] + 1]
    g = band.astype(np.float32)
    contrast = float(g[ink].mean() - g[~ink].mean())
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    edge = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edge[:, p1:] = False
    sharp = float(np.hypot(gx, gy)[edge].mean()) / max(contrast, 1.0) if edge.any() else float("nan")
    return {
        "start": float(p0), "width": float(p1 - p0), "height": float(prov_box.shape[0]),
        "density": float(prov_box.mean()), "width_ratio": (p1 - p0) / (l1 - l0),
        "density_ratio": float(prov_box.mean()) / max(float(letter_box.mean()), 1e-6),
        "gap": float(l0 - p1), "sharpness": sharp, "split": split,
    }


def real_train_crops() -> list[tuple[str, np.ndarray]]:
    """(label, RGB) of the blue real crops in the train half of the split."""
    dataset = load_dataset(REAL_PLATES)
    train_idx, _ = split_by_hash(dataset.samples, VAL_FRACTION)
    out = []
    for i in train_idx:
        sample = dataset.samples[i]
        if len(sample.label) == 7:
            out.append((sample.label, read_rgb(sample.path)))
    return out


def synthetic_crops(count: int, seed: int, province: str = "皖") -> list[tuple[str, np.ndarray]]:
    """(label, RGB) of count synthetic blue plates whose province glyph is province."""
    rng = np.random.default_rng(seed)
    weights = np.array([1.0 if p == province else 0.0 for p in synth.PROVINCES])
    out = []
    for _ in range(count):
        label = synth.random_label("ccpd", rng, weights)
        out.append((label, synth.render_plate(label, "ccpd", rng)))
    return out


def summarize(crops: list[tuple[str, np.ndarray]], upscale: str = "area") -> pd.DataFrame:
    """Quartiles of every measure over the crops where the first two glyphs were found."""
    rows = [m for _, rgb in crops if (m := glyph_measures(rgb, upscale)) is not None]
    frame = pd.DataFrame(rows, columns=list(MEASURES))
    table = frame.quantile([0.25, 0.5, 0.75]).T
    table.columns = ["p25", "p50", "p75"]
    table["mean"] = frame.mean()
    table["found"] = f"{len(rows)}/{len(crops)}"
    return table


def montage(crops: list[tuple[str, np.ndarray]], cols: int = 8, limit: int = 48) -> np.ndarray:
    """The left third of each crop at 128x32, 3x, in a grid (RGB)."""
    tiles = []
    for _, rgb in crops[:limit]:
        small = cv2.resize(rgb, (IN_W, IN_H), interpolation=cv2.INTER_AREA)[:, :44]
        tiles.append(cv2.resize(small, (44 * 3, IN_H * 3), interpolation=cv2.INTER_NEAREST))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    return np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])


def main() -> int:
    """Print the real-against-synthetic table and optionally write the montage."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="synthetic plates to render (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--montage", default=None, help="write a PNG montage of real and synthetic crops")
    parser.add_argument("--upscale", choices=("area", *UPSCALE_MODES), default="area",
                        help="how crops smaller than 128x32 are enlarged before measuring (default area)")
    args = parser.parse_args()
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    real = real_train_crops()
    fake = synthetic_crops(args.count, args.seed)
    real_t, fake_t = summarize(real, args.upscale), summarize(fake, args.upscale)
    table = pd.concat({"real (train half)": real_t, "synthetic 皖": fake_t}, axis=1)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
        print(f"province glyph at {IN_W}x{IN_H} (small crops enlarged: {args.upscale}): real blue crops of the "
              f"train half vs {args.count} synthetic")
        print(table.to_string())
    if args.montage:
        real_wan = [c for c in real if c[0].startswith("皖")]
        image = np.vstack([montage(real_wan), np.full((6, 44 * 3 * 8, 3), 255, np.uint8), montage(fake)])
        path = Path(args.montage)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            print("error: could not encode the montage", file=sys.stderr)
            return 2
        with atomic_path(path) as tmp:
            buf.tofile(tmp)
        print(f"montage: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
