"""Distillation (ocr_core.distill): sequence-level targets from teachers, and `train --teacher`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ocr_core.checkpoint import LoadedModel, make_checkpoint, read_checkpoint, save_checkpoint
from ocr_core.cli import EXIT_INPUT_ERROR, main
from ocr_core.distill import Distiller, glyphs_at, glyphs_by_position, substitutions
from ocr_core.heads import CTCHead, FixedHead
from ocr_core.models import arch_config, build_model
from ocr_core.preprocess import InputSpec

CPU = torch.device("cpu")


class FixedLogits(nn.Module):
    """A stand-in teacher: the same logits for every crop."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], *self.logits.shape)


def ctc_logits(head: CTCHead, text: str, steps: int = 8) -> torch.Tensor:
    """(steps, classes) logits that spell ``text`` confidently, one character per step, blanks after."""
    logits = torch.zeros(steps, head.num_classes)
    ids = head.encode(text)
    for t in range(steps):
        logits[t, ids[t] if t < len(ids) else head.blank] = 8.0
    return logits


def fixed_logits(head: FixedHead, text: str) -> torch.Tensor:
    logits = torch.zeros(head.positions, max(head.output_classes))
    for p, (c, chars) in enumerate(zip(text, head.position_chars, strict=True)):
        logits[p, chars.index(c)] = 8.0
    return logits


def teacher(head: CTCHead | FixedHead, logits: torch.Tensor) -> LoadedModel:
    return LoadedModel(FixedLogits(logits), head, InputSpec(), "stand-in", {}, "<memory>")


@pytest.mark.parametrize("head", [CTCHead("AB12"), FixedHead("AB12", 3)], ids=["ctc", "fixed"])
def test_sequence_log_likelihoods_are_minus_the_sample_losses_and_carry_a_gradient(head):
    torch.manual_seed(0)
    steps = 8 if isinstance(head, CTCHead) else 3
    classes = head.output_classes if isinstance(head, CTCHead) else 4
    logits = torch.randn(3, steps, classes, requires_grad=True)
    labels = ["A12", "B21", "AB1"]
    scores = head.sequence_log_likelihoods(head.log_probs(logits), labels)
    np.testing.assert_allclose(-scores.detach().numpy(), head.sample_losses(head.log_probs(logits), labels),
                               rtol=1e-5)
    scores.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_a_fixed_head_gives_minus_infinity_to_a_label_it_cannot_represent():
    head = FixedHead("AB12", 3)
    scores = head.sequence_log_likelihoods(head.log_probs(torch.zeros(2, 3, 4)), ["A12", "A1"])
    assert torch.isfinite(scores[0]) and scores[1] == -float("inf")


def test_substitutions_replace_the_character_at_the_position_of_every_long_enough_label():
    rows, texts = substitutions(["皖A1", "B", "沪C2"], 1, "XY")
    assert rows == [0, 0, 2, 2]
    assert texts == ["皖X1", "皖Y1", "沪X2", "沪Y2"]
    assert glyphs_at(["皖A1", "沪B2", "皖C3", ""], 0) == "皖沪"


@pytest.mark.parametrize("kind", ["ctc", "fixed"])
@pytest.mark.parametrize("taught", ["B12", "A12"])
def test_distillation_alone_moves_the_student_to_the_glyph_the_teachers_prefer(kind, taught):
    # The label says A; the teachers say `taught`. With the head's own loss left out, the student must
    # follow the teachers at the distilled position whichever glyph they prefer (a sign error fails one case).
    head = CTCHead("AB12") if kind == "ctc" else FixedHead("AB12", 3)
    make = ctc_logits if kind == "ctc" else fixed_logits
    teachers = [teacher(head, make(head, taught)), teacher(head, make(head, taught))]
    distiller = Distiller(teachers, "AB", position=0, temperature=2.0)
    student = torch.zeros(1, *make(head, "A12").shape)
    student[0] = make(head, "A12") * 0.25
    student[0, 0] = 0.0  # undecided at the first step / position
    student.requires_grad_(True)
    optimizer = torch.optim.SGD([student], lr=1.0)
    crops = torch.zeros(2, 32, 128, 3, dtype=torch.uint8)
    for _ in range(30):
        loss = distiller.loss(head, head.log_probs(student.expand(2, -1, -1)), crops, ["A12", "A12"], CPU)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reading = head.decode(head.log_probs(student.detach()))[0][0]
    assert reading[0] == taught[0], reading
    assert loss.item() < 0.05


def test_distillation_from_a_teacher_that_agrees_with_the_student_costs_nothing():
    head = CTCHead("AB12")
    logits = ctc_logits(head, "B12")
    distiller = Distiller([teacher(head, logits)], "AB", temperature=3.0)
    crops = torch.zeros(1, 32, 128, 3, dtype=torch.uint8)
    loss = distiller.loss(head, head.log_probs(logits[None]), crops, ["A12"], CPU)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    empty = distiller.loss(head, head.log_probs(logits[None]), crops, [""], CPU)
    assert empty.item() == 0.0


def test_other_positions_are_every_position_with_a_choice_and_take_turns_step_by_step():
    labels = ["皖A1", "沪A2", "皖A3X", "皖B1"]
    other = glyphs_by_position(labels, skip=0)
    assert other == {1: "AB", 2: "123"}  # position 0 is distilled anyway; position 3 has one glyph only
    distiller = Distiller([], "皖沪", other_glyphs=other)
    assert [distiller.positions_at(step) for step in range(3)] == [
        [(0, "皖沪"), (1, "AB")], [(0, "皖沪"), (2, "123")], [(0, "皖沪"), (1, "AB")]]
    assert Distiller([], "皖沪").positions_at(1) == [(0, "皖沪")]


@pytest.mark.parametrize("kind", ["ctc", "fixed"])
@pytest.mark.parametrize("others", [True, False], ids=["other-positions", "province-only"])
def test_other_positions_teach_a_letter_the_province_alone_leaves_alone(kind, others):
    # The label says A1B; the teachers read A2B. Only a distiller that also distils position 1 moves the
    # student's second character to 2; one that distils position 0 alone must leave it at 1.
    head = CTCHead("AB12") if kind == "ctc" else FixedHead("AB12", 3)
    make = ctc_logits if kind == "ctc" else fixed_logits
    teachers = [teacher(head, make(head, "A2B"))]
    distiller = Distiller(teachers, "AB", position=0, temperature=2.0,
                          other_glyphs={1: "12"} if others else {})
    student = (make(head, "A1B") * 0.25)[None]
    student[0, 1] = make(head, "A1B")[1] * 0.05  # barely decided at the second step / position
    student.requires_grad_(True)
    optimizer = torch.optim.SGD([student], lr=1.0)
    crops = torch.zeros(1, 32, 128, 3, dtype=torch.uint8)
    for step in range(30):
        loss = distiller.loss(head, head.log_probs(student), crops, ["A1B"], CPU, step=step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reading = head.decode(head.log_probs(student.detach()))[0][0]
    assert reading[1] == ("2" if others else "1"), reading


def save_model(path, input_size: tuple[int, int] = (32, 128), chars: str = "12ABC") -> None:
    torch.manual_seed(0)
    head = CTCHead(chars)
    config = arch_config("small")
    model = build_model("small", head.output_classes, config)
    save_checkpoint(make_checkpoint(model, "small", config, head, input_size), path)


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TRAIN = ("--epochs", "1", "--augment", "none", "--workers", "0", "--batch-size", "8", "--device", "cpu",
         "--val-split", "0.2")


def test_train_with_teachers_records_them_and_resumes_with_them(capsys, tmp_path, make_images):
    data = tmp_path / "train"
    make_images(data, ["ABC12", "BCA21", "CAB11", "ACB22"] * 6, naming="id")
    save_model(tmp_path / "t1.pt")
    save_model(tmp_path / "t2.pt")
    run = tmp_path / "run"
    teachers = ("--teacher", tmp_path / "t1.pt", "--teacher", tmp_path / "t2.pt")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", run, *TRAIN, *teachers,
                           "--distill-temperature", "3", "--distill-other-positions")
    assert code == 0, err
    options = json.loads((run / "options.json").read_text())
    assert options["distill_other_positions"] is True
    assert options["teachers"] == [str(tmp_path / "t1.pt"), str(tmp_path / "t2.pt")]
    assert options["distill_temperature"] == 3.0 and options["distill_weight"] == 1.0
    assert read_checkpoint(run / "last.pt")["train_state"]["options"]["teachers"] == options["teachers"]
    assert read_checkpoint(run / "best.pt")["training_sources"]["teachers"] == \
        [str((tmp_path / name).resolve()) for name in ("t1.pt", "t2.pt")]

    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    assert len((run / "history.jsonl").read_text().splitlines()) == 2
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3", "--distill-weight", "2")
    assert code == EXIT_INPUT_ERROR and "--distill-weight" in err


@pytest.mark.parametrize(("setup", "words"), [
    (lambda p: save_model(p, input_size=(24, 94)), ["teacher", "24x94", "input size"]),
    (lambda p: save_model(p, chars="12AB"), ["teacher", "'C'", "every character"]),
    (lambda p: p.write_bytes(b"not a checkpoint"), ["t.pt"]),
])
def test_a_teacher_that_cannot_teach_is_one_clear_sentence(capsys, tmp_path, make_images, setup, words):
    data = tmp_path / "train"
    make_images(data, ["ABC12", "BCA21"] * 4, naming="id")
    setup(tmp_path / "t.pt")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", *TRAIN,
                           "--teacher", tmp_path / "t.pt")
    lines = [line for line in err.splitlines() if line.strip() and "warning" not in line.lower()]
    assert code == EXIT_INPUT_ERROR, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, err)


def test_distill_settings_without_a_teacher_are_refused(capsys, tmp_path, make_images):
    data = tmp_path / "train"
    make_images(data, ["ABC12"] * 4, naming="id")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", *TRAIN,
                           "--distill-temperature", "4", "--distill-other-positions")
    assert code == EXIT_INPUT_ERROR
    assert "--distill-temperature" in err and "--distill-other-positions" in err and "--teacher" in err
    assert not (tmp_path / "run").exists()


def test_a_position_with_one_glyph_or_none_has_nothing_to_distil(capsys, tmp_path, make_images):
    data = tmp_path / "train"
    make_images(data, ["ABC12", "BCA21", "CAB11", "ACB22"] * 3, naming="id")
    save_model(tmp_path / "t.pt")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", *TRAIN,
                           "--teacher", tmp_path / "t.pt", "--distill-position", "7")
    assert code == EXIT_INPUT_ERROR, err
    assert "nothing to distil" in err and "position 7" in err and "Traceback" not in err
