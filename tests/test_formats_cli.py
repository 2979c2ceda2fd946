"""A plate format travels with the checkpoint: train --format stores it, score --format auto decodes with it."""

from __future__ import annotations

from ocr_core.checkpoint import read_checkpoint
from ocr_core.cli import main

LABELS = ["皖AY339S", "沪C8GK31", "京A12345", "豫B0000A", "苏E7Q1X2", "浙K88888", "皖AD1234", "沪B77777"]


def test_train_stores_the_format_and_score_auto_uses_it(tmp_path, make_images, capsys):
    make_images(tmp_path / "d", LABELS)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(run), "--epochs", "1", "--batch-size", "4",
                 "--workers", "0", "--augment", "none", "--val-split", "0", "--format", "cn"]) == 0
    assert read_checkpoint(run / "last.pt")["text_format"] == "cn"
    capsys.readouterr()
    args = ["score", "--checkpoint", str(run / "last.pt"), "--data", str(tmp_path / "d")]
    assert main([*args, "--format", "auto"]) == 0
    assert "constrained to the format cn" in capsys.readouterr().err
    assert main(args) == 0  # --format none is the default
    assert "constrained" not in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r2"), "--format", "[A-"]) == 2
    assert "regular expression" in capsys.readouterr().err
