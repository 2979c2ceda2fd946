"""Predictions of any OCR system (PaddleOCR, EasyOCR, a vendor API, a notebook) as a score frame.

A predictions file is CSV, TSV, JSON Lines or Parquet with the columns ``file`` (or ``path``) and
``pred``, and optionally ``label`` and ``confidence``; other columns are kept as attributes. A score frame
written by PlateLens (any schema version) is a predictions file too: its derived columns are recomputed. Relative
paths resolve against the predictions file's folder. Labels come from the file or, when it has none,
from a dataset source (folder names or a manifest, as everywhere in PlateLens), matched by path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ocr_core.data.image_io import image_file_size
from ocr_core.data.sources import list_source
from ocr_core.errors import InputError
from ocr_core.frame import build_frame, scoring_record

PREDICTION_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


@dataclass
class ImportedPredictions:
    """A score frame built from a predictions file, and the rows that could not be used."""

    frame: pd.DataFrame
    missing: list[str] = field(default_factory=list)  # image files that do not exist
    unlabelled: list[str] = field(default_factory=list)  # images the label source does not know
    scoring: dict[str, Any] | None = None  # how a PlateLens score frame was read (ocr_core.frame.record_scoring)


def read_predictions_table(path: str | Path) -> pd.DataFrame:
    """The raw table of a predictions file, every text column read as text (no ``007`` -> ``7``).

    Raises:
        InputError: a missing, empty or unreadable file, an unknown suffix, or missing columns.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise InputError(f"predictions file {path} has suffix {suffix or '(none)'}; "
                         f"give a {', '.join(PREDICTION_SUFFIXES)} file")
    if not path.is_file():
        raise InputError(f"predictions file {path} does not exist; check the path")
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
        elif suffix == ".jsonl":
            table = pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines()
                                  if line.strip()])
            table = table.astype({c: str for c in ("file", "path", "pred", "label") if c in table.columns})
        else:
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"predictions file {path} cannot be read ({reason}); "
                         f"give a {suffix[1:].upper()} file with columns file, pred [, label, confidence]") from None
    if table.empty:
        raise InputError(f"predictions file {path} holds no rows; give one row per image")
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "file" in table.columns and "path" not in table.columns:
        table = table.rename(columns={"file": "path"})
    missing = [c for c in ("path", "pred") if c not in table.columns]
    if missing:
        raise InputError(f"predictions file {path} has columns {list(table.columns)}; it needs file (or path) "
                         "and pred, and may have label and confidence")
    for column in ("path", "pred", "label"):
        if column in table.columns and not (pd.api.types.is_object_dtype(table[column])
                                            or pd.api.types.is_string_dtype(table[column])):
            raise InputError(f"predictions file {path}: column {column} holds {table[column].dtype} values, "
                             "not text; write it as strings (numbers lose leading zeros)")
    return table


def _set_source(table: pd.DataFrame, kind: str) -> None:
    # A score frame given as a predictions file has its own source column: keep it.
    if "source" not in table.columns:
        table.insert(2, "source", kind)


def import_predictions(path: str | Path, data: str | Path | None = None) -> ImportedPredictions:
    """The score frame of a predictions file (see the module doc); labels from ``data`` when the file has none.

    Rows whose image does not exist, and (with ``data``) images the label source does not know, are left
    out and listed. A score frame that ``score --out`` wrote as Parquet keeps its scoring record.

    Raises:
        InputError: bad file, duplicate paths, confidences outside 0..1, labels from two sources that
            disagree, no label source, or no usable row.
    """
    path = Path(path)
    table = read_predictions_table(path)
    scoring = scoring_record(table)
    base = path.parent
    resolved = [str((Path(p) if Path(p).is_absolute() else base / p).resolve()) for p in table["path"]]
    table["path"] = resolved
    duplicated = table["path"][table["path"].duplicated()].unique().tolist()
    if duplicated:
        raise InputError(f"predictions file {path} lists {len(duplicated)} image(s) twice, first {duplicated[0]}; "
                         "keep one reading per image")
    if "confidence" in table.columns:
        confidence = pd.to_numeric(table["confidence"].replace("", np.nan), errors="coerce")
        bad = table["confidence"][(confidence.isna() & (table["confidence"].astype(str) != "")
                                   & table["confidence"].notna()) | (confidence < 0) | (confidence > 1)]
        if len(bad):
            raise InputError(f"predictions file {path}: confidence {bad.iloc[0]!r} is not a number from 0 to 1; "
                             "leave it empty where unknown")
        table["confidence"] = confidence
    exists = np.array([Path(p).is_file() for p in table["path"]])
    missing = table["path"][~exists].tolist()
    table = table[exists].reset_index(drop=True)
    unlabelled: list[str] = []
    if data is not None:
        listing = list_source(data)
        known = {str(Path(s.path).resolve()): s for s in listing.samples}
        labels = [known[p].label if p in known else None for p in table["path"]]
        if "label" in table.columns:
            clash = [(p, a, b) for p, a, b in zip(table["path"], table["label"], labels) if b is not None and a != b]
            if clash:
                first = clash[0]
                raise InputError(f"{len(clash)} label(s) of predictions file {path} disagree with dataset {data} "
                                 f"(first {Path(first[0]).name}: {first[1]!r} against {first[2]!r}); "
                                 "give only one label source")
        else:
            has = np.array([label is not None for label in labels])
            unlabelled = table["path"][~has].tolist()
            table = table[has].reset_index(drop=True)
            table.insert(1, "label", [label for label in labels if label is not None])
        _set_source(table, listing.kind)
    elif "label" not in table.columns:
        raise InputError(f"predictions file {path} has no label column; give the dataset its images come "
                         "from (--data) so that labels are read from it")
    else:
        _set_source(table, "predictions")
    if table.empty:
        raise InputError(f"no row of predictions file {path} names an existing, labelled image "
                         f"({len(missing)} missing, {len(unlabelled)} without a label)")
    sizes = [image_file_size(p) for p in table["path"]]
    table["height"] = np.array([s[0] if s else 0 for s in sizes], np.int32)
    table["width"] = np.array([s[1] if s else 0 for s in sizes], np.int32)
    return ImportedPredictions(build_frame(table), missing, unlabelled, scoring)
