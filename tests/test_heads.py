"""Heads own decoding, confidences, losses and probability matrices; input settings own preprocessing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ocr_core.data.image_io import resize_to_input
from ocr_core.heads import BLANK_GLYPH, RESERVED_GLYPH, CTCHead, FixedHead, head_for_labels, head_from_dict
from ocr_core.preprocess import InputSpec, preview, to_model_input


def _peaked(path: list[int], classes: int, peak: float = 0.9) -> np.ndarray:
    probs = np.full((len(path), classes), (1 - peak) / (classes - 1), np.float64)
    probs[np.arange(len(path)), path] = peak
    return probs


def _log(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.log(probs))[None]


# ---- CTC ----------------------------------------------------------------------------------------------

def test_ctc_greedy_decode_collapses_best_path():
    head = CTCHead("ABC")
    path = [1, 1, 0, 1, 2, 0, 0, 3, 3, 0]
    preds, confidence = head.decode(_log(_peaked(path, head.num_classes)))
    assert preds == ["AABC"]
    assert confidence[0] == pytest.approx(0.9 ** len(path), rel=1e-5)


def test_ctc_token_layout_with_reserved_ids_and_blank_at_the_end():
    # Seed 001's layout: blank 0, OOV 1, PAD 2, characters from 3.
    head = CTCHead("AB", blank=0, first=3)
    assert head.num_classes == 5
    assert head.decode(_log(_peaked([3, 0, 1, 4, 2, 4], 5)))[0] == ["ABB"]  # reserved ids read as nothing
    assert head.glyph_matrix(np.zeros((1, 5)))[1] == [BLANK_GLYPH, RESERVED_GLYPH, RESERVED_GLYPH, "A", "B"]
    at_end = CTCHead("AB", blank=2, first=0)
    assert at_end.num_classes == 3
    assert at_end.decode(_log(_peaked([0, 2, 0, 1, 1], 3)))[0] == ["AAB"]
    with pytest.raises(ValueError, match="blank"):
        CTCHead("AB", blank=1, first=0)


def test_ctc_beam_first_reading_is_greedy_on_peaked_distribution():
    head = CTCHead("ABC")
    probs = _peaked([0, 1, 1, 0, 1, 2, 2, 0, 3, 0], head.num_classes, peak=0.85)
    greedy, conf = head.decode(_log(probs))
    readings = head.alternatives(probs, n=3, beam_width=4)
    assert readings[0][0] == greedy[0] == "AABC"
    # A reading's probability sums over all its paths, so it is at least its best path's.
    assert readings[0][1] >= conf[0] - 1e-9
    assert len({r for r, _ in readings}) == 3
    assert [p for _, p in readings] == sorted((p for _, p in readings), reverse=True)


def test_ctc_beam_sums_paths_where_greedy_cannot():
    # The best path is blank, blank (0.55 each), but "A" collects more mass over its three paths.
    head = CTCHead("A")
    probs = np.array([[0.55, 0.45], [0.55, 0.45]])
    assert head.decode(_log(probs))[0] == [""]
    readings = dict(head.alternatives(probs, n=2, beam_width=4))
    assert readings["A"] == pytest.approx(1 - 0.55 ** 2)
    assert readings[""] == pytest.approx(0.55 ** 2)


def test_ctc_losses_nan_when_label_cannot_fit_and_time_step_check():
    head = CTCHead("AB")
    log_probs = torch.full((2, 3, 3), 1 / 3).log()
    losses = head.sample_losses(log_probs, ["A", "ABABAB"])
    assert np.isfinite(losses[0]) and losses[0] > 0
    assert np.isnan(losses[1])
    # A doubled character needs a blank between its copies.
    assert head.unreadable("AAB", 4) == ""
    assert "needs 4 time steps" in head.unreadable("AAB", 3)


# ---- fixed positions -----------------------------------------------------------------------------------

def _fixed() -> FixedHead:
    return FixedHead("AB12", positions=3, first_chars="皖沪")


def test_fixed_head_masks_padding_columns_and_decodes_per_position():
    head = _fixed()
    assert head.output_classes == (2, 4, 4)
    assert head.vocab.chars == "皖沪AB12"
    logits = torch.full((1, 3, 4), -5.0)
    logits[0, 0, 3] = 50.0  # a padding column of position 0: must never be read
    logits[0, 0, 1] = 4.0   # 沪
    logits[0, 1, 2] = 4.0   # 1
    logits[0, 2, 0] = 4.0   # A
    log_probs = head.log_probs(logits)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(1, 3))
    preds, confidence = head.decode(log_probs)
    assert preds == ["沪1A"]
    assert 0 < confidence[0] <= 1
    matrix, glyphs = head.glyph_matrix(log_probs.exp()[0].numpy())
    assert glyphs == list("皖沪AB12")
    assert matrix[0, glyphs.index("沪")] == pytest.approx(float(log_probs.exp()[0, 0, 1]))
    assert matrix[0, glyphs.index("A")] == 0  # position 0 cannot be a letter


def test_fixed_head_losses_and_unrepresentable_labels():
    head = _fixed()
    logits = torch.randn(3, 3, 4)
    losses = head.sample_losses(head.log_probs(logits), ["沪1A", "A1A", "沪1AB"])
    assert np.isfinite(losses[0]) and losses[0] > 0
    assert np.isnan(losses[1]) and np.isnan(losses[2])
    expected = -sum(float(head.log_probs(logits)[0, p, i]) for p, i in enumerate([1, 2, 0]))
    assert losses[0] == pytest.approx(expected, rel=1e-5)
    assert "exactly 3" in head.unreadable("沪1AB", 0)
    assert "position 1" in head.unreadable("A1A", 0)
    assert float(head.training_loss(logits, ["A1A", "x"])) == 0.0  # nothing representable: no NaN


def test_fixed_head_alternatives_are_the_best_combinations():
    head = FixedHead("AB", positions=2)
    probs = np.array([[0.6, 0.4], [0.7, 0.3]])
    readings = head.alternatives(probs, n=3)
    assert [r for r, _ in readings] == ["AA", "BA", "AB"]
    assert readings[0][1] == pytest.approx(0.42)


@pytest.mark.parametrize("head", [CTCHead("AB1"), _fixed()])
def test_training_loss_falls_for_every_head(head):
    torch.manual_seed(0)
    labels = ["沪1A", "皖B2", "沪2B", "皖AA"] if head.kind == "fixed" else ["AB1", "1BA", "B1", "AAB"]
    width = max(head.output_classes) if head.kind == "fixed" else head.output_classes
    steps = head.positions if head.kind == "fixed" else 8
    logits = torch.zeros(len(labels), steps, width, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    first = float(head.training_loss(logits, labels).detach())
    for _ in range(30):
        optimizer.zero_grad()
        loss = head.training_loss(logits, labels)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first / 4
    assert head.decode(head.log_probs(logits.detach()))[0] == labels


def test_heads_round_trip_through_checkpoint_metadata():
    for head in (CTCHead("AB", blank=0, first=3, extra=1), _fixed()):
        assert head_from_dict(head.to_dict()) == head
    with pytest.raises(ValueError, match="unknown head type"):
        head_from_dict({"type": "attention"})
    with pytest.raises(ValueError, match="no 'positions'"):
        head_from_dict({"type": "fixed", "chars": "AB"})


def test_head_for_labels_splits_the_first_position():
    head = head_for_labels("fixed", ["皖A1", "沪B2", "皖AB"], separate_first=True)
    assert isinstance(head, FixedHead)
    assert head.positions == 3 and head.first_chars == "沪皖" and head.chars == "12AB"
    assert head_for_labels("ctc", ["AB", "C"]) == CTCHead("ABC")


# ---- input settings ------------------------------------------------------------------------------------

def test_to_model_input_grey_and_normalized():
    crops = np.zeros((2, 8, 16, 3), np.uint8)
    crops[0, :, :, 0] = 255  # pure red
    grey = to_model_input(crops, InputSpec(1, 8, 16, scale=1.0))
    assert grey.shape == (2, 1, 8, 16) and grey.dtype == torch.float32
    assert float(grey[0, 0, 0, 0]) == round(0.299 * 255)
    spec = InputSpec(3, 8, 16, scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x = to_model_input(crops, spec)
    assert float(x[0, 0, 0, 0]) == pytest.approx((1.0 - 0.5) / 0.25)
    assert float(x[0, 1, 0, 0]) == pytest.approx(-2.0)
    shown = preview(crops[0], InputSpec(1, 8, 16))
    assert shown.shape == (8, 16, 3) and (shown[..., 0] == shown[..., 1]).all()


@pytest.mark.parametrize("bad", [
    {"channels": 2}, {"height": 0}, {"width": 100_000}, {"height": 32.5}, {"scale": float("nan")},
    {"std": (0.0,)}, {"mean": (0.1, 0.2)}, {"resize": "crop"}, {"upscale": "nearest"},
])
def test_input_spec_refuses_out_of_range_settings(bad):
    with pytest.raises(ValueError):
        InputSpec(**bad)
    with pytest.raises(ValueError):
        InputSpec.from_dict({**InputSpec().to_dict(), **{k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in bad.items()}})


def test_upscale_travels_with_the_input_settings_and_enlarges_small_crops_only():
    spec = InputSpec(upscale="cubic")
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.with_size(64, 320).upscale == "cubic"
    # A checkpoint written before the setting existed reads as linear, what it was trained with.
    assert InputSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "upscale"}).upscale == "linear"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (24, 94, 3), dtype=np.uint8)
    linear, cubic = resize_to_input(small, 32, 128, "linear"), resize_to_input(small, 32, 128, "cubic")
    assert np.array_equal(cubic, cv2.resize(small, (128, 32), interpolation=cv2.INTER_CUBIC))
    assert np.array_equal(linear, cv2.resize(small, (128, 32), interpolation=cv2.INTER_LINEAR))
    # Cubic overshoots at edges: a sharper enlargement, with more contrast between neighbouring pixels.
    assert np.abs(np.diff(cubic.astype(int), axis=1)).mean() > np.abs(np.diff(linear.astype(int), axis=1)).mean()
    large = rng.integers(0, 256, (50, 200, 3), dtype=np.uint8)
    assert np.array_equal(resize_to_input(large, 32, 128, "cubic"), resize_to_input(large, 32, 128, "linear"))


# ---- text formats and constrained decoding ---------------------------------------------------------------

def test_formats_detect_and_count_violations():
    from ocr_core.formats import detect_format, resolve_format, violations

    assert detect_format(["皖AY339S", "沪C8GK31", "京A12345"]) == "cn-blue"
    assert detect_format(["皖AY339S", "沪AD12345"] * 20) == "cn"
    assert detect_format(["A123BC77", "K001MM199"]) == "ru"
    assert detect_format(["226md", "3bfnd"]) is None
    assert violations(["皖AY339S", "AY339S", "皖AY33"], "cn") == [False, True, True]
    assert resolve_format("none", "cn") is None
    assert resolve_format("auto", None, ["皖AY339S"]) == "cn-blue"
    assert resolve_format("auto", "ru", ["皖AY339S"]) == "ru"
    with pytest.raises(ValueError, match="regular expression"):
        resolve_format("[A-", None)


def test_constrained_ctc_decoding_picks_the_best_reading_that_follows_the_format():
    from ocr_core.formats import compile_format

    head = CTCHead("AB12")
    # Greedy reads "1B1" (a digit first); the format wants a letter first, and "AB1" has some mass.
    probs = np.full((5, 5), 0.01)
    probs[0, [3, 1]] = [0.55, 0.40]   # 1 or A
    probs[1, 0] = 0.96                # blank
    probs[2, 2] = 0.96                # B
    probs[3, 0] = 0.96
    probs[4, 3] = 0.96                # 1
    probs /= probs.sum(axis=1, keepdims=True)
    assert head.decode(_log(probs))[0] == ["1B1"]
    preds, conf = head.decode_constrained(_log(probs), compile_format("[AB][AB12][12]"))
    assert preds == ["AB1"] and 0 < conf[0] < 0.5
    # Nothing can follow the format: the unconstrained reading stays.
    assert head.decode_constrained(_log(probs), compile_format("[AB]{4}"))[0] == ["1B1"]


def test_constrained_fixed_decoding_uses_per_position_sets():
    from ocr_core.formats import compile_format

    head = FixedHead("AB12", positions=2)
    logits = torch.tensor([[[0.5, 0.0, 3.0, 0.0], [2.0, 0.0, 0.0, 0.0]]])  # "1A" unconstrained
    assert head.decode(head.log_probs(logits))[0] == ["1A"]
    assert head.decode_constrained(head.log_probs(logits), compile_format("[AB][AB12]"))[0] == ["AA"]


def test_constrained_beam_prunes_prefixes_that_cannot_match():
    from ocr_core.formats import compile_format

    head = CTCHead("A1XY")  # ids: blank 0, A 1, "1" 2, X 3, Y 4
    probs = np.array([[1e-6, 0.20, 1e-6, 0.42, 0.38],
                      [1e-6, 1e-6, 0.50, 0.30, 0.20]])
    probs /= probs.sum(axis=1, keepdims=True)
    # Unpruned, a beam of 3 keeps X1, Y1 and X after two steps and loses A1; pruned, X and Y never start.
    preds, _ = head.decode_constrained(_log(probs), compile_format("A1"), beam_width=3)
    assert preds == ["A1"]
