"""The real plate crops that several bench scripts read, and the split they all use.

The crops live read-only in ../shared/data (never copied into the repository); a script that needs them
prints ``skipped_line()`` and exits 0 when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ocr_core.data.sources import SourceListing, list_source, split_by_hash

REAL_PLATES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-plates"
VAL_FRACTION = 0.35  # the fraction the README's fine-tune recipe passes as --val-split (split_by_hash)
# A crop is "warm or dark" when its ink's red minus blue is above WARM_INK grey levels (street lamps or
# tungsten light under a daylight white balance turn the white ink yellow) or its paint's mean grey level
# is under DARK_PAINT. The demo misses the province glyph of such crops far more often (README).
WARM_INK = -20.0
DARK_PAINT = 60.0


def skipped_line() -> str | None:
    """The line a bench script prints before exiting 0 when the real crops are absent, else None."""
    if REAL_PLATES.is_dir():
        return None
    return f"skipped: {REAL_PLATES} is absent (the real crops live in ../shared/data)"


def real_listing() -> tuple[SourceListing, set[str]]:
    """The real crops' listing and the paths of its validation half (``split_by_hash`` at VAL_FRACTION)."""
    listing = list_source(REAL_PLATES)
    _, val_idx = split_by_hash(listing.samples, VAL_FRACTION)
    return listing, {listing.samples[i].path for i in val_idx}


def light_measures(rgb: np.ndarray) -> tuple[float, float]:
    """(the ink's red minus blue, the paint's mean grey level) of a plate crop (RGB uint8), at 94x24.

    In the middle of the crop (rows 4-19, columns 10-83) the brightest 15% of the pixels by their smallest
    channel are the ink (white ink is bright in every channel, blue paint has little red) and the darker
    half the paint. Made for blue plates, whose white ink takes some of the paint's blue at this size: in
    daylight its red minus blue is about -56 (the median of the 297 real crops), so a crisp, perfectly
    neutral ink would count as warm.
    """
    small = cv2.resize(rgb, (94, 24), interpolation=cv2.INTER_AREA)
    middle = small[4:20, 10:84].reshape(-1, 3).astype(np.float32)
    smallest = middle.min(axis=1)
    ink = middle[smallest >= np.percentile(smallest, 85)]
    paint = middle[smallest <= np.median(smallest)]
    return float(ink[:, 0].mean() - ink[:, 2].mean()), float(paint.mean())


def is_warm_or_dark(rgb: np.ndarray) -> bool:
    """Whether a crop is lit warm or dark (WARM_INK, DARK_PAINT)."""
    warmth, paint = light_measures(rgb)
    return warmth > WARM_INK or paint < DARK_PAINT
