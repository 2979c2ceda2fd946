"""Error analysis: pure functions on a score frame (see ``ocr_core.score`` for its columns).

Edits come from rapidfuzz's Levenshtein alignment of label (true) against prediction. ``EPSILON``
stands for the missing side: an insertion is ``ε -> x`` (the model read an extra ``x``), a deletion is
``x -> ε`` (the model missed ``x``).

Frames reach a million rows, so the per-row work is columnar: texts become arrays of code points
(``codepoints``) that numpy compares and counts, each distinct (label, reading) pair is aligned once, and
the confusion matrix is filled with ``np.add.at``. tests/test_analysis_scale.py checks every such function
against the former row-by-row code on random frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.distance import Levenshtein

EPSILON = "ε"
ERROR_TYPES = ("substitution", "insertion", "deletion")
PROVINCE_GLYPHS = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学"


@dataclass(frozen=True)
class Edit:
    """One aligned difference: ``kind`` is substitution, insertion or deletion; ``position`` indexes the label."""

    kind: str
    true: str
    pred: str
    position: int


def align(label: str, pred: str) -> list[Edit]:
    """The minimal edits that turn ``label`` into ``pred``, with ε for the missing side."""
    edits: list[Edit] = []
    for op in Levenshtein.editops(label, pred):
        if op.tag == "replace":
            edits.append(Edit("substitution", label[op.src_pos], pred[op.dest_pos], op.src_pos))
        elif op.tag == "insert":
            edits.append(Edit("insertion", EPSILON, pred[op.dest_pos], op.src_pos))
        else:
            edits.append(Edit("deletion", label[op.src_pos], EPSILON, op.src_pos))
    return edits


def aligned_pairs(label: str, pred: str) -> list[tuple[str, str, str]]:
    """The full alignment as ``(kind, true, pred)`` tuples, matches included, in reading order.

    ``kind`` is ``equal``, ``substitution``, ``insertion`` or ``deletion``; the dashboard draws diffs from it.
    """
    out: list[tuple[str, str, str]] = []
    for block in Levenshtein.opcodes(label, pred):
        a, b = label[block.src_start:block.src_end], pred[block.dest_start:block.dest_end]
        if block.tag == "equal":
            out += [("equal", c, c) for c in a]
        elif block.tag == "replace":
            out += [("substitution", x, y) for x, y in zip(a, b)]
        elif block.tag == "delete":
            out += [("deletion", c, EPSILON) for c in a]
        else:
            out += [("insertion", EPSILON, c) for c in b]
    return out


def flat_codepoints(texts: pd.Series | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every text's code points one after another (uint32), and each text's length in code points.

    Columnar: an Arrow-backed string column (pandas' ``str`` dtype) is decoded from its UTF-8 buffer in one
    piece, with no Python object per row; other sequences are joined first. Missing values count as "".
    """
    values = texts.array if isinstance(texts, pd.Series) else list(texts)
    array = pa.array(values) if not isinstance(values, pa.Array | pa.ChunkedArray) else values
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.large_string())
    array = pc.fill_null(array, "")
    lengths = pc.utf8_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    if not len(array):
        return np.zeros(0, np.uint32), lengths
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset:array.offset + len(array) + 1]
    data = array.buffers()[2]
    raw = data.to_pybytes()[int(offsets[0]):int(offsets[-1])] if data is not None else b""
    return np.frombuffer(raw.decode("utf-8").encode("utf-32-le"), np.uint32), lengths


def codepoints(texts: pd.Series | Sequence[str], width: int | None = None) -> np.ndarray:
    """(n, width) uint32: the code points of each text, zero-padded on the right.

    ``width`` defaults to the longest text; longer texts are cut to it.
    """
    flat, lengths = flat_codepoints(texts)
    width = int(lengths.max(initial=0)) if width is None else width
    out = np.zeros((len(lengths), width), np.uint32)
    if len(flat) and width:
        row = np.repeat(np.arange(len(lengths)), lengths)
        column = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        keep = column < width
        out[row[keep], column[keep]] = flat[keep]
    return out


def _pair_edits(label: str, pred: str) -> list[tuple[str, str, str, int]]:
    # align() without the Edit objects: (kind, true, pred, position) tuples.
    out: list[tuple[str, str, str, int]] = []
    ops: list[tuple[str, int, int]] = Levenshtein.editops(label, pred).as_list()  # type: ignore[assignment]
    for tag, src, dest in ops:
        if tag == "replace":
            out.append(("substitution", label[src], pred[dest], src))
        elif tag == "insert":
            out.append(("insertion", EPSILON, pred[dest], src))
        else:
            out.append(("deletion", label[src], EPSILON, src))
    return out


def edit_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per edit of every wrong sample: ``sample, kind, true, pred, position``.

    Rows follow the frame's order, and each sample's edits their order along the label (``align``). A
    (label, reading) pair that occurs many times is aligned once.
    """
    wrong = frame.loc[~frame["correct"].astype(bool), ["sample", "label", "pred"]]
    pair_of: dict[tuple[str, str], int] = {}
    rows = np.fromiter((pair_of.setdefault(pair, len(pair_of)) for pair in
                        zip(wrong["label"].astype(str).tolist(), wrong["pred"].astype(str).tolist())),
                       np.int64, len(wrong))
    flat: list[tuple[str, str, str, int]] = []
    counts = np.zeros(len(pair_of), np.int64)
    for j, (label, pred) in enumerate(pair_of):
        edits = _pair_edits(label, pred)
        counts[j] = len(edits)
        flat += edits
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else counts
    per_row = counts[rows]
    total = int(per_row.sum())
    owner = np.repeat(np.arange(len(rows)), per_row)
    offset = np.arange(total) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    take = starts[rows][owner] + offset
    columns = list(zip(*flat)) if flat else [(), (), (), ()]
    kinds, trues, preds, positions = (np.asarray(c, dtype=object)[take] if total else np.asarray([], dtype=object)
                                      for c in columns)
    return pd.DataFrame({
        "sample": wrong["sample"].to_numpy()[owner].astype(np.int32),
        "kind": list(kinds), "true": list(trues), "pred": list(preds),
        "position": np.asarray(positions, dtype=np.int64).astype(np.int32) if total else np.zeros(0, np.int32),
    })


def error_type_counts(edits: pd.DataFrame) -> pd.Series:
    """How many substitutions, insertions and deletions an edit table holds (all three always present)."""
    return edits["kind"].value_counts().reindex(list(ERROR_TYPES), fill_value=0)


def confusion_table(frame: pd.DataFrame, edits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Counts of true (rows) against predicted (columns) characters, ε included; matches on the diagonal."""
    edits = edit_table(frame) if edits is None else edits
    found, times = np.unique(flat_codepoints(frame["label"])[0], return_counts=True)  # every label character
    matched = pd.Series(times.astype(np.int64), index=[chr(c) for c in found.tolist()], dtype=np.int64)
    lost = edits.loc[edits["kind"] != "insertion", "true"].value_counts()
    matched = matched.sub(lost, fill_value=0).astype(np.int64)
    pairs = edits.groupby(["true", "pred"]).size()
    chars = sorted(set(matched.index) | set(edits["true"]) | set(edits["pred"]) - {EPSILON})
    chars = [c for c in chars if c != EPSILON] + [EPSILON]
    at = {c: i for i, c in enumerate(chars)}
    values = np.zeros((len(chars), len(chars)), np.int64)
    diagonal = np.fromiter((at[c] for c in matched.index), np.int64, len(matched))
    np.add.at(values, (diagonal, diagonal), matched.to_numpy(np.int64))
    if len(pairs):
        rows = np.fromiter((at[t] for t in pairs.index.get_level_values(0)), np.int64, len(pairs))
        cols = np.fromiter((at[p] for p in pairs.index.get_level_values(1)), np.int64, len(pairs))
        np.add.at(values, (rows, cols), pairs.to_numpy(np.int64))
    table = pd.DataFrame(values, index=pd.Index(chars, name="true"), columns=pd.Index(chars, name="pred"))
    return table


def glyph_group(char: str) -> str:
    """``province`` (a plate's province glyph), ``cjk`` (other CJK), ``letter``, ``digit``, ``epsilon`` or ``other``."""
    if char == EPSILON:
        return "epsilon"
    if char in PROVINCE_GLYPHS:
        return "province"
    if char.isascii() and char.isdigit():
        return "digit"
    if char.isascii() and char.isalpha():
        return "letter"
    if "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff":
        return "cjk"
    return "other"


def glyph_groups(chars: str) -> list[str]:
    """The glyph groups of ``chars`` (e.g. a vocabulary or every label character), in a fixed order."""
    present = {glyph_group(c) for c in chars}
    return [g for g in ("province", "cjk", "letter", "digit", "other") if g in present]


def is_plate_domain(labels: Sequence[str]) -> bool:
    """Whether labels look like licence plates (a known plate format, or mostly a province glyph first),
    so that plate-only analyses (province, plate format) mean something."""
    from ocr_core.formats import detect_format

    labels = [t for t in labels if t]
    if not labels:
        return False
    # The cheap test first (a set lookup per label); the format test runs regular expressions over every label.
    if sum(t[0] in PROVINCE_GLYPHS for t in labels) >= 0.5 * len(labels):
        return True
    return detect_format(labels) is not None


def repeats(labels: pd.Series) -> pd.Series:
    """Adjacent repeated characters per label (``"ffn"``: 1): a CTC model needs a blank between them."""
    flat, lengths = flat_codepoints(labels.astype(str))
    row = np.repeat(np.arange(len(lengths)), lengths)
    same = (flat[1:] == flat[:-1]) & (row[1:] == row[:-1])  # a character equal to the one before, same label
    out = np.bincount(row[1:][same], minlength=len(lengths)).astype(np.int32)
    return pd.Series(out, index=labels.index, name=labels.name)


def needs_more_steps(frame: pd.DataFrame, time_steps: int) -> pd.Series:
    """Labels a CTC model with ``time_steps`` outputs can never read: length plus repeats above its steps."""
    return (frame["label_len"] + repeats(frame["label"])) > time_steps


def top_confusions(edits: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Confused pairs ranked by count: ``true, pred, count, samples, kind, group``.

    ``group`` names the glyph classes involved, e.g. ``province→province`` or ``digit→letter``.
    """
    if edits.empty:
        return pd.DataFrame(columns=["true", "pred", "count", "samples", "kind", "group"])
    grouped = edits.groupby(["true", "pred"]).agg(
        count=("sample", "size"), samples=("sample", "nunique"), kind=("kind", "first")
    ).reset_index()
    grouped["group"] = [f"{glyph_group(t)}→{glyph_group(p)}" for t, p in zip(grouped["true"], grouped["pred"])]
    grouped = grouped.sort_values(["count", "true", "pred"], ascending=[False, True, True], kind="stable")
    grouped = grouped.reset_index(drop=True)
    return grouped if n is None else grouped.head(n)


def samples_with_confusion(frame: pd.DataFrame, edits: pd.DataFrame, true: str, pred: str) -> pd.DataFrame:
    """The rows of ``frame`` whose alignment contains the edit ``true -> pred``."""
    ids = edits.loc[(edits["true"] == true) & (edits["pred"] == pred), "sample"].unique()
    return frame[frame["sample"].isin(ids)]


def position_accuracy(frame: pd.DataFrame, length: int | None = None) -> pd.DataFrame:
    """Per-position accuracy for labels of one length (the most common one by default).

    A position counts as right when prediction and label have the same length and agree there.
    """
    if frame.empty:
        return pd.DataFrame(columns=["position", "accuracy", "n"])
    length = int(frame["label_len"].mode().iloc[0]) if length is None else length
    of_length = (frame["label_len"] == length).to_numpy()
    same = of_length & (frame["pred"].astype(str).str.len() == length).to_numpy()
    # Both sides of these rows have ``length`` characters: (rows, length) code points, compared column-wise.
    hits = (codepoints(frame["label"][same], length) == codepoints(frame["pred"][same], length)).sum(
        axis=0).astype(np.int64)
    n = int(of_length.sum())
    acc = hits / n if n else np.full(length, np.nan)
    return pd.DataFrame({"position": np.arange(1, length + 1), "accuracy": acc, "n": n})


def accuracy_by(frame: pd.DataFrame, column: str, bins: int = 0) -> pd.DataFrame:
    """Accuracy and mean CER per value of ``column``; numeric columns can be cut into ``bins`` bins."""
    if column not in frame.columns:
        raise KeyError(f"score frame has no column {column!r}")
    keys = frame[column]
    if bins and pd.api.types.is_numeric_dtype(keys) and keys.nunique() > bins:
        keys = readable_bins(keys, bins)
    grouped = frame.groupby(keys, observed=True).agg(
        n=("correct", "size"), accuracy=("correct", "mean"), cer=("cer", "mean")
    )
    grouped.index.name = column
    return grouped.reset_index().sort_values("n", ascending=False, kind="stable").reset_index(drop=True)


def readable_bins(values: pd.Series, bins: int) -> pd.Series:
    """``values`` cut into at most ``bins`` equal-width bins with round edges, labelled like ``24–27``.

    pandas' own labels (``(23.976, 27.0]``) carry its 0.1% edge padding and full precision; these keep
    two significant digits of the bin width, and a label's text before the dash sorts the bins.
    """
    numbers = values.astype(float)
    low, high = float(numbers.min()), float(numbers.max())
    step = (high - low) / bins
    whole = bool(np.all(numbers == np.round(numbers)))  # pixel sizes and counts: whole-number edges
    digits = 0 if whole or step <= 0 else max(0, 1 - math.floor(math.log10(step)))
    edges = np.unique(np.round(np.linspace(low, high, bins + 1), digits))
    edges[0], edges[-1] = min(edges[0], low), max(edges[-1], high)  # rounding must not drop the extremes
    labels = [f"{a:.{digits}f}–{b:.{digits}f}" for a, b in pairwise(edges)]
    return pd.cut(numbers, edges, labels=labels, include_lowest=True).astype(str)


def telling_slices(frame: pd.DataFrame, columns: Sequence[str], bins: int = 8, min_n: int = 5) -> list[str]:
    """``columns`` ordered by how much exact-plate accuracy differs between their values, most first.

    The measure is the between-group variance of correctness (groups of at least ``min_n`` samples; numeric
    columns in ``bins`` bins): large when a slice separates the plates that fail from those that pass.
    Columns that do not vary, or whose groups are all smaller than ``min_n``, come last in their order.
    """
    if frame.empty:
        return list(columns)
    overall = float(frame["correct"].mean())
    spread: dict[str, float] = {}
    for column in columns:
        table = accuracy_by(frame, column, bins=bins)
        table = table[table["n"] >= min_n]
        spread[column] = float((table["n"] * (table["accuracy"] - overall) ** 2).sum() / len(frame)) \
            if len(table) > 1 else -1.0
    return sorted(columns, key=lambda c: -spread[c])


def cer_histogram(cer: pd.Series, bins: int = 20) -> pd.DataFrame:
    """Sample counts per per-sample-CER bin over [0, max(1, largest CER)].

    Returns one row per bin: its centre (``cer``), ``samples`` and its range as text (``range``).
    """
    top = max(1.0, float(cer.max()) if len(cer) else 1.0)
    counts, edges = np.histogram(cer.to_numpy(dtype=float), bins=bins, range=(0.0, top))
    return pd.DataFrame({"cer": (edges[:-1] + edges[1:]) / 2, "samples": counts,
                         "range": [f"{a:.2f}–{b:.2f}" for a, b in pairwise(edges)]})


def rank_worst(frame: pd.DataFrame) -> pd.DataFrame:
    """Samples ordered worst first: highest CER, ties broken by the most confident (the surprising ones)."""
    return frame.sort_values(["cer", "confidence", "sample"], ascending=[False, False, True], kind="stable")


CHANGES = ("fixed", "broken", "both right", "both wrong")


def _unique_paths(paths: pd.Series) -> bool:
    values = paths.array
    try:  # a listing is usually sorted: strictly increasing paths are unique, checked in one pass
        if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
            return True
    except TypeError:
        pass
    return bool(paths.is_unique)


def compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Join two score frames of the same dataset by path: per-sample outcome under A and B.

    Columns: ``path, label, pred_a, correct_a, cer_a, confidence_a, sample, pred_b, correct_b, cer_b,
    confidence_b, change`` where change (categorical, ``CHANGES``) is ``fixed`` (wrong in A, right in B),
    ``broken``, ``both right`` or ``both wrong``. Rows follow A. Two frames of one listing (the usual case:
    the same paths in the same order) are joined by position, without hashing a million paths; any other
    pair is merged on path and label.
    """
    keep = ["path", "label", "pred", "correct", "cer", "confidence"]
    left = a[keep + ["sample"]]
    same_rows = len(a) == len(b) and bool((a["path"].array == b["path"].array).all()) and _unique_paths(a["path"])
    if same_rows:
        agree = np.asarray(a["label"].array == b["label"].array, dtype=bool)
        right = b[keep[2:]]
        if not agree.all():
            left, right = left[agree], right[agree]
        joined = pd.concat([left.rename(columns={c: f"{c}_a" for c in keep[2:]}).reset_index(drop=True),
                            right.rename(columns={c: f"{c}_b" for c in keep[2:]}).reset_index(drop=True)], axis=1)
    else:
        joined = left.merge(b[keep], on=["path", "label"], suffixes=("_a", "_b"))
    correct_a, correct_b = joined["correct_a"].to_numpy(bool), joined["correct_b"].to_numpy(bool)
    codes = np.select([~correct_a & correct_b, correct_a & ~correct_b, correct_a], [0, 1, 2], default=3)
    joined["change"] = pd.Categorical.from_codes(codes.astype(np.int8), categories=list(CHANGES))
    return joined


def delta_by(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.DataFrame:
    """Accuracy of A and B and their difference per value of ``column`` (e.g. ``province``)."""
    left = accuracy_by(a, column)[[column, "n", "accuracy"]]
    right = accuracy_by(b, column)[[column, "accuracy"]]
    merged = left.merge(right, on=column, how="outer", suffixes=("_a", "_b"))
    merged["delta"] = merged["accuracy_b"] - merged["accuracy_a"]
    return merged.sort_values("delta", kind="stable").reset_index(drop=True)


def confusion_delta(edits_a: pd.DataFrame, edits_b: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """Confused pairs whose count changed most from A to B: ``true, pred, count_a, count_b, delta``."""
    ca = edits_a.groupby(["true", "pred"]).size().rename("count_a")
    cb = edits_b.groupby(["true", "pred"]).size().rename("count_b")
    merged = pd.concat([ca, cb], axis=1).fillna(0).astype(np.int64)
    merged["delta"] = merged["count_b"] - merged["count_a"]
    merged = merged[merged["delta"] != 0]
    order = merged["delta"].abs().sort_values(ascending=False, kind="stable").index
    return merged.loc[order].head(n).reset_index()


def filter_frame(
    frame: pd.DataFrame,
    edits: pd.DataFrame,
    provinces: Sequence[str] = (),
    lengths: Sequence[int] = (),
    error_types: Sequence[str] = (),
    confusion: tuple[str, str] | None = None,
    cer_range: tuple[float, float] = (0.0, float("inf")),
    confidence_range: tuple[float, float] = (0.0, 1.0),
    correctness: str = "all",
    confident_wrong: float | None = None,
    doubled: str = "any",
    beyond_steps: int | None = None,
) -> pd.DataFrame:
    """The rows that pass every given filter.

    Args:
        frame: the score frame.
        edits: its ``edit_table``.
        provinces: keep labels whose first character is one of these (all when empty).
        lengths: keep labels of these lengths (all when empty).
        error_types: keep samples with at least one edit of one of these kinds.
        confusion: keep samples whose alignment contains ``true -> pred``.
        cer_range: inclusive CER bounds.
        confidence_range: inclusive confidence bounds; rows whose confidence is NaN (a model with NaN
            outputs) always pass, so a NaN never hides a row.
        correctness: ``all``, ``correct`` or ``wrong``.
        confident_wrong: when set, keep wrong samples with confidence at least this (label-error candidates).
        doubled: ``any``, ``with`` (labels with adjacent repeated characters) or ``without``.
        beyond_steps: when set (a CTC model's time steps), keep labels that need more steps than that.
    """
    confidence = frame["confidence"]
    mask = frame["cer"].between(*cer_range) & (confidence.between(*confidence_range) | confidence.isna())
    if provinces:
        mask &= frame["province"].isin(list(provinces))
    if lengths:
        mask &= frame["label_len"].isin(list(lengths))
    if correctness == "correct":
        mask &= frame["correct"]
    elif correctness == "wrong":
        mask &= ~frame["correct"]
    if confident_wrong is not None:
        mask &= ~frame["correct"] & (frame["confidence"] >= confident_wrong)
    if doubled != "any":
        has = repeats(frame["label"]) > 0
        mask &= has if doubled == "with" else ~has
    if beyond_steps is not None:
        mask &= needs_more_steps(frame, beyond_steps)
    if error_types:
        ids = edits.loc[edits["kind"].isin(list(error_types)), "sample"].unique()
        mask &= frame["sample"].isin(ids)
    if confusion is not None:
        t, p = confusion
        ids = edits.loc[(edits["true"] == t) & (edits["pred"] == p), "sample"].unique()
        mask &= frame["sample"].isin(ids)
    return frame[mask]
