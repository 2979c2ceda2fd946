"""The score frame: the contract between producing predictions and analysing them.

One row per sample. Whatever produced the readings (a PlateLens checkpoint, an ONNX model, another OCR
system's predictions file), the frame is built here, by ``build_frame``, from a plain table with
``path``, ``label`` and ``pred`` (and optionally ``confidence``, ``loss``, ``label_issue`` and any
attributes). Analysis
and the dashboard need a frame, never a model, and read images by ``path`` when they draw one.

``SCHEMA_VERSION`` changes whenever a column is added, removed or changes meaning; score caches are keyed
by it, so a new column never serves an old cache. Frames written under an older version (Parquet caches,
score parts, a frame passed as a predictions file) still load: ``upgrade_frame`` adds the columns they
lack, unknown (NaN).

Versions: 2 -> 3 added ``label_issue``.

How a frame's readings were made (checkpoint, data, format, test-time augmentation) is frame-level, not a
column: ``record_scoring`` notes it in ``frame.attrs``, which Parquet files keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from ocr_core.vocab import Vocab

SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Column:
    """A column of the score frame: its dtype and what it means."""

    dtype: str
    meaning: str


# The core columns, in frame order; attribute columns (source, height, width, CCPD fields ...) follow.
COLUMNS: dict[str, Column] = {
    "sample": Column("int32", "row id, 0..n-1 in the order of the predictions table"),
    "path": Column("object", "the image file, absolute"),
    "label": Column("object", "the ground-truth text"),
    "pred": Column("object", "the reading"),
    "correct": Column("bool", "pred == label, the whole text"),
    "cer": Column("float64", "edit distance / label length (a label of length 0 counts as 1)"),
    "edit_distance": Column("int32", "Levenshtein distance between label and pred"),
    "confidence": Column("float64", "probability of the reading under the model, 0..1; NaN when unknown"),
    "loss": Column("float32", "negative log-likelihood of the label under the model; NaN when unknown "
                              "or when the model cannot represent the label"),
    "label_issue": Column("float32", "how much more likely the reading is than the label under the model: "
                                     "loss of the label minus loss of the reading (nats); 0 when they are "
                                     "equal, high when the label looks wrong; NaN when unknown"),
    "oov": Column("bool", "the label has characters outside the model's vocabulary (False when unknown)"),
    "label_len": Column("int32", "characters in the label"),
    "pred_len": Column("int32", "characters in the reading"),
    "province": Column("object", "the label's first character (the province glyph of a CCPD plate)"),
}
INPUT_COLUMNS = ("path", "label", "pred")
# Model figures a predictions table may carry (NaN when absent), with their dtypes.
OPTIONAL_INPUTS = {"confidence": np.float64, "loss": np.float32, "label_issue": np.float32}
# Columns added after version 2, each unknown (NaN) in a frame written before it.
ADDED_COLUMNS = {"label_issue": ("loss", np.float32)}


def build_frame(predictions: pd.DataFrame, vocab: Vocab | None = None) -> pd.DataFrame:
    """The complete score frame of a predictions table (see the module doc and ``COLUMNS``).

    ``predictions`` needs ``path``, ``label`` and ``pred``; ``confidence``, ``loss`` and ``label_issue``
    are optional (NaN when absent); every other column is kept as an attribute, after the core columns. With ``vocab`` the
    ``oov`` column marks labels it cannot spell.

    Raises:
        ValueError: a required column is missing.
    """
    missing = [c for c in INPUT_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"a predictions table needs the columns {', '.join(missing)}")
    labels = predictions["label"].astype(str).tolist()
    preds = predictions["pred"].astype(str).tolist()
    n = len(labels)
    distance = np.fromiter((Levenshtein.distance(a, b) for a, b in zip(labels, preds)), np.int32, n)
    label_len = np.fromiter((len(t) for t in labels), np.int32, n)
    frame = pd.DataFrame({
        "sample": np.arange(n, dtype=np.int32),
        "path": predictions["path"].astype(str).to_numpy(dtype=object),
        "label": np.asarray(labels, dtype=object),
        "pred": np.asarray(preds, dtype=object),
        "correct": np.asarray(labels, dtype=object) == np.asarray(preds, dtype=object),
        "cer": distance / np.maximum(label_len, 1),
        "edit_distance": distance,
        "confidence": _optional(predictions, "confidence", np.float64),
        "loss": _optional(predictions, "loss", np.float32),
        "label_issue": _optional(predictions, "label_issue", np.float32),
        "oov": [bool(vocab.unknown_chars(t)) for t in labels] if vocab is not None else np.zeros(n, bool),
        "label_len": label_len,
        "pred_len": np.fromiter((len(t) for t in preds), np.int32, n),
        "province": np.asarray([t[:1] for t in labels], dtype=object),
    })
    attributes = [c for c in predictions.columns if c not in COLUMNS]
    for column in attributes:
        frame[column] = predictions[column].to_numpy()
    return frame


def _optional(table: pd.DataFrame, column: str, dtype: type) -> np.ndarray:
    if column not in table.columns:
        return np.full(len(table), np.nan, dtype)
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=dtype, na_value=np.nan)


def upgrade_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the core columns added since it was written (``ADDED_COLUMNS``), NaN, each after the
    column it follows; the frame itself when it lacks none."""
    missing = [c for c in ADDED_COLUMNS if c not in frame.columns]
    if not missing:
        return frame
    frame = frame.copy()
    for column in missing:
        after, dtype = ADDED_COLUMNS[column]
        where = frame.columns.get_loc(after) + 1 if after in frame.columns else len(frame.columns)
        frame.insert(where, column, np.full(len(frame), np.nan, dtype))
    return frame


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Score frames of disjoint samples as one frame, in the given order, ``sample`` numbered again from 0."""
    merged = pd.concat(frames, ignore_index=True)
    merged["sample"] = np.arange(len(merged), dtype=np.int32)
    return merged


def check_frame(frame: pd.DataFrame) -> list[str]:
    """What keeps ``frame`` from being a score frame (missing core columns); empty when it is one."""
    return [f"missing column {c!r}" for c in COLUMNS if c not in frame.columns]


def attribute_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's attribute columns: every column that is not a core column."""
    return [c for c in frame.columns if c not in COLUMNS]


# Where a frame notes how its readings were made (``record_scoring``). Frame-level, not a column, so the
# schema does not change; pandas keeps ``attrs`` in Parquet files (not in CSV).
SCORING_ATTR = "scoring"


def record_scoring(frame: pd.DataFrame, checkpoint: str, data: str, text_format: str | None,
                   tta: bool) -> None:
    """Note in ``frame.attrs`` the checkpoint, data, format and test-time augmentation of its readings."""
    frame.attrs[SCORING_ATTR] = {"checkpoint": str(checkpoint), "data": data, "format": text_format,
                                 "tta": bool(tta), "schema_version": SCHEMA_VERSION}


def scoring_record(frame: pd.DataFrame) -> dict[str, Any] | None:
    """What ``record_scoring`` noted in ``frame`` (also after a Parquet round trip), or None."""
    record = frame.attrs.get(SCORING_ATTR)
    return dict(record) if isinstance(record, dict) else None
