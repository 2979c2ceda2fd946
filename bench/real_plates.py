"""The real plate crops that several bench scripts read, and the split they all use.

The crops live read-only in ../shared/data (never copied into the repository); a script that needs them
prints ``skipped_line()`` and exits 0 when they are absent.
"""

from __future__ import annotations

from pathlib import Path

from ocr_core.data.sources import SourceListing, list_source, split_by_hash

REAL_PLATES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-plates"
VAL_FRACTION = 0.35  # the fraction the README's fine-tune recipe passes as --val-split (split_by_hash)


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
