"""Source specs: turn a folder or manifest path into labelled samples, auto-detecting the format.

Formats:
    - a folder of images named ``LABEL.ext``, ``ID-LABEL.ext`` (CCPD2019-dl1) or raw CCPD names;
    - a JSON manifest: a list of ``{"file": ..., "text": ...}``;
    - a CSV or TSV manifest with columns ``file,text`` (any other column is an attribute of its samples).
Manifest paths are relative to the manifest's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocr_core.data.ccpd import parse_ccpd_name, warp_plate
from ocr_core.data.image_io import read_rgb
from ocr_core.errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_ID_LABEL = re.compile(r"^\d+-(?P<label>.+)$")


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``quad`` is set for raw CCPD photos, whose plate is warped out of the photo."""

    path: str
    label: str
    source: str
    quad: tuple[tuple[float, float], ...] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceListing:
    """The samples a source spec names, plus the entries that were passed over and why."""

    spec: str
    kind: str
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_crop(sample: Sample) -> np.ndarray:
    """The sample's plate crop as RGB uint8 at its native resolution."""
    image = read_rgb(sample.path)
    if sample.quad is not None:
        return warp_plate(image, sample.quad)
    return image


def sample_from_filename(path: Path) -> Sample:
    """Label a file by its name: raw CCPD, ``ID-LABEL`` or plain ``LABEL``."""
    stem = path.stem
    ccpd = parse_ccpd_name(stem)
    if ccpd is not None:
        attrs = {"brightness": ccpd.brightness, "blur": ccpd.blur, "tilt_h": ccpd.tilt_h, "tilt_v": ccpd.tilt_v}
        return Sample(str(path), ccpd.label, "ccpd-raw", ccpd.vertices, attrs)
    match = _ID_LABEL.match(stem)
    if match is not None:
        return Sample(str(path), match["label"], "folder-id")
    return Sample(str(path), stem, "folder")


def _files_below(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """Every file below ``folder`` in path order, hidden ones and those in hidden folders left out.

    Folder links and dangling file links are left out. An entry that cannot be examined (a link that
    points to itself or loops, a permission error) or is not a regular file (a FIFO, socket or device
    node, which reading would block on) is added to ``skipped`` with its reason, like a subfolder that
    cannot be read: one bad entry never takes down the folder.

    Raises:
        InputError: ``folder`` itself cannot be read.
    """
    # os.scandir reports each entry's type from the directory listing itself, so unlike Path.rglob plus
    # is_file it needs no stat call per file, and sorting name tuples skips Path comparisons.
    found: list[tuple[str, ...]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(str(folder), ())]
    while pending:
        directory, parts = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue  # hidden files and folders: caches, temp files of an interrupted write
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append((entry.path, (*parts, entry.name)))
                        elif entry.is_file():
                            found.append((*parts, entry.name))
                        else:
                            why = _odd_entry(entry)
                            if why:
                                skipped.append((entry.path, why))
                    except OSError as exc:  # a link to itself (ELOOP), an entry we may not stat
                        skipped.append((entry.path, f"entry cannot be read ({exc.strerror or exc})"))
        except OSError as exc:
            why = exc.strerror or str(exc)
            if not parts:
                raise InputError(f"dataset folder {folder} cannot be read ({why}); check its permissions") from None
            skipped.append((directory, f"folder cannot be read ({why})"))
    found.sort()
    return [folder.joinpath(*parts) for parts in found]


def _odd_entry(entry: os.DirEntry[str]) -> str:
    """Why a folder entry that is neither a folder nor a file is skipped; "" for links left out on purpose."""
    if entry.is_symlink():
        try:
            os.stat(entry.path)
        except FileNotFoundError:
            return ""  # a dangling link: nothing there, left out like before
        except OSError as exc:
            return f"link cannot be followed ({exc.strerror or exc})"
        if entry.is_dir():
            return ""  # folder links are not followed
    mode = entry.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node, not a regular file"
    return "not a regular file"


def _list_folder(folder: Path) -> SourceListing:
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for path in _files_below(folder, skipped):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((str(path), "not an image file name"))
            continue
        sample = sample_from_filename(path)
        if not sample.label.strip():
            skipped.append((str(path), "empty label in the file name"))
            continue
        samples.append(sample)
    kinds = sorted({s.source for s in samples})
    return SourceListing(str(folder), "+".join(kinds) if kinds else "folder", samples, skipped)


def _manifest_samples(manifest: Path, rows: list[tuple[Any, Any]], kind: str,
                      attrs: list[dict[str, Any]] | None = None) -> SourceListing:
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    missing: list[str] = []
    seen: set[str] = set()
    base = manifest.parent
    for index, (file, text) in enumerate(rows):
        if not isinstance(file, str) or not file:
            raise InputError(f"manifest {manifest} has an entry without a file name; every entry needs 'file'")
        path = Path(file) if Path(file).is_absolute() else base / file
        label = "" if text is None else str(text)
        if not path.is_file():
            missing.append(str(path))
            continue
        if not label.strip():
            skipped.append((str(path), "empty label in the manifest"))
            continue
        identity = str(path.resolve())
        if identity in seen:
            # Scoring a file twice would count its errors twice in every slice.
            skipped.append((str(path), "listed twice in the manifest"))
            continue
        seen.add(identity)
        samples.append(Sample(str(path), label, kind, attrs=attrs[index] if attrs else {}))
    if missing:
        raise InputError(
            f"manifest {manifest} lists {len(missing)} missing file(s), first {missing[0]}; "
            "fix the paths (relative paths resolve against the manifest's folder)"
        )
    return SourceListing(str(manifest), kind, samples, skipped)


def _read_json_manifest(manifest: Path) -> SourceListing:
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"manifest {manifest} is not valid JSON ({exc}); expected a list of {{file, text}}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"manifest {manifest} must be a JSON list of objects with 'file' and 'text' keys")
    return _manifest_samples(manifest, [(e.get("file"), e.get("text")) for e in entries], "json")


def _read_table_manifest(manifest: Path) -> SourceListing:
    sep = "\t" if manifest.suffix.lower() == ".tsv" else ","
    try:
        table = pd.read_csv(manifest, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"manifest {manifest} is not a readable table ({reason}); expected columns file,text") from None
    columns = {c.strip().lower(): c for c in table.columns}
    if "file" not in columns or "text" not in columns:
        raise InputError(
            f"manifest {manifest} has columns {list(table.columns)}; it needs the columns file,text"
        )
    rows = list(zip(table[columns["file"]], table[columns["text"]]))
    # Other columns are attributes of the samples (a camera, a condition): the dashboard slices by them.
    extra = [c for c in table.columns if c.strip().lower() not in ("file", "text")]
    attrs = table[extra].to_dict("records") if extra else None
    return _manifest_samples(manifest, rows, "csv", attrs)


def list_source(spec: str | Path) -> SourceListing:
    """List the samples of a source spec (folder, JSON, CSV or TSV manifest), detecting its format.

    Raises:
        InputError: the path is missing, of an unknown kind, malformed, or names no sample.
    """
    path = Path(str(spec)).expanduser()
    if not path.exists():
        raise InputError(f"dataset path {path} does not exist; give a folder of images or a .json/.csv manifest")
    if path.is_dir():
        listing = _list_folder(path)
    else:
        suffix = path.suffix.lower()
        if suffix == ".json":
            listing = _read_json_manifest(path)
        elif suffix in (".csv", ".tsv"):
            listing = _read_table_manifest(path)
        else:
            raise InputError(f"{path} is neither a folder nor a .json/.csv/.tsv manifest; give one of those")
    if not listing.samples:
        raise InputError(f"dataset {path} contains no labelled images; add images named by their plate text")
    return listing


def split_by_hash(samples: list[Sample], val_fraction: float, salt: str = "platelens") -> tuple[list[int], list[int]]:
    """Deterministic train/val split by a hash of each file name: the same file always lands on the same side."""
    train_idx: list[int] = []
    val_idx: list[int] = []
    for i, sample in enumerate(samples):
        digest = hashlib.sha1(f"{salt}:{Path(sample.path).name}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        (val_idx if fraction < val_fraction else train_idx).append(i)
    return train_idx, val_idx
