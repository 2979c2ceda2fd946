"""The in-memory plate dataset: every crop decoded once, resized to the model input, kept as uint8.

Decoding is the slow part of reading plates (JPEG, perspective warps), so it happens once, in threads
(OpenCV releases the GIL), and training epochs and scoring read from the cached array. At 32x128 a crop
is 12 KiB, so 100k samples take about 1.2 GiB.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ocr_core.data.image_io import resize_to_input
from ocr_core.data.sources import Sample, SourceListing, list_source, load_crop
from ocr_core.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = (32, 128)  # (height, width)
# Handing a task to a pool thread and its result back (future, queue, GIL switches) costs about as much as
# decoding a small crop (0.1 ms), so threads take runs of crops: 1.35-1.64x faster than a task per crop on
# synthetic PNG crops, 1.29-3.11x on real JPEG crops (bench/decode_throughput.py).
DECODE_CHUNK = 64
ProgressFn = Callable[[int, int], None]


@dataclass
class PlateDataset:
    """Decoded crops (N, H, W, 3) uint8 with their samples, original sizes and the skipped files."""

    spec: str
    kind: str
    samples: list[Sample]
    images: np.ndarray
    original_sizes: np.ndarray  # (N, 2) height, width of the crop before resizing
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[str]:
        """The ground-truth text of every sample."""
        return [s.label for s in self.samples]

    def subset(self, indices: Sequence[int]) -> PlateDataset:
        """A dataset of the given rows, sharing nothing mutable with this one."""
        idx = np.asarray(indices, dtype=np.int64)
        return PlateDataset(
            self.spec, self.kind, [self.samples[i] for i in idx], self.images[idx], self.original_sizes[idx], []
        )

    def attributes(self) -> pd.DataFrame:
        """Per-sample attributes: path, label, source, height, width, and CCPD fields when present."""
        frame = pd.DataFrame(
            {
                "path": [s.path for s in self.samples],
                "label": self.labels,
                "source": [s.source for s in self.samples],
                "height": self.original_sizes[:, 0].astype(np.int32),
                "width": self.original_sizes[:, 1].astype(np.int32),
            }
        )
        extra_keys = sorted({k for s in self.samples for k in s.attrs})
        for key in extra_keys:
            frame[key] = [s.attrs.get(key) for s in self.samples]
        return frame

    def fingerprint(self) -> str:
        """A short hash of the sample paths and labels, stored in checkpoints and score caches."""
        # Computed once: the dashboard keys its score cache by it on every rerun, and hashing 100,000
        # samples takes about 25 ms. The samples of a dataset are never changed after it is built.
        if self._fingerprint is None:
            digest = hashlib.sha1()
            for s in self.samples:
                digest.update(f"{s.path}\t{s.label}\n".encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def skipped_summary(skipped: Sequence[tuple[str, str]], limit: int = 5) -> str:
    """One line that counts the skipped files and names the first few with their reason."""
    shown = "; ".join(f"{Path(p).name} ({why})" for p, why in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"skipped {len(skipped)} file(s): {shown}{more}"


def decode_listing(
    listing: SourceListing,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    strict: bool = False,
    progress: ProgressFn | None = None,
    threads: int | None = None,
    chunk_size: int = DECODE_CHUNK,
    part: bool = False,
    upscale: str = "linear",
) -> PlateDataset:
    """Decode and resize every sample of a listing; undecodable files are skipped and listed.

    Crops smaller than ``input_size`` are enlarged with ``upscale`` (the model's ``InputSpec.upscale``).
    ``threads`` defaults to one per core (at most 8). Each thread task decodes ``chunk_size`` consecutive
    samples; progress is reported per finished chunk. With ``part`` the listing is one piece of a larger
    one (streamed scoring): nothing decodable is no error, and the caller reports the skipped files.

    Raises:
        InputError: a file cannot be decoded and ``strict`` is set, or nothing decodable is left.
    """
    height, width = input_size
    n = len(listing.samples)
    images = np.zeros((n, height, width, 3), dtype=np.uint8)
    sizes = np.zeros((n, 2), dtype=np.int32)
    failures: dict[int, InputError] = {}

    def decode(rows: range) -> int:
        for i in rows:
            try:
                crop = load_crop(listing.samples[i])
            except InputError as exc:
                failures[i] = exc
                continue
            sizes[i] = crop.shape[:2]
            images[i] = resize_to_input(crop, height, width, upscale)
        return len(rows)

    step = max(1, chunk_size)
    done = 0
    # More threads than cores decode small crops slower, not faster: 4 threads on 2 cores lose 3% (PNG)
    # to 31% (JPEG) against 2 (bench/decode_throughput.py).
    workers = max(1, threads or min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for count in pool.map(decode, [range(start, min(start + step, n)) for start in range(0, n, step)]):
            done += count
            if progress is not None:
                progress(done, n)

    if strict and failures:
        raise InputError(f"{failures[min(failures)]} (--strict makes unreadable dataset files fatal)")
    keep = [i for i in range(n) if i not in failures]
    skipped = list(listing.skipped) + [
        (listing.samples[i].path, failures[i].reason or "not a decodable image") for i in sorted(failures)
    ]
    if not keep and not part:
        raise InputError(f"dataset {listing.spec} has no decodable image; {skipped_summary(skipped)}")
    if skipped and not part:
        log.warning("%s: %s", listing.spec, skipped_summary(skipped))
    if len(keep) < n:
        idx = np.asarray(keep)
        images, sizes = images[idx], sizes[idx]
    return PlateDataset(listing.spec, listing.kind, [listing.samples[i] for i in keep], images, sizes, skipped)


def load_dataset(
    spec: str | Path,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    strict: bool = False,
    progress: ProgressFn | None = None,
    upscale: str = "linear",
) -> PlateDataset:
    """List a source spec and decode it into a :class:`PlateDataset` (``upscale``: see ``decode_listing``)."""
    return decode_listing(list_source(spec), input_size=input_size, strict=strict, progress=progress,
                          upscale=upscale)
