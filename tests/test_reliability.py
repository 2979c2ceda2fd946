"""Reliability, round two (issue 21): every class of failure probed there, fixed at its root.

1. checkpoint metadata validated in one place; 2. resource bombs refused from declared sizes;
3. every CLI option checked by the parser; 4. run folders locked for their writer; 5. outputs only
replace regular files with supported suffixes; 6. augmentation pipelines checked on load; 7. one bad
folder entry is skipped, not fatal; 8. NaN never hides a row silently; and a disk-full run of
``score``, ``train`` and ``synth``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_images

from ocr_core import checkpoint_checks
from ocr_core.analysis import filter_frame
from ocr_core.atomic import check_output_path
from ocr_core.augment import load_pipeline, pipeline_from_dict, pipeline_to_dict, validate_pipeline
from ocr_core.checkpoint import load_model, read_checkpoint, store_uploaded_checkpoint
from ocr_core.cli import EXIT_INPUT_ERROR, main
from ocr_core.data.sources import list_source
from ocr_core.errors import InputError
from ocr_core.runs import HISTORY_FILE, RunLock, check_new_run_folder, launch_training, run_folder_locked

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["皖A12345", "沪B67890", "皖C24680", "沪D13579"]
TRAIN_LABELS = ["ABC12", "BCA21", "CAB11", "ACB22"] * 3


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # parser errors exit like the real command
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str, *names: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, err)
    return lines[0]


def python_m(*argv: object, cwd: Path, preexec=None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ocr_core", *map(str, argv)], cwd=cwd, env=env, check=False,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    make_images(folder, LABELS, naming="id")
    return folder


@pytest.fixture
def base(tiny_checkpoint) -> dict:
    return torch.load(tiny_checkpoint, weights_only=True)


def _save(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    torch.save(data, path)
    return path


def _repeated(depth: int, width: int = 10) -> list:
    node: list = [1] * width
    for _ in range(depth):
        node = [node] * width  # pickled once, referenced width**depth times
    return node


# ---- 1. checkpoint metadata ---------------------------------------------------------------------------

BAD_FIELDS = {
    "format_version '1'": {"format_version": "1"},
    "format_version None": {"format_version": None},
    "format_version True": {"format_version": True},
    "format_version 1.5": {"format_version": 1.5},
    "input_size [0, 0]": {"input_size": [0, 0]},
    "input_size [32]": {"input_size": [32]},
    "input_size [64, 128] (does not fit the weights)": {"input_size": [64, 128]},
    "input_size [100000, 100000]": {"input_size": [100000, 100000]},
    "input_size '32x128'": {"input_size": "32x128"},
    "input_size [32.0, 128.0]": {"input_size": [32.0, 128.0]},
    "tensor in metrics": {"metrics": {"val_accuracy": torch.ones(3)}},
    "list as state_dict": {"state_dict": [torch.ones(2)]},
    "vocab with duplicates": {"vocab": "AAB"},
    "vocab as a number": {"vocab": 12},
    "unknown arch": {"arch": "resnet9000"},
    "arch_config as a list": {"arch_config": [1, 2]},
    "arch_config with a string size": {"arch_config": {"rnn_hidden": "big"}},
    "NaN dropout": {"arch_config": {"dropout": float("nan")}},
    "metadata repeating one object 10^9 times": {"notes": _repeated(8)},
    "input channels 2": {"input": {"channels": 2, "height": 32, "width": 128}},
    "input std 0": {"input": {"channels": 3, "height": 32, "width": 128, "std": [0.0]}},
}


def _deep(n: int) -> list:
    node: list = []
    for _ in range(n):
        node = [node]
    return node


BAD_FIELDS["metadata nested 100 deep"] = {"notes": _deep(100)}


@pytest.mark.parametrize("kind", list(BAD_FIELDS))
def test_bad_checkpoint_fields_are_one_input_error(kind, base, tmp_path, capsys, data_dir):
    path = _save(tmp_path, "bad.pt", {**base, **BAD_FIELDS[kind]})
    started = time.perf_counter()
    with pytest.raises(InputError) as exc:
        load_model(path)
    assert "bad.pt" in str(exc.value) and "\n" not in str(exc.value)
    assert time.perf_counter() - started < 10
    for argv in (["info", path], ["score", "--checkpoint", path, "--data", data_dir, "--device", "cpu"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == EXIT_INPUT_ERROR, (argv, err)
        one_error_line(err, "bad.pt")


def test_format_2_settings_are_accepted_and_format_1_files_still_load(base, tmp_path):
    v1 = {k: v for k, v in base.items() if k not in ("head", "input")}
    v1["format_version"] = 1
    assert load_model(_save(tmp_path, "v1.pt", v1)).input_size == (32, 128)
    v2 = {**base, "format_version": 2, "input": {"channels": 3, "height": 32, "width": 128, "resize": "stretch",
                                                 "scale": 1 / 255, "mean": [0.0], "std": [1.0]}}
    assert load_model(_save(tmp_path, "v2.pt", v2)).input_size == (32, 128)


def test_upload_whose_input_size_does_not_fit_is_refused_and_not_stored(base, tmp_path):
    v1 = {k: v for k, v in base.items() if k not in ("head", "input")}
    path = _save(tmp_path, "wrong-size.pt", {**v1, "format_version": 1, "input_size": [64, 128]})
    folder = tmp_path / "uploads"
    folder.mkdir()
    with pytest.raises(InputError) as exc:
        store_uploaded_checkpoint(path.read_bytes(), "wrong-size.pt", folder, 50 * 2**20)
    assert "wrong-size.pt" in str(exc.value) and "64x128" in str(exc.value)
    assert list(folder.iterdir()) == []


def test_forward_check_reports_time_steps(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    assert checkpoint_checks.check_forward(loaded).time_steps == loaded.meta["time_steps"] == 32


def test_info_is_bounded_and_prints_long_metadata_cut_short(base, tmp_path, capsys):
    path = _save(tmp_path, "long.pt", {**base, "notes": "x" * 50_000, "tags": list(range(5_000))})
    code, out, err = run_cli(capsys, "info", path)
    assert code == 0, err
    meta = json.loads(out)
    assert len(meta["notes"]) < 300 and "50,000 characters" in meta["notes"]
    assert len(meta["tags"]) == 51 and "4950 more" in meta["tags"][-1]
    assert len(out) < 20_000


def test_info_piped_into_a_closed_reader_ends_without_a_traceback(tiny_checkpoint, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # Like `info X.pt | head -c 1`: the reader is gone before the output is written.
    proc = subprocess.Popen([sys.executable, "-m", "ocr_core", "info", str(tiny_checkpoint)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# ---- 2. resource bombs --------------------------------------------------------------------------------

def test_huge_hidden_size_is_refused_before_the_model_is_built(base, tmp_path, monkeypatch):
    path = _save(tmp_path, "wide.pt", {**base, "arch_config": {**base["arch_config"], "rnn_hidden": 200_000}})

    def no_build(*args, **kwargs):
        raise AssertionError("the real model must not be built")

    monkeypatch.setattr("ocr_core.checkpoint.build_model", no_build)
    with pytest.raises(InputError, match="over the limit") as exc:
        read_checkpoint(path)
    assert "wide.pt" in str(exc.value)


def test_declared_size_under_the_limit_but_not_the_weights_is_refused_before_building(base, tmp_path, monkeypatch):
    # 21M parameters declared (under the limit) over the 0.6M weights actually stored.
    path = _save(tmp_path, "mismatch.pt", {**base, "arch_config": {**base["arch_config"], "rnn_hidden": 1500}})
    monkeypatch.setattr("ocr_core.checkpoint.build_model",
                        lambda *a, **k: pytest.fail("the real model must not be built"))
    with pytest.raises(InputError, match="does not match its architecture") as exc:
        read_checkpoint(path)
    assert "mismatch.pt" in str(exc.value) and "rnn.weight_ih_l0" in str(exc.value)


def _declare_size(path: Path, entry_suffix: str, size: int) -> None:
    """Patch the zip directory so that one entry declares ``size`` uncompressed bytes."""
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        names = [i.filename for i in archive.infolist()]
    target = next(n for n in names if n.endswith(entry_suffix)).encode()
    at = 0
    while True:
        at = blob.index(b"PK\x01\x02", at)
        name_len = int.from_bytes(blob[at + 28:at + 30], "little")
        if bytes(blob[at + 46:at + 46 + name_len]) == target:
            blob[at + 24:at + 28] = size.to_bytes(4, "little")
            break
        at += 4
    path.write_bytes(bytes(blob))


def test_zip_bomb_is_refused_from_its_directory_before_torch_load(tiny_checkpoint, tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(tiny_checkpoint.read_bytes())
    _declare_size(bomb, "data.pkl", 0xF000_0000)  # 3.75 GiB declared by a file of a few MB

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load must not run on a zip bomb")

    monkeypatch.setattr("ocr_core.checkpoint.torch.load", no_load)
    with pytest.raises(InputError, match="GiB") as exc:
        read_checkpoint(bomb)
    assert "bomb.pt" in str(exc.value)


def test_deflated_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_checks, "MAX_UNCOMPRESSED_BYTES", 2**20)
    bomb = tmp_path / "deflated.pt"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (4 * 2**20))
    assert bomb.stat().st_size < 64 * 2**10
    with pytest.raises(InputError, match="deflated.pt"):
        read_checkpoint(bomb)


# ---- 3. CLI options ------------------------------------------------------------------------------------

def _bad_options(tmp: Path, data: Path, ckpt: Path) -> dict[str, list[object]]:
    regular = tmp / "a-file.txt"
    regular.write_text("x")
    dup = tmp / "dup-vocab.pt"
    torch.save({**torch.load(ckpt, weights_only=True), "vocab": "AAB"}, dup)
    train = ["train", "--data", data, "--out", tmp / "run"]
    return {
        "--epochs 0": [*train, "--epochs", "0"],
        "--epochs -3": [*train, "--epochs", "-3"],
        "--batch-size -1": [*train, "--batch-size", "-1"],
        "--batch-size 0": [*train, "--batch-size", "0"],
        "--lr -0.1": [*train, "--lr", "-0.1"],
        "--lr nan": [*train, "--lr", "nan"],
        "--lr inf": [*train, "--lr", "inf"],
        "--workers -1": [*train, "--workers", "-1"],
        "--val-split 1.5": [*train, "--val-split", "1.5"],
        "--val-split nan": [*train, "--val-split", "nan"],
        "--seed -1": [*train, "--seed", "-1"],
        "--vocab klingon": [*train, "--vocab", "klingon"],
        "--arch resnet": [*train, "--arch", "resnet"],
        "--device tpu": [*train, "--device", "tpu"],
        "--synth-mix -5": [*train, "--synth-mix", "-5"],
        "--out an existing file": ["train", "--data", data, "--out", regular],
        "--data missing": ["train", "--data", tmp / "nowhere", "--out", tmp / "run"],
        "--augment missing": [*train, "--augment", tmp / "nowhere.json"],
        "--init missing": [*train, "--init", tmp / "nowhere.pt"],
        "--init malformed vocabulary": [*train, "--init", dup],
        "score --batch-size -1": ["score", "--checkpoint", ckpt, "--data", data, "--batch-size", "-1"],
        "score --batch-size x": ["score", "--checkpoint", ckpt, "--data", data, "--batch-size", "x"],
        "score --out g.xlsx": ["score", "--checkpoint", ckpt, "--data", data, "--out", tmp / "g.xlsx"],
        "score --checkpoint folder": ["score", "--checkpoint", tmp, "--data", data],
        "synth --count 0": ["synth", "--out", tmp / "s", "--count", "0"],
        "synth --count -1": ["synth", "--out", tmp / "s", "--count", "-1"],
        "synth --seed -1": ["synth", "--out", tmp / "s", "--seed", "-1"],
        "synth --style mars": ["synth", "--out", tmp / "s", "--style", "mars"],
        "synth --style ,": ["synth", "--out", tmp / "s", "--style", ","],
        "synth --out an existing file": ["synth", "--out", regular],
        "import-seed000 missing": ["import-seed000", tmp / "nowhere.pt", "--out", tmp / "x.pt"],
        "import-seed000 --out x.txt": ["import-seed000", ckpt, "--out", tmp / "x.txt"],
        "info missing": ["info", tmp / "nowhere.pt"],
        "export --out x.txt": ["export", ckpt, "--out", tmp / "x.txt"],
        "export --check-crops 0": ["export", ckpt, "--out", tmp / "x.onnx", "--check-crops", "0"],
        "import-seed unknown arch": ["import-seed", "resnet9000", ckpt, "--out", tmp / "x.pt"],
    }


BAD_OPTION_KINDS = [
    "--epochs 0", "--epochs -3", "--batch-size -1", "--batch-size 0", "--lr -0.1", "--lr nan", "--lr inf",
    "--workers -1", "--val-split 1.5", "--val-split nan", "--seed -1", "--vocab klingon", "--arch resnet",
    "--device tpu", "--synth-mix -5", "--out an existing file", "--data missing", "--augment missing",
    "--init missing", "--init malformed vocabulary", "score --batch-size -1", "score --batch-size x",
    "score --out g.xlsx", "score --checkpoint folder", "synth --count 0", "synth --count -1", "synth --seed -1",
    "synth --style mars", "synth --style ,", "synth --out an existing file", "import-seed000 missing",
    "import-seed000 --out x.txt", "info missing", "export --out x.txt", "export --check-crops 0",
    "import-seed unknown arch",
]


@pytest.mark.parametrize("kind", BAD_OPTION_KINDS)
def test_every_bad_option_is_one_sentence_and_exit_2(kind, tmp_path, data_dir, tiny_checkpoint, capsys,
                                                     monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a refused command must not train")

    monkeypatch.setattr("ocr_core.train._train", no_training)
    argv = _bad_options(tmp_path, data_dir, tiny_checkpoint)[kind]
    code, _, err = run_cli(capsys, *argv)
    assert code == EXIT_INPUT_ERROR, (kind, err)
    one_error_line(err)
    assert not (tmp_path / "run").exists(), "a refused run leaves no run folder"
    assert not (tmp_path / "s").exists()


def test_bad_option_list_matches_the_cases(tmp_path, data_dir, tiny_checkpoint):
    assert set(_bad_options(tmp_path, data_dir, tiny_checkpoint)) == set(BAD_OPTION_KINDS)


@pytest.mark.slow
def test_resume_without_epochs_keeps_the_total_and_explicit_epochs_grow_it(tmp_path, capsys):
    data = tmp_path / "train"
    make_images(data, TRAIN_LABELS, naming="id")
    run = tmp_path / "run"
    common = ["--augment", "none", "--workers", "0", "--batch-size", "8", "--device", "cpu"]
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", run, "--epochs", "1", *common)
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--resume", run)
    assert code == 0, err
    assert len((run / HISTORY_FILE).read_text().splitlines()) == 1
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    assert [json.loads(line)["epoch"] for line in (run / HISTORY_FILE).read_text().splitlines()] == [1, 2]
    # A run's options cannot change on resume: a new --lr or --augment is refused, not silently dropped.
    history = (run / HISTORY_FILE).read_text()
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3", "--lr", "1e-3", "--augment", "default")
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "--lr, --augment", "--init", "last.pt")
    assert (run / HISTORY_FILE).read_text() == history
    # Where it runs may change: --workers and --device are taken.
    code, _, err = run_cli(capsys, "train", "--resume", run, "--epochs", "3", "--workers", "1", "--device", "cpu")
    assert code == 0, err
    assert json.loads((run / "options.json").read_text())["workers"] == 1, "the run started with --workers 0"
    # An option written with its default value is written all the same (before, `--seed 0` on a run started
    # with another seed was taken as no --seed and silently dropped).
    history = (run / HISTORY_FILE).read_text()
    code, _, err = run_cli(capsys, "train", "--resume", run, "--seed", "0", "--val-split", "0.1", "--arch", "small",
                           "--synth-mix", "0")
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "--synth-mix, --val-split, --arch", "--seed", "--init")
    assert (run / HISTORY_FILE).read_text() == history
    # Left out, the defaults reach the run as plain values: last.pt still loads with weights_only.
    assert type(read_checkpoint(run / "last.pt")["train_state"]["options"]["val_split"]) is float


def test_every_train_option_but_where_it_runs_is_refused_on_resume_with_its_parser_default() -> None:
    import argparse

    from ocr_core.cli import _RUN_OPTIONS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    options = {a.option_strings[0]: (a.dest, a.default) for a in train._actions if a.option_strings}
    may_change = {"-h", "--epochs", "--device", "--workers", "--resume"}
    assert {flag: (dest, default) for flag, dest, default in _RUN_OPTIONS} == \
        {flag: pair for flag, pair in options.items() if flag not in may_change}


# ---- 4. run-folder lock ---------------------------------------------------------------------------------

def test_second_writer_of_a_run_folder_is_refused(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setattr("ocr_core.train._train", lambda *a, **k: pytest.fail("must not train"))
    run = tmp_path / "run"
    run.mkdir()
    holder = RunLock(run).acquire()
    try:
        assert run_folder_locked(run)
        code, _, err = run_cli(capsys, "train", "--data", data_dir, "--out", run, "--device", "cpu")
        assert code == EXIT_INPUT_ERROR
        one_error_line(err, str(run), "another training run", str(os.getpid()))
        with pytest.raises(InputError, match="another training run"):
            launch_training({"data": str(data_dir), "out": str(run)})
    finally:
        holder.release()
    assert not run_folder_locked(run)
    assert not (run / "status.json").exists(), "a refused writer touches nothing"


def test_lock_held_by_another_process_is_released_when_it_dies(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = ("import sys, time; from pathlib import Path; from ocr_core.runs import RunLock; "
            "lock = RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"process {proc.pid}"):
            RunLock(run).acquire()
    finally:
        proc.kill()
        proc.wait()
    RunLock(run).acquire().release()


@pytest.mark.slow
def test_two_train_commands_into_one_folder_at_once(tmp_path, capsys):
    data = tmp_path / "train"
    make_images(data, TRAIN_LABELS, naming="id")
    run = tmp_path / "run"
    argv = ["train", "--data", data, "--out", run, "--epochs", "500", "--augment", "none", "--workers", "0",
            "--batch-size", "4", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "ocr_core", *map(str, argv)], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / HISTORY_FILE).exists():  # the first run is under way and holds the folder
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        code, _, err = run_cli(capsys, *argv)
        assert code == EXIT_INPUT_ERROR
        one_error_line(err, "another training run", f"process {first.pid}")
        code, _, err = run_cli(capsys, "train", "--resume", run)
        assert code == EXIT_INPUT_ERROR
        one_error_line(err, "another training run")
    finally:
        first.send_signal(signal.SIGTERM)  # it saves last.pt and stops
        first.communicate(timeout=120)
    epochs = [json.loads(line)["epoch"] for line in (run / HISTORY_FILE).read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1)), "one writer: epochs 1, 2, 3 ..., never interleaved"


def test_new_run_into_a_folder_with_history_is_refused_and_appends_nothing(tmp_path, data_dir, capsys):
    run = tmp_path / "run"
    run.mkdir()
    history = '{"epoch": 1}\n{"epoch": 2}\n'
    (run / HISTORY_FILE).write_text(history)
    code, _, err = run_cli(capsys, "train", "--data", data_dir, "--out", run, "--device", "cpu")
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "--resume", "2 epoch(s)")
    assert (run / HISTORY_FILE).read_text() == history
    with pytest.raises(InputError, match="--resume"):
        check_new_run_folder(run)
    with pytest.raises(InputError, match="--resume"):
        launch_training({"data": str(data_dir), "out": str(run)})
    assert not (run / "status.json").exists()


def test_train_in_process_refuses_history_too(tmp_path, data_dir):
    from ocr_core.train import TrainOptions, train

    run = tmp_path / "run"
    run.mkdir()
    (run / HISTORY_FILE).write_text('{"epoch": 1}\n')
    with pytest.raises(InputError, match="--resume"):
        train(TrainOptions(data=str(data_dir), out=str(run), epochs=1, workers=0, augment="none", device="cpu"))
    assert (run / HISTORY_FILE).read_text() == '{"epoch": 1}\n'


# ---- 5. outputs ------------------------------------------------------------------------------------------

def _special_outputs(tmp: Path) -> dict[str, Path]:
    folder = tmp / "existing-folder.parquet"
    folder.mkdir()
    regular = tmp / "plain-file"
    regular.write_text("keep me")
    fifo = tmp / "fifo.parquet"
    os.mkfifo(fifo)
    target = tmp / "target.parquet"
    target.write_text("keep me")
    link = tmp / "link.parquet"
    link.symlink_to(target)
    cases = {"existing folder": folder, "parent is a file": regular / "scores.parquet", "FIFO": fifo,
             "symbolic link": link, "unsupported suffix": tmp / "g.xlsx"}
    device = tmp / "null.parquet"
    try:
        os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))  # a character device like /dev/null
        cases["device node"] = device
    except (PermissionError, OSError):
        pass
    return cases


SPECIAL_OUTPUTS = ["existing folder", "parent is a file", "FIFO", "symbolic link", "unsupported suffix",
                   "device node"]


@pytest.mark.parametrize("kind", SPECIAL_OUTPUTS)
def test_score_out_only_replaces_regular_files(kind, tmp_path, data_dir, tiny_checkpoint, capsys):
    cases = _special_outputs(tmp_path)
    if kind not in cases:
        pytest.skip("creating a device node needs root")
    out = cases[kind]
    before = {p: (p.lstat().st_mode, p.lstat().st_ino) for p in tmp_path.iterdir()}
    code, _, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir, "--out", out,
                           "--device", "cpu")
    assert code == EXIT_INPUT_ERROR, err
    one_error_line(err, out.name)
    after = {p: (p.lstat().st_mode, p.lstat().st_ino) for p in tmp_path.iterdir()}
    assert after == before, "nothing replaced"
    assert (tmp_path / "target.parquet").read_text() == "keep me"


def test_check_output_path_is_the_one_helper(tmp_path):
    assert check_output_path(tmp_path / "new" / "s.csv", (".parquet", ".csv")) == tmp_path / "new" / "s.csv"
    (tmp_path / "old.parquet").write_text("x")
    assert check_output_path(tmp_path / "old.parquet", (".parquet",)).name == "old.parquet"
    for path in _special_outputs(tmp_path).values():
        with pytest.raises(InputError):
            check_output_path(path, (".parquet", ".csv"))


def test_import_seed000_out_onto_a_fifo_is_refused(tmp_path, tiny_checkpoint, capsys):
    fifo = tmp_path / "out.pt"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "import-seed000", tiny_checkpoint, "--out", fifo)
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "out.pt", "FIFO")


# ---- 6. augmentation pipelines ---------------------------------------------------------------------------

BAD_PIPELINES = {
    "Resize(64, 64)": A.Compose([A.Resize(64, 64)]),
    "ToGray to one channel": A.Compose([A.ToGray(num_output_channels=1, p=0.2)]),
    "MedianBlur with a huge kernel": A.Compose([A.MedianBlur(blur_limit=(3, 2**20 + 1))]),
    "MedianBlur kernel larger than the crop": A.Compose([A.MedianBlur(blur_limit=(3, 999))]),
    # albumentations refuses to serialise these, so their JSON is written by hand, as a user would.
    "FDA": {"transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": [
        {"__class_fullname__": "FDA", "p": 1.0, "beta_limit": [0.0, 0.1]}]}},
    "HistogramMatching": {"transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": [
        {"__class_fullname__": "HistogramMatching", "p": 1.0}]}},
    "PixelDistributionAdaptation": {"transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": [
        {"__class_fullname__": "PixelDistributionAdaptation", "p": 1.0}]}},
    "ToFloat": A.Compose([A.ToFloat()]),
    "one branch of a OneOf resizes": A.Compose([A.OneOf([A.NoOp(), A.Resize(10, 10)])]),
    "CoarseDropout with 10^7 holes": A.Compose([A.CoarseDropout(num_holes_range=(1, 10**7))]),
}


@pytest.mark.parametrize("kind", list(BAD_PIPELINES))
def test_bad_pipelines_are_refused_on_load(kind, tmp_path):
    pipeline = BAD_PIPELINES[kind]
    data = pipeline if isinstance(pipeline, dict) else pipeline_to_dict(pipeline)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    started = time.perf_counter()
    with pytest.raises(InputError) as exc:
        load_pipeline(path)
    assert "bad.json" in str(exc.value)
    with pytest.raises(InputError):
        pipeline_from_dict(data)  # the lab's upload path
    assert time.perf_counter() - started < 10


def test_good_pipelines_still_load(tmp_path):
    from ocr_core.augment import default_pipeline

    for pipeline in (default_pipeline(), default_pipeline(bottom_occlusion_p=0.5),
                     A.Compose([A.MedianBlur(blur_limit=(3, 7)), A.Resize(32, 128)]),
                     A.Compose([A.RandomCrop(28, 120), A.Resize(32, 128)])):  # a size change undone later
        path = tmp_path / "ok.json"
        path.write_text(json.dumps(pipeline_to_dict(pipeline)))
        assert isinstance(load_pipeline(path), A.Compose)
    validate_pipeline(A.Compose([A.Resize(64, 256)]), input_size=(64, 256))


def test_train_with_a_bad_augment_file_fails_before_decoding(tmp_path, data_dir, capsys, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("the dataset must not be decoded")

    monkeypatch.setattr("ocr_core.data.dataset.decode_listing", no_decoding)
    monkeypatch.setattr("ocr_core.train.load_dataset", no_decoding)
    bad = tmp_path / "resize.json"
    bad.write_text(json.dumps(pipeline_to_dict(BAD_PIPELINES["Resize(64, 64)"])))
    code, _, err = run_cli(capsys, "train", "--data", data_dir, "--out", tmp_path / "run", "--augment", bad,
                           "--device", "cpu")
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "resize.json", "Resize")
    assert not (tmp_path / "run").exists()


def test_pipelines_are_checked_at_the_model_input_size(tmp_path, data_dir, capsys, monkeypatch):
    from ocr_core.train import resolve_pipeline

    path = tmp_path / "wide.json"
    path.write_text(json.dumps(pipeline_to_dict(A.Compose([A.RandomCrop(56, 300), A.Resize(64, 320)]))))
    assert resolve_pipeline(str(path), (64, 320)) is not None
    with pytest.raises(InputError, match="wide.json"):
        resolve_pipeline(str(path), (32, 128))
    monkeypatch.setattr("ocr_core.train.train", lambda opts, resume=None: {"best_accuracy": 1.0})
    common = ["train", "--data", data_dir, "--augment", path, "--device", "cpu"]
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "r1", "--arch", "resnet18_gru")
    assert code == 0, err
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "r2")  # the default arch reads 32x128
    assert code == EXIT_INPUT_ERROR
    one_error_line(err, "wide.json", "32x128")


# ---- 7. bad folder entries ---------------------------------------------------------------------------------

def test_self_referencing_symlink_is_skipped_named_and_counted(tmp_path, data_dir, tiny_checkpoint, capsys, caplog):
    loop = data_dir / "000099-A00000.png"
    loop.symlink_to(loop.name)
    fifo = data_dir / "000098-B00000.png"
    os.mkfifo(fifo)
    listing = list_source(data_dir)
    assert len(listing.samples) == len(LABELS)
    assert {Path(p).name for p, _ in listing.skipped} == {loop.name, fifo.name}
    with caplog.at_level(logging.WARNING):
        code, out, err = run_cli(capsys, "score", "--checkpoint", tiny_checkpoint, "--data", data_dir,
                                 "--device", "cpu")
    assert code == 0, err
    assert out.strip().startswith(f"n={len(LABELS)} ")
    assert "skipped 2 file(s)" in caplog.text and loop.name in caplog.text and fifo.name in caplog.text


# ---- 8. NaN -------------------------------------------------------------------------------------------------

@pytest.fixture
def nan_checkpoint(base, tmp_path) -> Path:
    state = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in base["state_dict"].items()}
    return _save(tmp_path, "nan.pt", {**base, "state_dict": state})


def test_nan_weights_score_with_a_warning_and_a_flag(nan_checkpoint, data_dir, tmp_path, capsys, caplog):
    loaded = load_model(nan_checkpoint)
    assert loaded.meta["warnings"] and "NaN" in loaded.meta["warnings"][0]
    out = tmp_path / "s.parquet"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(capsys, "score", "--checkpoint", nan_checkpoint, "--data", data_dir, "--out", out,
                               "--device", "cpu")
    assert code == 0, err
    assert "nan.pt" in caplog.text and f"{len(LABELS)} of {len(LABELS)} rows have confidence NaN" in caplog.text
    frame = pd.read_parquet(out)
    assert frame["confidence"].isna().all()


def test_confidence_filter_never_drops_nan_rows():
    frame = pd.DataFrame({"sample": range(4), "cer": [0.5, 1.0, 0.2, 0.0], "confidence": [np.nan, 0.3, np.nan, 0.99],
                          "province": list("AAAA"), "label_len": [5] * 4, "correct": [False, False, False, True]})
    edits = pd.DataFrame({"sample": [], "kind": [], "true": [], "pred": []})
    assert filter_frame(frame, edits, correctness="wrong")["sample"].tolist() == [0, 1, 2]
    assert filter_frame(frame, edits, confidence_range=(0.5, 1.0))["sample"].tolist() == [0, 2, 3]


def test_labels_longer_than_the_time_steps_warn_at_train_start_and_in_scores(tmp_path, capsys, caplog,
                                                                             tiny_checkpoint):
    data = tmp_path / "long"
    long_label = "A" * 20 + "B" * 20  # 40 characters + 38 repeats: more than 32 steps
    make_images(data, [*TRAIN_LABELS, long_label], naming="id")
    make_images(tmp_path / "short", TRAIN_LABELS, naming="id")
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", "--epochs", "1",
                               "--augment", "none", "--workers", "0", "--batch-size", "8", "--device", "cpu",
                               "--val-split", "0")
    assert code == 0, err
    assert "1 of 13 training labels can never be read" in caplog.text and long_label in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(capsys, "train", "--data", tmp_path / "short", "--val", data, "--out",
                               tmp_path / "run2", "--epochs", "1", "--augment", "none", "--workers", "0",
                               "--batch-size", "8", "--device", "cpu")
    assert code == 0, err
    assert "1 of 13 validation labels can never be read" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(capsys, "score", "--checkpoint", tmp_path / "run" / "last.pt", "--data", data,
                               "--out", tmp_path / "s.csv", "--device", "cpu")
    assert code == 0, err
    assert "1 of 13 rows have loss NaN" in caplog.text
    assert len(pd.read_csv(tmp_path / "s.csv")) == 13, "the NaN-loss row stays in the frame"


# ---- disk full ------------------------------------------------------------------------------------------------

def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob(".*.tmp")], "no half-written temp file left"


@pytest.mark.slow
def test_disk_full_score_train_and_synth_end_in_one_sentence(tmp_path, data_dir, tiny_checkpoint):
    # score: the previous output stays as it was.
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous output")
    proc = python_m("score", "--checkpoint", tiny_checkpoint, "--data", data_dir, "--out", out, "--device", "cpu",
                    cwd=tmp_path, preexec=_file_size_limit(1024))
    assert proc.returncode != 0
    assert "disk is full or a file-size limit" in one_error_line(proc.stderr)
    assert out.read_bytes() == b"previous output"
    _no_temp_files(tmp_path)

    # train: no checkpoint or history half-written; the run is marked failed.
    data = tmp_path / "train"
    make_images(data, TRAIN_LABELS, naming="id")
    run = tmp_path / "run"
    proc = python_m("train", "--data", data, "--out", run, "--epochs", "1", "--augment", "none", "--workers", "0",
                    "--batch-size", "8", "--device", "cpu", cwd=tmp_path, preexec=_file_size_limit(64 * 1024))
    assert proc.returncode != 0
    assert "disk is full or a file-size limit" in one_error_line(proc.stderr)
    assert not (run / "last.pt").exists() and not (run / "best.pt").exists()
    assert not (run / HISTORY_FILE).exists()
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    _no_temp_files(run)

    # synth: earlier plates intact, no partial plate, no completion marker.
    plates = tmp_path / "synth"
    proc = python_m("synth", "--out", plates, "--count", "3", "--seed", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    before = {p.name: p.read_bytes() for p in plates.iterdir()}
    (plates / ".complete").unlink()
    proc = python_m("synth", "--out", plates, "--count", "6", "--seed", "2", cwd=tmp_path,
                    preexec=_file_size_limit(1024))
    assert proc.returncode != 0
    assert "disk is full or a file-size limit" in one_error_line(proc.stderr)
    assert not (plates / ".complete").exists()
    for name, blob in before.items():
        if name != ".complete":
            assert (plates / name).read_bytes() == blob
    assert all(p.stat().st_size > 0 for p in plates.iterdir())
    _no_temp_files(plates)


def test_dashboard_shows_the_nan_weights_flag(nan_checkpoint, data_dir, tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ocr_core.roots import ROOTS_ENV

    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        at.session_state["checkpoint"] = "__other__"
        at.session_state["checkpoint_path"] = str(nan_checkpoint)
        at.session_state["dataset"] = "__other__"
        at.session_state["dataset_path"] = str(data_dir)
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        warnings = [w.value for w in at.warning]
        assert any("nan.pt" in w and "NaN" in w for w in warnings), warnings
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
