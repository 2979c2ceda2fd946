"""The score frame contract and predictions from other OCR systems (no PlateLens model involved)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ocr_core import frame as frame_module
from ocr_core.cli import main
from ocr_core.data.dataset import load_dataset
from ocr_core.errors import InputError
from ocr_core.frame import COLUMNS, build_frame, check_frame
from ocr_core.predictions import import_predictions
from ocr_core.score import score_cache_key
from ocr_core.vocab import Vocab

LABELS = ["皖AY339S", "沪C8GK31", "ABC123", "京A00001"]
READINGS = ["皖AY339S", "沪C8GK3", "ABC128", "京A00001"]


def test_build_frame_from_a_plain_table():
    table = pd.DataFrame({"path": ["/a.png", "/b.png"], "label": ["AB1", "Q1"], "pred": ["AB1", "O1I"],
                          "camera": ["north", "south"]})
    frame = build_frame(table, Vocab("AB1O"))
    assert list(frame.columns)[: len(COLUMNS)] == list(COLUMNS) and frame.columns[-1] == "camera"
    assert check_frame(frame) == []
    assert frame["correct"].tolist() == [True, False]
    assert frame["edit_distance"].tolist() == [0, 2] and frame["cer"].tolist() == [0.0, 1.0]
    assert frame["oov"].tolist() == [False, True]  # Q is not in the vocabulary
    assert frame["confidence"].isna().all() and frame["loss"].isna().all()
    assert frame["province"].tolist() == ["A", "Q"] and frame["pred_len"].tolist() == [3, 3]
    assert str(frame["edit_distance"].dtype) == COLUMNS["edit_distance"].dtype
    with pytest.raises(ValueError, match="pred"):
        build_frame(table.drop(columns="pred"))
    assert check_frame(frame.drop(columns="cer")) == ["missing column 'cer'"]


def test_score_cache_key_changes_with_the_schema_version(tmp_path, make_images, tiny_checkpoint, monkeypatch):
    make_images(tmp_path / "d", LABELS[:2])
    dataset = load_dataset(tmp_path / "d")
    before = score_cache_key(tiny_checkpoint, dataset)
    monkeypatch.setattr("ocr_core.score.SCHEMA_VERSION", frame_module.SCHEMA_VERSION + 1)
    assert score_cache_key(tiny_checkpoint, dataset) != before


def _write(table: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".tsv":
        table.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table.to_dict("records")),
                        encoding="utf-8")
    else:
        table.to_parquet(path, index=False)
    return path


@pytest.fixture
def images(tmp_path, make_images) -> list[Path]:
    return make_images(tmp_path / "data", LABELS)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_predictions_file_with_labels_in_every_format(tmp_path, images, suffix):
    # Relative paths resolve against the predictions file's folder.
    table = pd.DataFrame({"file": [f"data/{p.name}" for p in images], "pred": READINGS, "label": LABELS,
                          "confidence": [0.9, 0.4, 0.8, 0.99]})
    imported = import_predictions(_write(table, tmp_path / f"preds{suffix}"))
    frame = imported.frame
    assert frame["path"].tolist() == [str(p.resolve()) for p in images]
    assert frame["correct"].tolist() == [True, False, False, True]
    assert frame["confidence"].tolist() == [0.9, 0.4, 0.8, 0.99]
    assert set(frame["height"]) == {32} and set(frame["width"]) == {128}
    assert not imported.missing


def test_labels_come_from_the_dataset_when_the_file_has_none(tmp_path, images):
    table = pd.DataFrame({"path": [str(p) for p in images[:3]] + [str(tmp_path / "gone.png")],
                          "pred": ["0012", *READINGS[1:]]})
    imported = import_predictions(_write(table, tmp_path / "p.csv"), tmp_path / "data")
    assert imported.frame["label"].tolist() == LABELS[:3]
    assert imported.frame["pred"].iloc[0] == "0012", "read as text: leading zeros stay"
    assert imported.missing == [str((tmp_path / "gone.png").resolve())]
    outside = tmp_path / "other"
    outside.mkdir()
    (outside / "X1.png").write_bytes(images[0].read_bytes())
    table.loc[3, "path"] = str(outside / "X1.png")
    imported = import_predictions(_write(table, tmp_path / "p.csv"), tmp_path / "data")
    assert imported.unlabelled == [str((outside / "X1.png").resolve())] and len(imported.frame) == 3


@pytest.mark.parametrize("case, match", [
    ("empty", "no rows"),
    ("duplicate", "twice"),
    ("numbers", "not text"),
    ("no label", "no label column"),
    ("clash", "disagree"),
    ("confidence", "from 0 to 1"),
    ("columns", "needs file"),
    ("suffix", "suffix"),
    ("all missing", "no row"),
])
def test_bad_predictions_files_are_one_sentence(tmp_path, images, case, match):
    good = pd.DataFrame({"file": [str(p) for p in images], "pred": READINGS, "label": LABELS})
    data = None
    path = tmp_path / "p.csv"
    if case == "empty":
        path.write_text("file,pred,label\n", encoding="utf-8")
    elif case == "duplicate":
        _write(pd.concat([good, good.iloc[:1]]), path)
    elif case == "numbers":
        path = _write(pd.DataFrame({"file": [str(p) for p in images], "pred": [1, 2, 3, 4]}),
                      tmp_path / "p.parquet")
    elif case == "no label":
        _write(good.drop(columns="label"), path)
    elif case == "clash":
        _write(good.assign(label=["WRONG", *LABELS[1:]]), path)
        data = tmp_path / "data"
    elif case == "confidence":
        _write(good.assign(confidence=[0.5, 1.5, 0.1, 0.2]), path)
    elif case == "columns":
        _write(good.rename(columns={"pred": "text"}), path)
    elif case == "suffix":
        path = tmp_path / "p.xlsx"
        path.write_bytes(b"x")
    elif case == "all missing":
        _write(good.assign(file=[str(tmp_path / f"no{i}.png") for i in range(4)]), path)
    with pytest.raises(InputError, match=match):
        import_predictions(path, data)


def test_import_predictions_cli_writes_the_frame(tmp_path, images, capsys):
    table = pd.DataFrame({"file": [str(p) for p in images], "pred": READINGS})
    out = tmp_path / "frame.parquet"
    assert main(["import-predictions", str(_write(table, tmp_path / "p.jsonl")), "--data",
                 str(tmp_path / "data"), "--out", str(out)]) == 0
    assert "n=4 accuracy=0.5000" in capsys.readouterr().out
    frame = pd.read_parquet(out)
    assert check_frame(frame) == [] and np.isnan(frame["confidence"]).all()
    assert main(["import-predictions", str(tmp_path / "p.jsonl")]) == 2
    assert "no label column" in capsys.readouterr().err


def test_a_score_frame_keeps_its_scoring_record_when_imported(tmp_path, images):
    table = pd.DataFrame({"file": [str(p) for p in images], "label": LABELS, "pred": READINGS})
    frame_module.record_scoring(table, "/models/demo.pt", "/data/plates", "cn", tta=True)
    parquet, csv = tmp_path / "scored.parquet", tmp_path / "scored.csv"
    table.to_parquet(parquet, index=False)
    table.to_csv(csv, index=False)
    record = import_predictions(parquet).scoring
    assert record is not None and record["checkpoint"] == "/models/demo.pt" and record["tta"] is True
    assert record["format"] == "cn"
    assert import_predictions(csv).scoring is None  # CSV cannot carry it; another system's file has none
