"""Label corrections: kept as appended decisions, applied to listings (score, train) and to frames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ocr_core.checkpoint import read_checkpoint
from ocr_core.cli import main
from ocr_core.corrections import Correction, append_correction, apply_to_frame, apply_to_listing, load_corrections
from ocr_core.data.sources import list_source
from ocr_core.errors import InputError
from ocr_core.frame import build_frame

LABELS = ["皖AY339S", "沪C8GK31", "京A12345", "豫B0000A"]


def test_decisions_last_one_wins_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "c.jsonl"
    append_correction(path, Correction(str(tmp_path / "a.png"), "unsure"))
    append_correction(path, Correction(str(tmp_path / "a.png"), "relabel", " 皖A1 "))
    append_correction(path, Correction(str(tmp_path / "b.png"), "invalid"))
    decisions = load_corrections(path)
    assert decisions[str((tmp_path / "a.png").resolve())] == Correction(str((tmp_path / "a.png").resolve()),
                                                                          "relabel", "皖A1")
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3, "appended, never rewritten"
    with pytest.raises(InputError, match="needs its text"):
        append_correction(path, Correction("x.png", "relabel", ""))
    path.write_text(path.read_text(encoding="utf-8") + "not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 4"):
        load_corrections(path)


def test_listing_and_frame_take_the_corrections(tmp_path, make_images):
    images = make_images(tmp_path / "d", LABELS)
    path = tmp_path / "c.jsonl"
    append_correction(path, Correction(str(images[0]), "relabel", "皖AY339B"))
    append_correction(path, Correction(str(images[1]), "invalid"))
    append_correction(path, Correction(str(images[2]), "unsure"))
    decisions = load_corrections(path)
    listing = apply_to_listing(list_source(tmp_path / "d"), decisions)
    assert sorted(s.label for s in listing.samples) == sorted(["皖AY339B", "京A12345", "豫B0000A"])
    assert any("not a valid sample" in why for _, why in listing.skipped)
    frame = build_frame(pd.DataFrame({"path": [str(p) for p in images], "label": LABELS,
                                      "pred": ["皖AY339B", "沪C8GK31", "京A12345", "豫B0000B"], "loss": [1.0] * 4}))
    fixed = apply_to_frame(frame, decisions)
    assert fixed["label"].tolist() == ["皖AY339B", "京A12345", "豫B0000A"]
    assert fixed["correct"].tolist() == [True, True, False], "the first reading was right; its label was wrong"
    assert pd.isna(fixed["loss"].iloc[0]) and fixed["loss"].iloc[1] == 1.0
    assert fixed["sample"].tolist() == [0, 1, 2]


def test_score_train_and_the_manifest_apply_a_corrections_file(tmp_path, make_images, tiny_checkpoint, capsys):
    images = make_images(tmp_path / "d", LABELS * 2, naming="id")
    path = tmp_path / "c.jsonl"
    append_correction(path, Correction(str(images[1]), "invalid"))
    args = ["score", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "d")]
    assert main([*args, "--corrections", str(path)]) == 0
    assert capsys.readouterr().out.startswith("n=7 ")
    assert main(["corrected-manifest", str(tmp_path / "d"), "--corrections", str(path),
                 "--out", str(tmp_path / "m.json")]) == 0
    assert len(json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))) == 7
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "d"), "--corrections", str(path), "--out", str(run), "--epochs",
                 "1", "--batch-size", "4", "--workers", "0", "--augment", "none", "--val-split", "0"]) == 0
    plain = tmp_path / "plain"
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(plain), "--epochs", "1", "--batch-size", "4",
                 "--workers", "0", "--augment", "none", "--val-split", "0"]) == 0
    # The training set's fingerprint changes with the corrections.
    assert read_checkpoint(run / "last.pt")["data_fingerprint"] != read_checkpoint(plain / "last.pt")["data_fingerprint"]
