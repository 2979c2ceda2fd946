"""How stable a checkpoint's readings are under small changes of the crop: real crops against synthetic ones.

    python bench/province_stability.py [--checkpoint ocr_core/assets/demo.pt] [--count 400] [--seed 1234]

Reads the real crops of the train half of bench/real_accuracy.py's split (the validation half is never
looked at) and --count synthetic ccpd plates from the current renderer, each as it is and under each
perturbation: the crop box moved 2 or 4 px of a 94-px-wide crop to the left or right (the edge column
repeated where the box leaves the image), a Gaussian blur, and a zoom-out by 5% of the crop's size on every
side. Per set and perturbation it prints exact-plate and province-glyph accuracy, and how many province
readings changed: `fixed` (wrong as it is, right perturbed) and `broke` (the reverse).

A reading that flips under a 2-px shift sits near a decision boundary. On crops like its training data a
model reads almost every crop the same way shifted; on crops unlike them it does not, so the share that
flips measures how far the real crops are from what the model was trained on, crop by crop, without
labels beyond the province. Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pandas as pd
from real_plates import REAL_PLATES, VAL_FRACTION, skipped_line

from ocr_core.checkpoint import load_model
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.data.image_io import read_rgb
from ocr_core.data.sources import split_by_hash
from ocr_core.device import pick_device
from ocr_core.errors import InputError
from ocr_core.score import predict_images
from ocr_core.workspace import DEMO_CHECKPOINT

REFERENCE_WIDTH = 94  # shifts are given in pixels of a 94-px-wide crop (the CCPD crops' width)

Perturbation = Callable[[np.ndarray], np.ndarray]


def shift_box(rgb: np.ndarray, pixels: int) -> np.ndarray:
    """Move the crop box ``pixels`` (of a 94-px-wide crop) left (negative) or right; same size out."""
    w = rgb.shape[1]
    k = round(abs(pixels) * w / REFERENCE_WIDTH)
    if k == 0:
        return rgb
    padded = cv2.copyMakeBorder(rgb, 0, 0, k, k, cv2.BORDER_REPLICATE)
    # Box moved left: the image content moves right in the crop, and the other way round.
    start = 0 if pixels < 0 else 2 * k
    return padded[:, start : start + w]


def zoom_out(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """A looser box: ``fraction`` of the crop's size added on every side (edge pixels repeated)."""
    h, w = rgb.shape[:2]
    dy, dx = round(h * fraction), round(w * fraction)
    return cv2.copyMakeBorder(rgb, dy, dy, dx, dx, cv2.BORDER_REPLICATE)


PERTURBATIONS: dict[str, Perturbation] = {
    "as it is": lambda rgb: rgb,
    "box 2 px left": lambda rgb: shift_box(rgb, -2),
    "box 2 px right": lambda rgb: shift_box(rgb, 2),
    "box 4 px left": lambda rgb: shift_box(rgb, -4),
    "box 4 px right": lambda rgb: shift_box(rgb, 4),
    "blur sigma 0.5": lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 0.5),
    "blur sigma 0.8": lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 0.8),
    "zoom out 5%": lambda rgb: zoom_out(rgb, 0.05),
}


def stability_rows(name: str, labels: Sequence[str], crops: Sequence[np.ndarray],
                   read: Callable[[list[np.ndarray]], list[str]]) -> list[dict[str, object]]:
    """One row per perturbation: accuracies and the province readings it fixed and broke."""
    rows: list[dict[str, object]] = []
    base: np.ndarray | None = None
    for perturbation, change in PERTURBATIONS.items():
        preds = read([change(rgb) for rgb in crops])
        province = np.array([p[:1] == t[:1] for p, t in zip(preds, labels)])
        exact = np.array([p == t for p, t in zip(preds, labels)])
        if base is None:
            base = province
        rows.append({
            "set": name, "perturbation": perturbation, "n": len(labels), "exact": float(exact.mean()),
            "province": float(province.mean()), "fixed": int((province & ~base).sum()),
            "broke": int((~province & base).sum()),
        })
    return rows


def real_train_half() -> tuple[list[str], list[np.ndarray]]:
    """Labels and RGB crops of the train half of the real crops."""
    dataset = load_dataset(REAL_PLATES)
    train_idx, _ = split_by_hash(dataset.samples, VAL_FRACTION)
    samples = [dataset.samples[i] for i in train_idx]
    return [s.label for s in samples], [read_rgb(s.path) for s in samples]


def synthetic_plates(count: int, seed: int) -> tuple[list[str], list[np.ndarray]]:
    """count blue ccpd plates from the current renderer, uniform provinces."""
    rng = np.random.default_rng(seed)
    labels = [synth.random_label("ccpd", rng) for _ in range(count)]
    return labels, [synth.render_plate(label, "ccpd", rng) for label in labels]


def main() -> int:
    """Print the stability table for one checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT), help="default: the shipped demo")
    parser.add_argument("--count", type=int, default=400, help="synthetic plates to render (default 400)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (default cpu)")
    args = parser.parse_args()
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        loaded = load_model(args.checkpoint)
        device = pick_device(args.device)
        loaded.model.to(device)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = (loaded.input.width, loaded.input.height)

    def read(crops: list[np.ndarray]) -> list[str]:
        batch = np.stack([cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) for rgb in crops])
        return predict_images(loaded, batch, device)[0]

    rows = stability_rows("real, train half", *real_train_half(), read)
    rows += stability_rows(f"synthetic (seed {args.seed})", *synthetic_plates(args.count, args.seed), read)
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(f"{args.checkpoint}: readings under small changes of the crop")
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
