"""Data roots: the folders the dashboard's path inputs may read from.

A dashboard shown over a network takes paths from whoever is looking at it, so every path it is given
(checkpoint, dataset, manifest entries, augmentation files) must lie inside a configured root once
``..`` and symlinks are resolved. The roots are the workspace, the repository's shipped data
(``ocr_core/assets``: the demo checkpoint and the font) and every folder named in ``PLATELENS_DATA_ROOTS``
(separated by ``os.pathsep``). The CLI is run by the user on their own files and is not confined.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ocr_core import workspace
from ocr_core.data.sources import Sample, SourceListing
from ocr_core.errors import InputError

ROOTS_ENV = "PLATELENS_DATA_ROOTS"
OUTSIDE_ROOTS = "outside the data roots"


def data_roots() -> list[Path]:
    """The resolved data roots: the workspace, the shipped assets, then ``PLATELENS_DATA_ROOTS``'s entries."""
    roots = [workspace.workspace_dir(), workspace.DEMO_CHECKPOINT.parent]
    extra = os.environ.get(ROOTS_ENV, "")
    roots += [Path(entry).expanduser() for entry in extra.split(os.pathsep) if entry.strip()]
    unique: list[Path] = []
    for root in roots:
        resolved = Path(os.path.realpath(root))
        if resolved not in unique:
            unique.append(resolved)
    return unique


def is_inside(path: str | Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, with ``..`` and every symlink resolved, lies inside one of ``roots``."""
    real = Path(os.path.realpath(Path(path).expanduser()))
    return any(real == root or root in real.parents for root in roots)


def confine(path: str | Path, what: str, roots: Sequence[Path] | None = None) -> Path:
    """Return ``path`` if it lies inside the data roots.

    Raises:
        InputError: the path (after resolving ``..`` and symlinks) is outside every root.
    """
    roots = data_roots() if roots is None else roots
    candidate = Path(path).expanduser()
    if not is_inside(candidate, roots):
        shown = ", ".join(str(r) for r in roots)
        raise InputError(
            f"{what} {candidate} is {OUTSIDE_ROOTS} ({shown}); move it under one of them or add its folder "
            f"to {ROOTS_ENV}"
        )
    return candidate


def confine_listing(listing: SourceListing, roots: Sequence[Path] | None = None) -> SourceListing:
    """The listing without samples whose file resolves outside the roots (symlinks out, manifest ``..`` paths).

    Those samples are moved to ``skipped`` with the reason ``outside the data roots``, so they are
    counted and named like any other skipped file.

    Raises:
        InputError: no sample is left inside the roots.
    """
    roots = data_roots() if roots is None else roots
    inside: list[Sample] = []
    escaped: list[tuple[str, str]] = []
    for sample in listing.samples:  # one realpath per file: manifests can list 100,000 of them
        if is_inside(sample.path, roots):
            inside.append(sample)
        else:
            escaped.append((sample.path, OUTSIDE_ROOTS))
    if not escaped:
        return listing
    if not inside:
        raise InputError(
            f"every file of dataset {listing.spec} is {OUTSIDE_ROOTS} (symlinks or manifest paths that lead "
            f"out); copy the images under the dataset's folder or add their folder to {ROOTS_ENV}"
        )
    return replace(listing, samples=inside, skipped=list(listing.skipped) + escaped)
