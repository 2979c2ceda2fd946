"""Error analysis on hand-made score frames: alignment, confusions, slices, filters, comparisons, ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocr_core import analysis
from ocr_core.analysis import EPSILON, Edit
from ocr_core.data.dataset import PlateDataset
from ocr_core.data.sources import Sample
from ocr_core.score import build_score_frame
from ocr_core.vocab import Vocab

# (label, prediction, confidence). Every expected figure below is worked out by hand from this table.
ROWS = [
    ("皖A123", "豫A123", 0.90),   # 0: province 皖 -> 豫
    ("皖AO23", "皖AQ23", 0.95),   # 1: O -> Q at position 3
    ("皖B023", "皖BD23", 0.50),   # 2: 0 -> D at position 3
    ("沪AO55", "沪AQ55", 0.20),   # 3: O -> Q again, another sample
    ("沪A1X3", "沪A13", 0.30),    # 4: deletion X -> ε
    ("沪A123", "沪A1X23", 0.60),  # 5: insertion ε -> X
    ("皖A777", "皖A777", 0.99),   # 6: correct
    ("皖K88", "皖K88", 0.80),     # 7: correct, length 4
    ("沪K89", "沪K8", 0.10),      # 8: deletion 9 -> ε, length 4
]


def make_frame(rows=ROWS) -> pd.DataFrame:
    labels = [r[0] for r in rows]
    n = len(rows)
    samples = [Sample(f"/d/{i:03d}-{r[0]}.png", r[0], "folder-id") for i, r in enumerate(rows)]
    dataset = PlateDataset("/d", "folder-id", samples, np.zeros((n, 32, 128, 3), np.uint8),
                           np.tile(np.array([[24, 94]], np.int32), (n, 1)))
    return build_score_frame(dataset, [r[1] for r in rows], np.array([r[2] for r in rows], np.float32),
                             np.zeros(n, np.float32), Vocab.from_labels(labels))


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def edits(frame) -> pd.DataFrame:
    return analysis.edit_table(frame)


def ids(rows: pd.DataFrame) -> list[int]:
    return sorted(rows["sample"].tolist())


# ---- alignment ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("label,pred,expected", [
    ("ABO1", "ABQ1", [Edit("substitution", "O", "Q", 2)]),
    ("A0B", "ADB", [Edit("substitution", "0", "D", 1)]),
    ("皖A123", "豫A123", [Edit("substitution", "皖", "豫", 0)]),
    ("AB12", "AB1X2", [Edit("insertion", EPSILON, "X", 3)]),
    ("ABX3", "AB3", [Edit("deletion", "X", EPSILON, 2)]),
    ("AB12", "AB12", []),
])
def test_align_hand_made_pairs(label, pred, expected):
    assert analysis.align(label, pred) == expected


def test_aligned_pairs_cover_the_whole_reading():
    assert analysis.aligned_pairs("AB12", "AB1X2") == [
        ("equal", "A", "A"), ("equal", "B", "B"), ("equal", "1", "1"), ("insertion", EPSILON, "X"),
        ("equal", "2", "2"),
    ]
    assert analysis.aligned_pairs("ABX3", "AB3") == [
        ("equal", "A", "A"), ("equal", "B", "B"), ("deletion", "X", EPSILON), ("equal", "3", "3"),
    ]
    assert analysis.aligned_pairs("皖AO2", "豫AQ2") == [
        ("substitution", "皖", "豫"), ("equal", "A", "A"), ("substitution", "O", "Q"), ("equal", "2", "2"),
    ]
    # Every label character appears once on the true side, every predicted one once on the pred side.
    pairs = analysis.aligned_pairs("沪A1X3", "沪AB13Z")
    assert "".join(t for _, t, _ in pairs if t != EPSILON) == "沪A1X3"
    assert "".join(p for _, _, p in pairs if p != EPSILON) == "沪AB13Z"


def test_edit_table(edits):
    assert len(edits) == 7
    assert set(edits["sample"]) == {0, 1, 2, 3, 4, 5, 8}
    row5 = edits[edits["sample"] == 5].iloc[0]
    assert (row5["kind"], row5["true"], row5["pred"]) == ("insertion", EPSILON, "X")


def test_error_type_counts(edits):
    counts = analysis.error_type_counts(edits)
    assert counts.to_dict() == {"substitution": 4, "insertion": 1, "deletion": 2}
    empty = analysis.edit_table(make_frame([("AB", "AB", 0.5)]))
    assert analysis.error_type_counts(empty).to_dict() == {"substitution": 0, "insertion": 0, "deletion": 0}


# ---- confusion -------------------------------------------------------------------------------------

def test_confusion_table_counts(frame, edits):
    table = analysis.confusion_table(frame, edits)
    assert table.index[-1] == EPSILON and table.columns[-1] == EPSILON
    assert list(table.index) == list(table.columns)
    assert table.loc["O", "Q"] == 2
    assert table.loc["O", "O"] == 0
    assert table.loc["0", "D"] == 1
    assert table.loc["皖", "豫"] == 1
    assert table.loc["皖", "皖"] == 4  # five 皖 labels, one read as 豫
    assert table.loc[EPSILON, "X"] == 1
    assert table.loc["X", EPSILON] == 1
    assert table.loc["9", EPSILON] == 1
    assert table.loc["A", "A"] == 6  # every A of the labels (rows 0, 1, 3, 4, 5, 6) was read
    assert table.loc["3", "3"] == 5
    assert table.loc[EPSILON, EPSILON] == 0
    # Rows sum to how often a character is in the labels; columns to how often it was read.
    labels = "".join(frame["label"])
    preds = "".join(frame["pred"])
    for c in table.index.drop(EPSILON):
        assert table.loc[c].sum() == labels.count(c), c
        assert table[c].sum() == preds.count(c), c
    # Diagonal = matched characters = label characters minus edits.
    assert np.trace(table.to_numpy()) == len(labels) - (len(edits) - 1)  # the insertion costs no label char
    # Same table when the edits are computed internally.
    pd.testing.assert_frame_equal(analysis.confusion_table(frame), table)


def test_top_confusions_ranking(edits):
    top = analysis.top_confusions(edits)
    first = top.iloc[0]
    assert (first["true"], first["pred"], first["count"], first["samples"]) == ("O", "Q", 2, 2)
    assert first["kind"] == "substitution" and first["group"] == "letter→letter"
    assert top["count"].tolist() == sorted(top["count"].tolist(), reverse=True)
    groups = {(t, p): g for t, p, g in zip(top["true"], top["pred"], top["group"])}
    assert groups[("皖", "豫")] == "province→province"
    assert groups[("0", "D")] == "digit→letter"
    assert groups[(EPSILON, "X")] == "epsilon→letter"
    assert groups[("9", EPSILON)] == "digit→epsilon"
    assert len(top) == 6
    assert len(analysis.top_confusions(edits, n=2)) == 2
    assert analysis.top_confusions(edits.iloc[:0]).empty


def test_samples_with_confusion(frame, edits):
    assert ids(analysis.samples_with_confusion(frame, edits, "O", "Q")) == [1, 3]
    assert ids(analysis.samples_with_confusion(frame, edits, "Q", "O")) == []


# ---- slices ----------------------------------------------------------------------------------------

def test_position_accuracy(frame):
    table = analysis.position_accuracy(frame)  # the most common length is 5 (rows 0-6)
    assert table["position"].tolist() == [1, 2, 3, 4, 5]
    assert set(table["n"]) == {7}
    # Rows 4 and 5 read 4 and 6 characters: no position counts for them.
    assert table["accuracy"].tolist() == pytest.approx([4 / 7, 5 / 7, 2 / 7, 5 / 7, 5 / 7])
    four = analysis.position_accuracy(frame, length=4)
    assert four["accuracy"].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert set(four["n"]) == {2}


def test_accuracy_by_province(frame):
    table = analysis.accuracy_by(frame, "province").set_index("province")
    assert table.loc["皖", "n"] == 5 and table.loc["皖", "accuracy"] == pytest.approx(2 / 5)
    assert table.loc["沪", "n"] == 4 and table.loc["沪", "accuracy"] == pytest.approx(0.0)
    assert table.loc["沪", "cer"] == pytest.approx((0.2 + 0.2 + 0.2 + 1 / 4) / 4)
    assert list(table.index) == ["皖", "沪"]  # larger group first
    with pytest.raises(KeyError):
        analysis.accuracy_by(frame, "nope")


def test_accuracy_by_numeric_bins(frame):
    frame = frame.assign(brightness=[10, 20, 30, 40, 50, 60, 70, 80, 90])
    binned = analysis.accuracy_by(frame, "brightness", bins=3)
    assert len(binned) == 3 and binned["n"].sum() == 9
    assert len(analysis.accuracy_by(frame, "brightness")) == 9


# ---- filters ---------------------------------------------------------------------------------------

def test_filter_frame_no_filter_keeps_everything(frame, edits):
    assert ids(analysis.filter_frame(frame, edits)) == list(range(9))


@pytest.mark.parametrize("kwargs,expected", [
    ({"provinces": ["沪"]}, [3, 4, 5, 8]),
    ({"lengths": [4]}, [7, 8]),
    ({"error_types": ["insertion"]}, [5]),
    ({"error_types": ["deletion"]}, [4, 8]),
    ({"confusion": ("O", "Q")}, [1, 3]),
    ({"cer_range": (0.0, 0.0)}, [6, 7]),
    ({"cer_range": (0.21, 1.0)}, [8]),
    ({"confidence_range": (0.85, 1.0)}, [0, 1, 6]),
    ({"correctness": "correct"}, [6, 7]),
    ({"correctness": "wrong"}, [0, 1, 2, 3, 4, 5, 8]),
    ({"confident_wrong": 0.85}, [0, 1]),
    ({"provinces": ["皖"], "correctness": "wrong", "confidence_range": (0.6, 1.0)}, [0, 1]),
])
def test_filter_frame_each_filter(frame, edits, kwargs, expected):
    assert ids(analysis.filter_frame(frame, edits, **kwargs)) == expected


# ---- comparison and ranking ---------------------------------------------------------------------------

def test_compare_frames_fixed_and_broken(frame):
    rows_b = list(ROWS)
    rows_b[0] = ("皖A123", "皖A123", 0.9)   # fixed
    rows_b[6] = ("皖A777", "皖A77", 0.9)    # broken
    b = make_frame(rows_b)
    joined = analysis.compare_frames(frame, b)
    assert len(joined) == 9
    change = dict(zip(joined["sample"], joined["change"]))
    assert change[0] == "fixed" and change[6] == "broken" and change[7] == "both right"
    assert {change[i] for i in (1, 2, 3, 4, 5, 8)} == {"both wrong"}
    row6 = joined[joined["sample"] == 6].iloc[0]
    assert (row6["pred_a"], row6["pred_b"]) == ("皖A777", "皖A77")

    delta = analysis.delta_by(frame, b, "province").set_index("province")
    assert delta.loc["皖", "delta"] == pytest.approx(0.0)  # one fixed, one broken
    assert delta.loc["沪", "delta"] == pytest.approx(0.0)
    cdelta = analysis.confusion_delta(analysis.edit_table(frame), analysis.edit_table(b))
    pairs = {(t, p): d for t, p, d in zip(cdelta["true"], cdelta["pred"], cdelta["delta"])}
    assert pairs == {("皖", "豫"): -1, ("7", EPSILON): 1}


def test_rank_worst_cer_then_confidence(frame):
    ranked = analysis.rank_worst(frame)
    # CER 1/4 first, then the CER 0.2 rows by confidence (highest first), then the correct ones.
    assert ranked["sample"].tolist() == [8, 1, 0, 5, 2, 4, 3, 6, 7]


def test_glyph_group():
    assert [analysis.glyph_group(c) for c in ["皖", "A", "7", EPSILON, "ж"]] == [
        "province", "letter", "digit", "epsilon", "other"]


def test_cer_histogram_counts_every_sample_once():
    cer = pd.Series([0.0, 0.0, 0.1, 0.5, 1.0, 1.6])
    table = analysis.cer_histogram(cer, bins=4)
    assert table["samples"].sum() == len(cer)
    assert table["range"].iloc[-1] == "1.20–1.60"  # stretched to the largest CER when it exceeds 1
    assert table["samples"].tolist() == [3, 1, 1, 1]
    assert analysis.cer_histogram(pd.Series([0.0, 0.25]), bins=4)["range"].iloc[-1] == "0.75–1.00"
    assert analysis.cer_histogram(pd.Series([], dtype=float), bins=5)["samples"].sum() == 0


def test_text_line_domain_repeats_and_time_steps():
    plates = ["皖AY339S", "沪C8GK31", "京A12345"]
    captchas = ["226md", "3bfnn", "ffxyn"]
    assert analysis.is_plate_domain(plates) and not analysis.is_plate_domain(captchas)
    assert analysis.glyph_groups("".join(plates)) == ["province", "letter", "digit"]
    assert analysis.glyph_groups("".join(captchas)) == ["letter", "digit"]
    assert analysis.glyph_group("漢") == "cjk"
    frame = pd.DataFrame({"sample": [0, 1, 2], "label": captchas, "label_len": [5, 5, 5], "pred": captchas,
                          "cer": [0.0] * 3, "confidence": [1.0] * 3, "correct": [True] * 3})
    assert analysis.repeats(frame["label"]).tolist() == [1, 1, 1]
    assert analysis.repeats(pd.Series(["aaa", "abc"])).tolist() == [2, 0]
    # 5 characters with one doubled need 6 steps: a 5-step model can read none of them, a 6-step one all.
    assert analysis.needs_more_steps(frame, 5).tolist() == [True, True, True]
    assert not analysis.needs_more_steps(frame, 6).any()
    edits = analysis.edit_table(frame)
    assert len(analysis.filter_frame(frame, edits, doubled="with")) == 3
    assert len(analysis.filter_frame(frame, edits, doubled="without")) == 0
    assert len(analysis.filter_frame(frame, edits, beyond_steps=6)) == 0
