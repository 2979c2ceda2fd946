"""Command line: bad input gives one ``error:`` line naming the file and exit code 2; the working commands."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from ocr_core.checkpoint import read_checkpoint
from ocr_core.cli import EXIT_INPUT_ERROR, build_parser, main
from ocr_core.models.fcnn_bilstm import FcnnBiLSTM, FcnnBiLSTMConfig

ROOT = Path(__file__).resolve().parents[1]
SCORE_COLUMNS = {"path", "label", "pred", "correct", "cer", "edit_distance", "confidence", "loss", "oov",
                 "source", "height", "width"}
LABELS = ["皖AY339S", "沪C8GK31", "ABC123", "AB1234"]


class _TouchOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *names: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, err)


@pytest.fixture
def data_dir(tmp_path, make_images) -> Path:
    folder = tmp_path / "data"
    make_images(folder, LABELS, naming="id")
    return folder


# ---- bad input -------------------------------------------------------------------------------------

def test_missing_dataset_path(capsys, tmp_path, tiny_checkpoint):
    code, out, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", tmp_path / "nowhere")
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "nowhere")


def test_empty_folder(capsys, tmp_path, tiny_checkpoint):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", tmp_path / "empty")
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "empty")


def _manifest(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name,text,mentions", [
    ("missing.json", json.dumps([{"file": "data/000000-皖AY339S.png", "text": "皖AY339S"},
                                 {"file": "data/ghost.png", "text": "A1"}]), "ghost.png"),
    ("broken.json", '[{"file": "data/000000-皖AY339S.png", "text": "皖AY3', "broken.json"),
    ("columns.csv", "image,label\ndata/000000-皖AY339S.png,皖AY339S\n", "columns.csv"),
    ("missing.csv", "file,text\ndata/000000-皖AY339S.png,皖AY339S\ndata/nope.png,B2\n", "nope.png"),
])
def test_bad_manifests(capsys, tmp_path, data_dir, tiny_checkpoint, name, text, mentions):
    manifest = _manifest(tmp_path, name, text)
    code, _, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", manifest)
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, mentions)


@pytest.mark.parametrize("kind", ["text", "truncated", "pickle", "random", "missing"])
def test_bad_checkpoints(capsys, tmp_path, data_dir, tiny_checkpoint, kind):
    bad = tmp_path / f"{kind}.pt"
    marker = tmp_path / "MARKER"
    if kind == "text":
        bad.write_text("this is a README, not weights\n", encoding="utf-8")
    elif kind == "truncated":
        blob = tiny_checkpoint.read_bytes()
        bad.write_bytes(blob[: len(blob) // 2])
    elif kind == "pickle":
        torch.save({"state_dict": _TouchOnUnpickle(marker)}, bad)
    elif kind == "random":
        bad.write_bytes(os.urandom(2048))
    for command in (["score", "--checkpoint", bad, "--data", data_dir], ["info", bad],
                    ["train", "--data", data_dir, "--out", tmp_path / "run", "--init", bad, "--epochs", "1",
                     "--augment", "none", "--workers", "0", "--device", "cpu"]):
        code, out, err = run_cli(capsys, *command)
        assert code == EXIT_INPUT_ERROR, command
        assert_one_error_line(err, bad.name)
    assert not marker.exists()


def test_unreadable_images_are_skipped_with_a_warning_or_fatal_with_strict(capsys, caplog, tmp_path, data_dir,
                                                                          tiny_checkpoint):
    (data_dir / "999998-EMPTY1.png").write_bytes(b"")
    (data_dir / "999999-TEXT2.jpg").write_text("not a jpeg at all", encoding="utf-8")
    with caplog.at_level("WARNING"):
        code, out, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir)
    assert code == 0
    assert out.strip().startswith(f"n={len(LABELS)} ")
    warning = caplog.text
    assert "skipped 2 file(s)" in warning
    assert "999998-EMPTY1.png" in warning and "999999-TEXT2.jpg" in warning

    code, out, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir, "--strict")
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "999998-EMPTY1.png")
    assert "n=" not in out


def test_unknown_device_is_an_input_error(capsys, data_dir, tiny_checkpoint):
    code, _, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir,
                           "--device", "tpu9")
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "tpu9")


# ---- working commands ---------------------------------------------------------------------------------

def test_score_prints_summary_and_writes_parquet(capsys, tmp_path, data_dir, tiny_checkpoint):
    out_file = tmp_path / "scores" / "frame.parquet"
    code, out, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir,
                             "--out", out_file, "--device", "cpu", "--batch-size", "3")
    assert code == 0, err
    frame = pd.read_parquet(out_file)
    assert SCORE_COLUMNS <= set(frame.columns)
    assert sorted(frame["label"]) == sorted(LABELS)
    line = out.strip().splitlines()[-1]
    fields = dict(item.split("=") for item in line.split())
    assert set(fields) == {"n", "accuracy", "cer"}
    assert int(fields["n"]) == len(LABELS)
    assert float(fields["accuracy"]) == pytest.approx(frame["correct"].mean(), abs=1e-4)
    expected_cer = frame["edit_distance"].sum() / frame["label"].str.len().sum()
    assert float(fields["cer"]) == pytest.approx(expected_cer, abs=1e-4)

    csv_file = tmp_path / "new-folder" / "frame.csv"
    code, _, _ = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir,
                         "--out", csv_file)
    assert code == 0
    assert sorted(pd.read_csv(csv_file)["label"]) == sorted(LABELS)


def test_train_then_info_then_score(capsys, tmp_path, make_images):
    data = tmp_path / "train"
    make_images(data, ["ABC12", "BCA21", "CAB11", "ACB22"] * 6, naming="id")
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", data, "--out", run, "--epochs", "1",
                             "--augment", "none", "--workers", "0", "--batch-size", "8", "--device", "cpu",
                             "--val-split", "0.2")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("finished: best val_accuracy=")
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()

    code, out, _ = run_cli(capsys, "info", run / "best.pt")
    assert code == 0
    meta = json.loads(out)
    assert meta["arch"] == "small" and meta["vocab"] == "12ABC"
    weights = read_checkpoint(run / "best.pt")["state_dict"]
    assert meta["parameters"] == sum(t.numel() for t in weights.values())

    code, out, _ = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0
    assert len((run / "history.jsonl").read_text().splitlines()) == 2


def test_train_without_data_is_an_input_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "r")
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "--data")


def test_import_seed000_command(capsys, tmp_path):
    model = FcnnBiLSTM(FcnnBiLSTMConfig(lstm_hidden=16), 11)
    seed = tmp_path / "seed.pt"
    torch.save({"model": model.state_dict(), "alphabet": "0123456789", "target_length": 7,
                "optimizer": {"state": {}, "param_groups": []}, "scheduler": {"last_epoch": 0}}, seed)
    code, _, err = run_cli(capsys, "info", seed)
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "import-seed000")
    out_file = tmp_path / "converted.pt"
    code, out, err = run_cli(capsys, "import-seed000", seed, "--out", out_file)
    assert code == 0, err
    assert read_checkpoint(out_file)["arch"] == "fcnn_bilstm"
    code, _, err = run_cli(capsys, "import-seed000", tmp_path / "nope.pt", "--out", out_file)
    assert code == EXIT_INPUT_ERROR
    assert_one_error_line(err, "nope.pt")


@pytest.mark.parametrize("command", [[], ["synth"], ["train"], ["score"], ["import-seed000"], ["average"], ["info"]])
def test_help_for_every_subcommand(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m ocr_core")


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"synth", "train", "score", "import-seed000", "import-seed", "import-predictions",
                                "export", "merge-scores", "report", "near-duplicates",
                                "robustness", "corrected-manifest", "average", "info"}


# ---- real processes ------------------------------------------------------------------------------------

def _python_m(*argv, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ocr_core", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_malicious_checkpoint(tmp_path, data_dir):
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "x": _TouchOnUnpickle(marker)}, evil)
    proc = _python_m("score", "--checkpoint", evil, "--data", data_dir, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "evil.pt")
    assert proc.stdout == ""
    assert not marker.exists()


def test_subprocess_score_with_skipped_file(tmp_path, data_dir, tiny_checkpoint):
    (data_dir / "000777-BROKEN.jpg").write_text("text, not a picture", encoding="utf-8")
    out_file = tmp_path / "s.parquet"
    proc = _python_m("score", "--checkpoint", tiny_checkpoint, "--data", data_dir, "--out", out_file,
                     "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "skipped 1 file(s)" in warnings[0] and "000777-BROKEN.jpg" in warnings[0]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"n={len(LABELS)} accuracy=") and " cer=" in last
    assert SCORE_COLUMNS <= set(pd.read_parquet(out_file).columns)
