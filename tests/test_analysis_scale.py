"""The columnar analysis (issue 17) equals the former row-by-row code on random frames.

Each ``old_*`` function below is the implementation the dashboard used before the analysis went columnar,
kept verbatim as the reference. Frames are small (a few thousand rows) so the tests stay fast; they mix
plate-like labels with long, empty, repeated and non-BMP texts, and run on both string storages pandas
may hand the analysis (Arrow-backed ``str`` from a Parquet cache, and plain Python objects).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocr_core import analysis
from ocr_core.analysis import PROVINCE_GLYPHS, align
from ocr_core.formats import detect_format
from ocr_core.frame import build_frame

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


# ---- the former implementations (reference) --------------------------------------------------------------

def old_edit_table(frame: pd.DataFrame) -> pd.DataFrame:
    wrong = frame.loc[~frame["correct"], ["sample", "label", "pred"]]
    rows = [
        (sample, e.kind, e.true, e.pred, e.position)
        for sample, label, pred in wrong.itertuples(index=False)
        for e in align(label, pred)
    ]
    table = pd.DataFrame(rows, columns=["sample", "kind", "true", "pred", "position"])
    return table.astype({"sample": np.int32, "position": np.int32})


def old_confusion_table(frame: pd.DataFrame, edits: pd.DataFrame) -> pd.DataFrame:
    true_counts: dict[str, int] = {}
    for label in frame["label"]:
        for c in label:
            true_counts[c] = true_counts.get(c, 0) + 1
    matched = pd.Series(true_counts, dtype=np.int64)
    lost = edits.loc[edits["kind"] != "insertion", "true"].value_counts()
    matched = matched.sub(lost, fill_value=0).astype(np.int64)
    pairs = edits.groupby(["true", "pred"]).size()
    chars = sorted(set(matched.index) | set(edits["true"]) | set(edits["pred"]) - {analysis.EPSILON})
    chars = [c for c in chars if c != analysis.EPSILON] + [analysis.EPSILON]
    table = pd.DataFrame(0, index=chars, columns=chars, dtype=np.int64)
    for c, count in matched.items():
        table.loc[c, c] += int(count)
    for (t, p), count in pairs.items():
        table.loc[t, p] += int(count)
    table.index.name, table.columns.name = "true", "pred"
    return table


def old_position_accuracy(frame: pd.DataFrame, length: int | None = None) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["position", "accuracy", "n"])
    length = int(frame["label_len"].mode().iloc[0]) if length is None else length
    rows = frame[frame["label_len"] == length]
    hits = np.zeros(length, np.int64)
    for label, pred in zip(rows["label"].tolist(), rows["pred"].tolist()):
        if len(pred) == length:
            hits += np.frombuffer(label.encode("utf-32-le"), np.uint32) == np.frombuffer(
                pred.encode("utf-32-le"), np.uint32)
    n = len(rows)
    acc = hits / n if n else np.full(length, np.nan)
    return pd.DataFrame({"position": np.arange(1, length + 1), "accuracy": acc, "n": n})


def old_repeats(labels: pd.Series) -> pd.Series:
    return labels.astype(str).map(lambda t: sum(a == b for a, b in pairwise(t))).astype(np.int32)


def old_is_plate_domain(labels: list[str]) -> bool:
    labels = [t for t in labels if t]
    if not labels:
        return False
    if detect_format(labels) is not None:
        return True
    return sum(t[0] in PROVINCE_GLYPHS for t in labels) >= 0.5 * len(labels)


def old_compare_frames(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    keep = ["path", "label", "pred", "correct", "cer", "confidence"]
    joined = a[keep + ["sample"]].merge(b[keep], on=["path", "label"], suffixes=("_a", "_b"))
    joined["change"] = np.select(
        [~joined["correct_a"] & joined["correct_b"], joined["correct_a"] & ~joined["correct_b"], joined["correct_a"]],
        ["fixed", "broken", "both right"], default="both wrong")
    return joined


# ---- random frames ----------------------------------------------------------------------------------------

def random_text(rng: np.random.Generator) -> str:
    """Mostly plates; sometimes a long text line, an empty label, doubled or non-BMP characters."""
    roll = rng.random()
    if roll < 0.7:
        body = "".join(rng.choice(list(ALPHABET), int(rng.choice([6, 7]))))
        return str(rng.choice(list(PROVINCE_GLYPHS))) + body
    if roll < 0.8:
        return "".join(rng.choice(list(ALPHABET + "  -"), int(rng.integers(10, 40))))
    if roll < 0.85:
        return ""
    if roll < 0.95:
        return "".join(rng.choice(list("AAB11皖皖"), int(rng.integers(1, 9))))
    return "".join(rng.choice(list("𠀀𠀁ab😀"), int(rng.integers(1, 6))))


def misread(text: str, rng: np.random.Generator) -> str:
    """The text with 0-3 random substitutions, insertions and deletions (correct about half the time)."""
    if rng.random() < 0.5:
        return text
    chars = list(text)
    for _ in range(int(rng.integers(1, 4))):
        where = int(rng.integers(0, len(chars) + 1))
        kind = rng.integers(0, 3)
        if kind == 0 and where < len(chars):
            chars[where] = str(rng.choice(list(ALPHABET + "皖ε")))
        elif kind == 1:
            chars.insert(where, str(rng.choice(list(ALPHABET))))
        elif chars:
            del chars[min(where, len(chars) - 1)]
    return "".join(chars)


def random_frame(n: int, seed: int, distinct: int | None = None) -> pd.DataFrame:
    """A score frame of ``n`` random rows (cycling over ``distinct`` (label, reading) pairs when given)."""
    rng = np.random.default_rng(seed)
    labels = [random_text(rng) for _ in range(distinct or n)]
    preds = [misread(t, rng) for t in labels]
    if distinct:
        labels = [labels[i % distinct] for i in range(n)]
        preds = [preds[i % distinct] for i in range(n)]
    table = pd.DataFrame({"path": [f"/data/{i:06d}.png" for i in range(n)], "label": labels, "pred": preds,
                          "confidence": rng.random(n)})
    return build_frame(table)


def storages(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """The frame as built, through a Parquet-like Arrow round trip, and with Python-object strings."""
    text = ["path", "label", "pred", "province"]
    arrow = frame.astype({c: pd.StringDtype("pyarrow", na_value=np.nan) for c in text})
    objects = frame.astype({c: object for c in text})
    return [frame, arrow, objects]


FRAMES = [(n, seed, distinct) for n, seed, distinct in [(3000, 1, None), (2000, 2, 40), (1, 3, None), (0, 4, None)]]


@pytest.fixture(params=FRAMES, ids=lambda p: f"n{p[0]}-seed{p[1]}-distinct{p[2]}")
def frames(request) -> list[pd.DataFrame]:
    return storages(random_frame(*request.param))


# ---- equality with the former code -----------------------------------------------------------------------

def test_edit_table_equals_the_row_by_row_alignment(frames):
    expected = old_edit_table(frames[0])
    for frame in frames:
        got = analysis.edit_table(frame)
        pd.testing.assert_frame_equal(got.astype({c: object for c in ["kind", "true", "pred"]}),
                                      expected.astype({c: object for c in ["kind", "true", "pred"]}))
        assert got["sample"].dtype == np.int32 and got["position"].dtype == np.int32


def test_confusion_table_equals_the_counting_loops(frames):
    edits = old_edit_table(frames[0])
    expected = old_confusion_table(frames[0], edits)
    for frame in frames:
        got = analysis.confusion_table(frame, analysis.edit_table(frame))
        pd.testing.assert_frame_equal(got, expected, check_index_type=False, check_column_type=False)
        assert got.index.name == "true" and got.columns.name == "pred"


def test_position_accuracy_equals_the_per_row_comparison(frames):
    for frame in frames:
        for length in (None, 7, 8, 12, 1):
            if frame.empty and length is not None:
                continue
            pd.testing.assert_frame_equal(analysis.position_accuracy(frame, length),
                                          old_position_accuracy(frames[0], length))


def test_repeats_and_plate_domain_equal_the_python_versions(frames):
    for frame in frames:
        pd.testing.assert_series_equal(analysis.repeats(frame["label"]), old_repeats(frames[0]["label"]),
                                       check_index_type=False)
        assert analysis.is_plate_domain(frame["label"].tolist()) == old_is_plate_domain(frame["label"].tolist())


def test_compare_frames_equals_the_merge(frames):
    rng = np.random.default_rng(9)
    a = frames[0]
    b = a.assign(pred=[t if rng.random() < 0.5 else p for t, p in zip(a["label"], a["pred"])])
    b = b.assign(correct=b["pred"] == b["label"])
    expected = old_compare_frames(a, b)
    for frame_a, frame_b in ((a, b), (storages(a)[2], storages(b)[1])):
        got = analysis.compare_frames(frame_a, frame_b)
        pd.testing.assert_frame_equal(got.astype({"change": object}).reset_index(drop=True),
                                      expected.astype({"change": object}).reset_index(drop=True),
                                      check_dtype=False)
    # Different rows or orders (another dataset listing, a predictions file) still join by path and label.
    shuffled = b.sample(frac=0.8, random_state=1)
    pd.testing.assert_frame_equal(
        analysis.compare_frames(a, shuffled).astype({"change": object}).reset_index(drop=True),
        old_compare_frames(a, shuffled).astype({"change": object}).reset_index(drop=True), check_dtype=False)


# ---- properties of the code points ------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30), st.integers(0, 8))
def test_codepoints_are_the_texts_code_points_padded(texts, width):
    codes = analysis.codepoints(pd.Series(texts, dtype="str"), width)
    assert codes.shape == (len(texts), width)
    for row, text in zip(codes, texts):
        assert row.tolist() == [ord(c) for c in text[:width]] + [0] * (width - len(text[:width]))
    flat, lengths = analysis.flat_codepoints(texts)
    assert lengths.tolist() == [len(t) for t in texts]
    assert flat.tolist() == [ord(c) for c in "".join(texts)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab皖𠀀", max_size=10), max_size=30))
def test_repeats_counts_adjacent_equal_characters(texts):
    assert analysis.repeats(pd.Series(texts)).tolist() == [sum(a == b for a, b in pairwise(t)) for t in texts]
