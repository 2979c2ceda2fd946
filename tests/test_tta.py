"""Test-time augmentation: shifted views of each crop, and the vote that rescored readings win."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ocr_core.checkpoint import load_model
from ocr_core.cli import main
from ocr_core.data.dataset import load_dataset
from ocr_core.frame import SCHEMA_VERSION, scoring_record
from ocr_core.heads import CTCHead
from ocr_core.preprocess import InputSpec
from ocr_core.score import TTA_SHIFTS, run_batch, score_dataset, shift_columns, tta_views

from conftest import SHIPPED_DEMO

REAL_PLATES = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-plates"
CHARS = "AB12"


def test_shift_columns_moves_the_content_and_repeats_the_edge() -> None:
    images = np.arange(5, dtype=np.uint8).reshape(1, 1, 5, 1).repeat(2, axis=1)
    right = shift_columns(images, 2)[0, 0, :, 0].tolist()
    left = shift_columns(images, -1)[0, 0, :, 0].tolist()
    assert right == [0, 0, 0, 1, 2]
    assert left == [1, 2, 3, 4, 4]
    assert shift_columns(images, 0) is images


def test_tta_views_move_whole_pixels_at_least_one_and_never_twice_the_same() -> None:
    wide = np.zeros((2, 32, 128, 3), np.uint8)
    views = tta_views(wide)
    assert len(views) == len(TTA_SHIFTS) + 1
    assert views[0] is wide
    # On a 20-px crop every shift rounds to one pixel: one view per direction.
    narrow = np.arange(20, dtype=np.uint8).reshape(1, 1, 20, 1)
    assert len(tta_views(narrow)) == 3


class Scripted(nn.Module):
    """A stand-in model that returns the next of its logits on every call, whatever the images."""

    def __init__(self, outputs: list[torch.Tensor]) -> None:
        super().__init__()
        self.outputs = outputs
        self.calls = 0

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.outputs[self.calls % len(self.outputs)]
        self.calls += 1
        return out[: batch.shape[0]]


def ctc_logits(path: list[int], sure: float) -> torch.Tensor:
    out = torch.zeros(1, len(path), 1 + len(CHARS))
    for t, c in enumerate(path):
        out[0, t, c] = sure
    return out


def test_the_views_outvote_a_reading_only_the_unshifted_crop_prefers() -> None:
    head = CTCHead(CHARS)  # blank 0, A 1, B 2, 1 3, 2 4
    unsure_a = ctc_logits([1, 0, 3, 0], 1.0)  # "A1", barely
    sure_b = ctc_logits([2, 0, 3, 0], 6.0)  # "B1"
    images = np.zeros((1, 32, 128, 3), np.uint8)
    views = len(tta_views(images))
    cpu = torch.device("cpu")

    plain = run_batch(Scripted([unsure_a]), head, InputSpec(), images, cpu, ["A1"])
    voted = run_batch(Scripted([unsure_a] + [sure_b] * (views - 1)), head, InputSpec(), images, cpu, ["A1"], tta=True)
    assert plain.preds == ["A1"]
    assert voted.preds == ["B1"]
    # The label's loss and label-issue score are the unshifted crop's, as without the vote: that view finds
    # the label more probable than the voted reading, so the score drops below 0.
    np.testing.assert_allclose(voted.loss, plain.loss)
    assert plain.label_issue[0] == 0 > voted.label_issue[0]
    assert 0 < voted.confidence[0] < 1

    # With one dissenting view among agreeing ones, the agreeing reading stands.
    kept = run_batch(Scripted([sure_b] * (views - 1) + [unsure_a]), head, InputSpec(), images, cpu, tta=True)
    assert kept.preds == ["B1"]


def test_the_vote_keeps_to_the_format() -> None:
    head = CTCHead(CHARS)
    images = np.zeros((1, 32, 128, 3), np.uint8)
    views = len(tta_views(images))
    # Every view's best path is "AB"; a letter then a digit is the format, so each view proposes "A1".
    logits = ctc_logits([1, 0, 2, 0], 3.0)
    logits[0, 2, 3] = 2.0
    out = run_batch(Scripted([logits] * views), head, InputSpec(), images, torch.device("cpu"),
                    text_format=r"[AB][12]", tta=True)
    assert out.preds == ["A1"]


def test_score_tta_on_the_command_line(capsys, tmp_path, tiny_checkpoint, make_images) -> None:
    data = tmp_path / "data"
    make_images(data, ["AB12", "BA21", "A1B2"], naming="id")
    plain, voted = tmp_path / "plain.parquet", tmp_path / "tta.parquet"
    assert main(["score", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main(["score", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--out", str(voted),
                 "--tta"]) == 0
    assert "test-time augmentation" in capsys.readouterr().err
    a, b = pd.read_parquet(plain), pd.read_parquet(voted)
    assert list(a["path"]) == list(b["path"])
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    # Each file says how it was read.
    assert scoring_record(b) == {"checkpoint": str(Path(tiny_checkpoint).resolve()), "data": str(data.resolve()),
                                 "format": None, "tta": True, "schema_version": SCHEMA_VERSION}
    assert scoring_record(a)["tta"] is False


@pytest.mark.skipif(not REAL_PLATES.is_dir(), reason="the real plate crops (../shared/data/real-plates) are absent")
def test_tta_reads_the_real_crops_better_than_one_view() -> None:
    loaded = load_model(SHIPPED_DEMO)
    dataset = load_dataset(REAL_PLATES, loaded.input_size, upscale=loaded.input.upscale)
    plain = score_dataset(loaded, dataset, torch.device("cpu"))
    voted = score_dataset(loaded, dataset, torch.device("cpu"), tta=True)
    assert voted["correct"].mean() > plain["correct"].mean()
    province = (voted["pred"].str[:1] == voted["label"].str[:1]).mean()
    assert province > (plain["pred"].str[:1] == plain["label"].str[:1]).mean()
