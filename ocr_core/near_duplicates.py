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


@dataclass(frozen=True)
class Leakage:
    """Test crops that are (near-)duplicates of crops a checkpoint was trained on.

    ``pairs``: columns ``a`` (test path), ``b`` (training path), ``distance``, ``exact`` (see
    :func:`near_pairs`). ``leaked`` and ``exact`` count distinct test crops (one test crop may match several
    training crops); ``unread`` names training sources that were not compared (gone, or outside the data roots).
    """

    pairs: pd.DataFrame
    test_total: int
    train_total: int
    leaked: int
    exact: int
    unread: tuple[str, ...] = ()


def training_paths(sources: dict, roots: Sequence[Path] | None = None) -> tuple[list[str], tuple[str, ...]]:
    """The image paths a checkpoint's ``training_sources`` (``ocr_core.train.training_sources``) trained on,
    without the validation hold-out and the samples its corrections marked invalid, and the sources that
    were not read: gone, or (given ``roots``, ``ocr_core.roots``) outside the roots, as are their files.

    Raises:
        InputError: ``sources`` is not a training-sources record.
    """
    from ocr_core.corrections import apply_to_listing, load_corrections
    from ocr_core.data.sources import list_source, split_by_hash
    from ocr_core.roots import is_inside

    try:
        first, extra = str(sources["data"]), [str(s) for s in sources.get("extra_data") or []]
        val_split = float(sources.get("val_split") or 0.0)
        corrections = sources.get("corrections")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError("the checkpoint's training sources are not a record of folders or manifests") from None

    def allowed(path: str) -> bool:
        return roots is None or is_inside(path, roots)

    paths: list[str] = []
    unread: list[str] = []
    for index, spec in enumerate([first, *extra]):
        if not allowed(spec) or not Path(spec).exists():
            unread.append(spec)
            continue
        try:
            listing = list_source(spec)
        except InputError:
            unread.append(spec)
            continue
        if index == 0:
            if corrections and allowed(str(corrections)) and Path(str(corrections)).is_file():
                try:
                    listing = apply_to_listing(listing, load_corrections(str(corrections)))
                except InputError:
                    pass  # a damaged corrections file: compare against every listed crop (an upper bound)
            if val_split > 0:
                keep, _ = split_by_hash(listing.samples, val_split)
                listing = type(listing)(listing.spec, listing.kind, [listing.samples[i] for i in keep])
        paths += [sample.path for sample in listing.samples if allowed(sample.path)]
    return paths, tuple(unread)


def leakage(train_paths: Sequence[str], test_paths: Sequence[str], max_distance: int = DEFAULT_MAX_DISTANCE,
            unread: Sequence[str] = (), progress: ProgressFn | None = None) -> Leakage:
    """Which of ``test_paths`` are exact or near duplicates of ``train_paths`` (see :func:`near_pairs`).

    ``progress`` is called with (images hashed, images to hash) over both sets.
    """
    total = len(train_paths) + len(test_paths)

    def offset(base: int) -> ProgressFn | None:
        return None if progress is None else (lambda done, _n: progress(base + done, total))

    test = fingerprints(list(test_paths), offset(0))
    train = fingerprints(list(train_paths), offset(len(test_paths)))
    pairs = near_pairs(test, train, max_distance)
    exact = pairs.loc[pairs["exact"].astype(bool), "a"].nunique() if len(pairs) else 0
    return Leakage(pairs, len(test_paths), len(train_paths), int(pairs["a"].nunique()) if len(pairs) else 0,
                   int(exact), tuple(unread))
