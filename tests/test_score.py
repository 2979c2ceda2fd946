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
from ocr_core.score import (
    BLANK_GLYPH,
    beam_readings,
    build_score_frame,
    ctc_losses,
    greedy_decode,
    predict_images,
    read_cached_frame,
    score_dataset,
    summarize,
    timestep_probs,
    top_classes,
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

def _peaked(path: list[int], classes: int, peak: float = 0.9) -> np.ndarray:
    probs = np.full((len(path), classes), (1 - peak) / (classes - 1), np.float64)
    probs[np.arange(len(path)), path] = peak
    return probs


def test_greedy_decode_collapses_best_path():
    vocab = Vocab("ABC")
    path = [1, 1, 0, 1, 2, 0, 0, 3, 3, 0]
    probs = _peaked(path, vocab.num_classes)
    preds, confidence = greedy_decode(torch.from_numpy(np.log(probs))[None], vocab)
    assert preds == [vocab.ctc_collapse(path)] == ["AABC"]
    assert confidence[0] == pytest.approx(0.9 ** len(path), rel=1e-5)


def test_beam_first_reading_is_greedy_on_peaked_distribution():
    vocab = Vocab("ABC")
    path = [0, 1, 1, 0, 1, 2, 2, 0, 3, 0]
    probs = _peaked(path, vocab.num_classes, peak=0.85)
    greedy, conf = greedy_decode(torch.from_numpy(np.log(probs))[None], vocab)
    readings = beam_readings(probs, vocab, beam_width=4, n=3)
    assert readings[0][0] == greedy[0] == "AABC"
    # A reading's probability sums over all its paths, so it is at least its best path's.
    assert readings[0][1] >= conf[0] - 1e-9
    assert len(readings) == 3
    assert len({r for r, _ in readings}) == 3
    assert [p for _, p in readings] == sorted((p for _, p in readings), reverse=True)


def test_beam_sums_paths_where_greedy_cannot():
    # The best path is blank, blank (0.55 each), but "A" collects more mass over its three paths.
    vocab = Vocab("A")
    probs = np.array([[0.55, 0.45], [0.55, 0.45]])
    greedy, _ = greedy_decode(torch.from_numpy(np.log(probs))[None], vocab)
    readings = dict(beam_readings(probs, vocab, beam_width=4, n=2))
    assert greedy == [""]
    # P("") = 0.55^2 = 0.3025; P("A") = 1 - 0.3025 = 0.6975.
    assert readings["A"] == pytest.approx(1 - 0.55 ** 2)
    assert readings[""] == pytest.approx(0.55 ** 2)


def test_top_classes_orders_by_peak_probability():
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.05, 0.05, 0.8]])
    assert top_classes(probs, k=1) == [3, 0]
    assert top_classes(probs, k=2) == [3, 0, 1]


def test_ctc_losses_nan_when_label_cannot_fit():
    vocab = Vocab("AB")
    log_probs = torch.full((2, 3, 3), 1 / 3).log()
    losses = ctc_losses(log_probs, ["A", "ABABAB"], vocab)
    assert np.isfinite(losses[0]) and losses[0] > 0
    assert np.isnan(losses[1])


# ---- with a model ---------------------------------------------------------------------------------------

def test_score_dataset_and_timestep_probs(tmp_path, make_images, tiny_checkpoint):
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

    probs, glyphs = timestep_probs(loaded, dataset.images[0])
    with torch.no_grad():
        t = loaded.model(torch.from_numpy(dataset.images[:1]).permute(0, 3, 1, 2)).shape[1]
    assert probs.shape == (t, loaded.vocab.num_classes)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
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
