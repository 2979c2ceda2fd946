"""Ways of enlarging the 94x24 real crops to the model input, read by one checkpoint without retraining.

    python bench/upscale_choices.py [--checkpoint ocr_core/assets/demo.pt] [--half train|val]

Reads the real crops of one half of bench/real_accuracy.py's split (default: the train half, the one to
choose on; --half val reads the validation half, to confirm a choice once) enlarged each way: OpenCV's
linear (what training uses), area, cubic and Lanczos interpolation, and linear followed by an unsharp
mask, a Gaussian blur, CLAHE on the lightness or a 1-99% contrast stretch. Prints exact-plate and
province-glyph accuracy per way. This is how the demo's ``upscale: cubic`` was chosen (README "Real
plates: the province glyph"). Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import cv2
import numpy as np
import pandas as pd
import torch
from real_plates import REAL_PLATES, VAL_FRACTION, skipped_line

from ocr_core.checkpoint import load_model
from ocr_core.data.image_io import read_rgb
from ocr_core.data.sources import list_source, split_by_hash
from ocr_core.errors import InputError
from ocr_core.score import predict_images
from ocr_core.workspace import DEMO_CHECKPOINT

Enlarge = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def _resized(interpolation: int) -> Enlarge:
    return lambda rgb, size: cv2.resize(rgb, size, interpolation=interpolation)


def _then(first: Enlarge, after: Callable[[np.ndarray], np.ndarray]) -> Enlarge:
    return lambda rgb, size: after(first(rgb, size))


def unsharp(rgb: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """``rgb`` with ``amount`` of its difference from a Gaussian blur added back."""
    return cv2.addWeighted(rgb, 1 + amount, cv2.GaussianBlur(rgb, (0, 0), sigma), -amount, 0)


def clahe(rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited histogram equalisation of the lightness channel."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(2.0, (4, 4)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def stretch(rgb: np.ndarray) -> np.ndarray:
    """Levels stretched so that the 1st and 99th percentiles become 0 and 255."""
    lo, hi = np.percentile(rgb, [1, 99])
    return np.clip((rgb.astype(np.float32) - lo) * 255 / max(hi - lo, 1), 0, 255).astype(np.uint8)


LINEAR = _resized(cv2.INTER_LINEAR)
CHOICES: dict[str, Enlarge] = {
    "linear (as trained)": LINEAR,
    "area": _resized(cv2.INTER_AREA),
    "cubic": _resized(cv2.INTER_CUBIC),
    "Lanczos": _resized(cv2.INTER_LANCZOS4),
    "linear, unsharp 0.5": _then(LINEAR, lambda rgb: unsharp(rgb, 0.5)),
    "linear, unsharp 1.0": _then(LINEAR, lambda rgb: unsharp(rgb, 1.0)),
    "linear, blur sigma 0.5": _then(LINEAR, lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 0.5)),
    "linear, CLAHE": _then(LINEAR, clahe),
    "linear, contrast stretch": _then(LINEAR, stretch),
}


def main() -> int:
    """Print exact-plate and province accuracy of the checkpoint for every way of enlarging."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT), help="default: the shipped demo")
    parser.add_argument("--half", choices=("train", "val"), default="train")
    args = parser.parse_args()
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    try:
        loaded = load_model(args.checkpoint)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    samples = list_source(REAL_PLATES).samples
    train_idx, val_idx = split_by_hash(samples, VAL_FRACTION)
    chosen = [samples[i] for i in (train_idx if args.half == "train" else val_idx)]
    labels, crops = [s.label for s in chosen], [read_rgb(s.path) for s in chosen]
    size = (loaded.input.width, loaded.input.height)
    rows = []
    for name, enlarge in CHOICES.items():
        batch = np.stack([enlarge(rgb, size) for rgb in crops])
        preds = predict_images(loaded, batch, torch.device("cpu"))[0]
        rows.append({"enlarging": name, "n": len(labels),
                     "exact": float(np.mean([p == t for p, t in zip(preds, labels)])),
                     "province": float(np.mean([p[:1] == t[:1] for p, t in zip(preds, labels)]))})
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(f"{args.checkpoint} on the {args.half} half of the real crops")
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
