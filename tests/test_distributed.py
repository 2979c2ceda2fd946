"""Training and scoring across processes with torchrun (gloo on the CPU), as on several GPUs or machines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ocr_core.checkpoint import read_checkpoint
from ocr_core.cli import main
from ocr_core.data import synth
from ocr_core.distributed import World, shard
from ocr_core.errors import InputError
from ocr_core.frame import scoring_record
from ocr_core.score import merge_score_parts
from ocr_core.train import TrainOptions, train

pytestmark = pytest.mark.slow  # each test starts torchrun and two Python processes that import torch


def torchrun(*args: str, processes: int = 2, timeout: int = 240, **popen) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "ocr_core", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, **popen)


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp") / "plates"
    synth.generate(folder, 80, seed=11, styles=("ccpd",))
    return folder


def test_shards_cover_every_row_once_in_order():
    for n in (0, 1, 7, 10):
        for size in (1, 2, 3, 4):
            rows = [i for rank in range(size) for i in shard(n, World(rank, size, rank))]
            assert rows == list(range(n))


def test_two_process_training_writes_one_run_and_resumes_with_one(plates, tmp_path):
    run = tmp_path / "run"
    done = torchrun("train", "--data", str(plates), "--out", str(run), "--epochs", "3", "--batch-size", "8",
                    "--workers", "0", "--augment", "none", "--lr", "3e-3")
    assert done.returncode == 0, done.stderr[-2000:]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3], "rank 0 alone writes the history"
    assert all(h["processes"] == 2 for h in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert done.stdout.count("finished:") == 1
    # The checkpoint is the model itself (no DDP "module." prefixes), like a one-process run's.
    single = tmp_path / "single"
    train(TrainOptions(data=str(plates), out=str(single), epochs=1, batch_size=8, workers=0, augment="none"))
    ddp_keys = read_checkpoint(run / "last.pt")["state_dict"].keys()
    assert ddp_keys == read_checkpoint(single / "last.pt")["state_dict"].keys()
    assert not any(k.startswith("module.") for k in ddp_keys)
    # --resume with another number of processes: one this time.
    assert main(["train", "--resume", str(run), "--epochs", "4", "--workers", "0"]) == 0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and history[-1]["processes"] == 1


def test_a_stop_signal_ends_every_process_with_last_pt_saved(plates, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "ocr_core", "train", "--data", str(plates), "--out", str(run), "--epochs", "200",
               "--batch-size", "8", "--workers", "0", "--augment", "none"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (run / "history.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (run / "history.jsonl").is_file(), "the run never finished an epoch"
        os.killpg(process.pid, signal.SIGTERM)  # what Ctrl-C or a scheduler does to the whole job
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert (run / "last.pt").is_file()
    state = read_checkpoint(run / "last.pt")["train_state"]
    assert 1 <= state["epoch"] < 200
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped", status


def test_sharded_scoring_merges_to_the_one_process_frame(plates, tmp_path, tiny_checkpoint):
    single = tmp_path / "single.parquet"
    assert main(["score", "--checkpoint", str(tiny_checkpoint), "--data", str(plates), "--out", str(single)]) == 0
    parts = tmp_path / "parts"
    done = torchrun("score", "--checkpoint", str(tiny_checkpoint), "--data", str(plates), "--out", str(parts))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in parts.iterdir()) == [
        "part-00000-of-00002.parquet", "part-00001-of-00002.parquet", "scores.parquet"]
    expected = pd.read_parquet(single)
    merged = pd.read_parquet(parts / "scores.parquet")
    pd.testing.assert_frame_equal(merged, expected, rtol=1e-4)
    assert scoring_record(merged) == scoring_record(expected) and scoring_record(merged)["tta"] is False
    # merge-scores joins the same parts again; a missing part is one sentence.
    assert main(["merge-scores", str(parts), "--out", str(tmp_path / "again.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again.parquet"), expected, rtol=1e-4)
    (parts / "part-00001-of-00002.parquet").unlink()
    with pytest.raises(InputError, match="rank"):
        merge_score_parts(parts)


def test_the_train_page_command_starts_torchrun_for_several_processes(tmp_path):
    from ocr_core.runs import train_command

    one = train_command({"data": "d", "out": str(tmp_path), "processes": 1})
    assert one[1:4] == ["-m", "ocr_core", "train"]
    two = train_command({"data": "d", "out": str(tmp_path), "processes": 2, "epochs": 3})
    assert two[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert two[5:8] == ["-m", "ocr_core", "train"] and two[-2:] == ["--epochs", "3"]
