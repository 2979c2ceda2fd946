"""Exact and near-duplicate crops, within a dataset and between a training and a test set (leakage).

Exact duplicates share their file bytes (SHA-1). Near duplicates have difference hashes (dHash: a 9x8 grey
thumbnail, one bit per horizontal neighbour pair) within ``max_distance`` bits of each other: the same
plate photographed twice, recompressed, or cropped a little differently. Pairs are found without comparing
every crop with every other: a 64-bit hash is cut into ``max_distance + 1`` bands, and two hashes within
that distance agree exactly on at least one band (pigeonhole), so only crops sharing a band are compared.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ocr_core.data.sources import load_crop, sample_from_filename
from ocr_core.errors import InputError

DEFAULT_MAX_DISTANCE = 4  # of 64 bits: JPEG recompression and a pixel of crop shift stay within it
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Fingerprints:
    """Per image: its path, the SHA-1 of its bytes and its 64-bit difference hash (None if unreadable)."""

    paths: list[str]
    sha1: list[str]
    dhash: np.ndarray  # uint64
    readable: np.ndarray  # bool


def dhash(image: np.ndarray) -> int:
    """The 64-bit difference hash of an RGB crop."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def fingerprints(paths: Sequence[str], progress: ProgressFn | None = None) -> Fingerprints:
    """Byte and difference hashes of every image (a raw CCPD photo is hashed as its warped plate)."""
    sha, hashes, readable = [], np.zeros(len(paths), np.uint64), np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        try:
            sha.append(hashlib.sha1(Path(path).read_bytes()).hexdigest())
            hashes[i] = dhash(load_crop(sample_from_filename(Path(path))))
            readable[i] = True
        except (OSError, InputError):
            sha.append("")
        if progress is not None and ((i + 1) % 256 == 0 or i + 1 == len(paths)):
            progress(i + 1, len(paths))
    return Fingerprints(list(paths), sha, hashes, readable)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(a, b)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def near_pairs(first: Fingerprints, second: Fingerprints | None = None,
               max_distance: int = DEFAULT_MAX_DISTANCE) -> pd.DataFrame:
    """Pairs of (near-)duplicate images: within ``first``, or between ``first`` and ``second``.

    Columns: ``a``, ``b`` (paths; ``a`` from ``first``), ``distance`` (dHash bits apart), ``exact`` (same
    bytes). Sorted by distance, then paths.
    """
    within = second is None
    other = first if second is None else second
    bands = max_distance + 1
    width = 64 // bands
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for j in np.flatnonzero(other.readable):
        h = int(other.dhash[j])
        for band in range(bands):
            buckets[(band, (h >> (band * width)) & ((1 << width) - 1))].append(int(j))
    candidates: set[tuple[int, int]] = set()
    for i in np.flatnonzero(first.readable):
        h = int(first.dhash[i])
        for band in range(bands):
            for j in buckets.get((band, (h >> (band * width)) & ((1 << width) - 1)), ()):
                if within and j <= i:
                    continue
                candidates.add((int(i), j))
    if not candidates:
        return pd.DataFrame(columns=["a", "b", "distance", "exact"])
    left, right = (np.array(side) for side in zip(*sorted(candidates)))
    distance = _hamming(first.dhash[left], other.dhash[right])
    keep = distance <= max_distance
    table = pd.DataFrame({
        "a": [first.paths[i] for i in left[keep]],
        "b": [other.paths[j] for j in right[keep]],
        "distance": distance[keep].astype(np.int32),
        "exact": [first.sha1[i] == other.sha1[j] and first.sha1[i] != "" for i, j in zip(left[keep], right[keep])],
    })
    return table.sort_values(["distance", "a", "b"], kind="stable").reset_index(drop=True)
