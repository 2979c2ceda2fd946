"""How far PlateLens' decoding and resizing is from each seed notebook's own, on the real crops.

    python bench/seed_preprocess_gap.py [--data ../shared/data] [--count 200]

The imported seed models match their notebooks exactly on crops already at the model's input size
(tests/test_seed_archs.py). Crops of another size are resized: PlateLens with OpenCV (INTER_AREA when
shrinking, INTER_LINEAR when growing, ``ocr_core.data.image_io.resize_to_input``), the notebooks each
their own way. This prints the per-pixel difference of the model input, in 0-255 grey/colour levels,
between the two paths: seed 001 (Pillow bilinear via torchvision's Resize), 002 (cv2 linear), 003
(albumentations' cv2 linear + ImageNet normalization) on ``real-plates`` and 004 (Pillow's default
bicubic, then ``convert('L')``) on ``captcha``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from PIL import Image

from ocr_core.data.image_io import read_rgb, resize_to_input
from ocr_core.models import arch_spec
from ocr_core.preprocess import to_model_input


def platelens_input(path: Path, arch: str) -> np.ndarray:
    """The model input (C, H, W) PlateLens makes of a file for ``arch``."""
    spec = arch_spec(arch).input
    crop = resize_to_input(read_rgb(path), spec.height, spec.width)
    return to_model_input(crop[None], spec)[0].numpy()


def _seed001(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB").resize((128, 32), Image.BILINEAR)
    return np.asarray(image, np.float32).transpose(2, 0, 1) / 255


def _seed002(path: Path) -> np.ndarray:
    # The notebook left Resize to the reader ("mind the interpolation"); cv2's default, linear, here.
    # It read BGR; the import reverses the first conv instead, so RGB is compared with RGB.
    image = np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255
    return cv2.resize(image, (320, 64), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)


_SEED003 = A.Compose([A.Resize(64, 224), A.Normalize()])


def _seed003(path: Path) -> np.ndarray:
    return _SEED003(image=np.asarray(Image.open(path).convert("RGB")))["image"].transpose(2, 0, 1)


def _seed004(width: int) -> Callable[[Path], np.ndarray]:
    return lambda path: np.asarray(Image.open(path).resize((width, 32)).convert("L"), np.float32)[None]


# arch, folder, the notebook's input, levels per unit of the model input (to report 0-255 levels)
CASES: list[tuple[str, str, Callable[[Path], np.ndarray], float]] = [
    ("resnet_bilstm", "real-plates", _seed001, 255.0),
    ("resnet18_gru", "real-plates", _seed002, 255.0),
    ("cnn_fixed", "real-plates", _seed003, 255.0 * 0.226),  # ImageNet std ~0.226 back to levels
    ("crnn_shi", "captcha", _seed004(100), 1.0),
    ("crnn_compact", "captcha", _seed004(176), 1.0),
    ("crnn_fixed", "captcha", _seed004(128), 1.0),
]


def main() -> None:
    """Print one row per seed arch: mean, 99th percentile and largest difference in levels."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--count", type=int, default=200, help="files per folder (default 200)")
    args = parser.parse_args()
    print(f"{'arch':<15} {'data':<12} {'files':>5} {'mean':>6} {'p99':>5} {'max':>5}  (levels of 255)")
    for arch, folder, notebook, levels in CASES:
        files = sorted(p for p in (args.data / folder).iterdir() if p.suffix.lower() in (".png", ".jpg"))
        files = files[: args.count]
        if not files:
            print(f"{arch:<15} {folder:<12} no files")
            continue
        gaps = np.stack([np.abs(platelens_input(p, arch) - notebook(p)) * levels for p in files])
        print(f"{arch:<15} {folder:<12} {len(files):>5} {gaps.mean():>6.2f} {np.percentile(gaps, 99):>5.0f} "
              f"{gaps.max():>5.0f}")


if __name__ == "__main__":
    main()
