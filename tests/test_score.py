"""Scoring: the score frame's columns, CER definitions that must agree, greedy and beam decoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.text import CharErrorRate

from ocr_core.checkpoint import load_model
from ocr_core.data.dataset import PlateDataset, load_dataset
from ocr_core.data.sources import Sample
from ocr_core.heads import BLANK_GLYPH
from ocr_core.preprocess import to_model_input
from ocr_core.score import (
    build_score_frame,
    predict_images,
    read_cached_frame,
    sample_probabilities,
    score_dataset,
    summarize,
    telling_columns,
    write_frame_atomic,
)
from ocr_core.vocab import Vocab

REQUIRED_COLUMNS = {"path", "label", "pred", "correct", "cer", "edit_distance", "confidence", "loss", "oov",
                    "source", "height", "width"}

# (label, prediction, edits): substitutions, an insertion, deletions, a correct one and an empty reading.
PAIRS = [
    ("皖AY339S", "豫AY339S", 1),   # substitution
    ("ABC123", "ABXC123", 1),      # insertion
    ("ABCD12", "ACD2", 2),         # two deletions
    ("沪B12345", "沪B12345", 0),    # correct
    ("AB", "", 2),                 # nothing read
    ("Q1", "O1I", 2),              # substitution + insertion
]


def fake_dataset(labels, sizes=None) -> PlateDataset:
    """A dataset with hand-made labels (the images are never looked at by build_score_frame)."""
    n = len(labels)
    samples = [Sample(f"/data/{i:03d}-{label}.png", label, "folder-id") for i, label in enumerate(labels)]
    sizes = np.asarray(sizes if sizes is not None else [(24 + i, 90 + i) for i in range(n)], np.int32)
    return PlateDataset("/data", "folder-id", samples, np.zeros((n, 32, 128, 3), np.uint8), sizes)


def frame_of(pairs, confidence=None) -> pd.DataFrame:
    labels = [p[0] for p in pairs]
    preds = [p[1] for p in pairs]
    n = len(pairs)
    confidence = np.asarray(confidence if confidence is not None else np.linspace(0.9, 0.4, n), np.float32)
    vocab = Vocab.from_labels(labels)
    return build_score_frame(fake_dataset(labels), preds, confidence, np.zeros(n, np.float32), vocab)


def test_score_frame_columns_and_row_values():
    frame = frame_of(PAIRS)
    assert REQUIRED_COLUMNS <= set(frame.columns)
    assert frame["edit_distance"].tolist() == [p[2] for p in PAIRS]
    assert frame["correct"].tolist() == [p[0] == p[1] for p in PAIRS]
    assert frame["label_len"].tolist() == [len(p[0]) for p in PAIRS]
    assert frame["pred_len"].tolist() == [len(p[1]) for p in PAIRS]
    assert frame["province"].tolist() == [p[0][0] for p in PAIRS]
    assert frame["cer"].tolist() == pytest.approx([p[2] / len(p[0]) for p in PAIRS])
    assert frame["height"].tolist() == [24 + i for i in range(len(PAIRS))]
    assert frame["width"].tolist() == [90 + i for i in range(len(PAIRS))]
    assert set(frame["source"]) == {"folder-id"}
    assert frame["sample"].tolist() == list(range(len(PAIRS)))


def test_corpus_cer_agrees_with_edit_sum_and_torchmetrics():
    frame = frame_of(PAIRS)
    summary = summarize(frame)
    by_sum = frame["edit_distance"].sum() / frame["label_len"].sum()
    metric = float(CharErrorRate()([p[1] for p in PAIRS], [p[0] for p in PAIRS]))
    assert summary.cer == pytest.approx(by_sum, abs=1e-6)
    assert summary.cer == pytest.approx(metric, abs=1e-6)
    assert summary.cer == pytest.approx(sum(p[2] for p in PAIRS) / sum(len(p[0]) for p in PAIRS), abs=1e-6)
    # The corpus figure is not the mean of the per-sample CERs on this set.
    assert abs(summary.cer - frame["cer"].mean()) > 0.01
    assert summary.n == len(PAIRS)
    assert summary.accuracy == pytest.approx(1 / len(PAIRS))
    assert summary.line() == f"n={len(PAIRS)} accuracy={summary.accuracy:.4f} cer={summary.cer:.4f}"


def test_summarize_empty_frame():
    frame = frame_of(PAIRS).iloc[:0]
    summary = summarize(frame)
    assert summary.n == 0 and np.isnan(summary.cer)


def test_oov_column_uses_the_model_vocabulary():
    labels = ["皖A1", "豫A1"]
    frame = build_score_frame(fake_dataset(labels), ["", ""], np.ones(2, np.float32), np.zeros(2, np.float32),
                              Vocab("皖A1"))
    assert frame["oov"].tolist() == [False, True]


# ---- decoding -----------------------------------------------------------------------------------------

def test_telling_columns_keep_what_passes_the_threshold_and_the_label():
    probs = np.array([[0.7, 0.2, 0.1, 0.0, 0.0], [0.1, 0.05, 0.0, 0.8, 0.05]])
    glyphs = ["∅", "A", "B", "C", "D"]
    assert telling_columns(probs, glyphs, threshold=0.15) == [3, 0, 1]
    # A label character is drawn even where the model never considered it.
    assert telling_columns(probs, glyphs, must="D", threshold=0.15) == [3, 0, 1, 4]
    assert telling_columns(probs, glyphs, must="DX", threshold=0.5) == [3, 0, 4]


# ---- with a model ---------------------------------------------------------------------------------------

def test_score_dataset_and_sample_probabilities(tmp_path, make_images, tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    labels = ["皖AY339S", "沪C8GK31", "ABC123", "豫A00001", "AAA111"]
    folder = tmp_path / "d"
    make_images(folder, labels, naming="id", size=(24, 94))
    dataset = load_dataset(folder)
    calls = []
    frame = score_dataset(loaded, dataset, batch_size=2,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (5, 5) and len(calls) == 3
    assert REQUIRED_COLUMNS <= set(frame.columns)
    assert frame["label"].tolist() == dataset.labels
    assert set(frame["height"]) == {24} and set(frame["width"]) == {94}
    # An untrained model's best-path probability may underflow to 0 in float32; it never leaves [0, 1].
    assert ((frame["confidence"] >= 0) & (frame["confidence"] <= 1)).all()
    assert np.isfinite(frame["loss"]).all() and (frame["loss"] > 0).all()
    assert frame["oov"].tolist() == [False, False, False, True, False]
    # Batching does not change the readings.
    preds, conf = predict_images(loaded, dataset.images, batch_size=5)
    assert preds == frame["pred"].tolist()
    assert np.allclose(conf, frame["confidence"], rtol=1e-4)

    probs = sample_probabilities(loaded, dataset.images[0])
    with torch.no_grad():
        t = loaded.model(to_model_input(dataset.images[:1], loaded.input)).shape[1]
    assert probs.shape == (t, loaded.vocab.num_classes)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    matrix, glyphs = loaded.head.glyph_matrix(probs)
    assert matrix is probs
    assert glyphs[0] == BLANK_GLYPH and "".join(glyphs[1:]) == loaded.vocab.chars
    assert vocab_greedy(probs, loaded.vocab) == frame["pred"].iloc[0]


def vocab_greedy(probs: np.ndarray, vocab: Vocab) -> str:
    return vocab.ctc_collapse(probs.argmax(axis=1).tolist())


def test_frame_parquet_round_trip(tmp_path):
    frame = frame_of(PAIRS)
    path = tmp_path / "cache" / "s.parquet"
    write_frame_atomic(frame, path, meta={"checkpoint": "x.pt"})
    back = read_cached_frame(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert path.with_suffix(".json").is_file()
    path.write_bytes(b"broken")
    assert read_cached_frame(path) is None
