"""Crashes: training killed with SIGKILL mid-epoch, and a scoring run killed while writing its cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import read_checkpoint
from ocr_core.cli import main
from ocr_core.runs import launch_training, read_history, run_state
from ocr_core.score import read_cached_frame, write_frame_atomic

from conftest import make_images

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_training_killed_mid_epoch_loses_nothing_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    alphabet = "ABCDEFGHJK0123456789"
    labels = sorted({"".join(rng.choice(list(alphabet), 6)) for _ in range(600)})
    make_images(data, labels, naming="id")
    run_dir = workspace.runs_dir() / "crash"
    options = {"data": str(data), "out": str(run_dir), "epochs": 4, "batch_size": 16, "workers": 0,
               "augment": "none", "device": "cpu", "val_split": 0.1, "seed": 0}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    process = launch_training(options)
    try:
        _wait_for(lambda: (run_dir / "last.pt").exists() and len(read_history(run_dir)) >= 1, 240,
                  "the first epoch's checkpoint")
        time.sleep(0.3)  # into the next epoch
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Both checkpoints load, and the history is valid JSONL (a torn last line would be tolerated).
    best, last = read_checkpoint(run_dir / "best.pt"), read_checkpoint(run_dir / "last.pt")
    assert "train_state" not in best and best["metrics"]
    epochs_done = last["train_state"]["epoch"]
    assert epochs_done >= 1
    lines = (run_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines[:-1]]  # every complete line parses
    history = read_history(run_dir)
    assert len(history) >= len(rows) >= epochs_done - 1
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")], "no stray temp file is trusted"

    # The dashboard shows the run as failed.
    assert run_state(run_dir) == "failed"
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["dataset"] = "__other__"
    at.session_state["dataset_path"] = str(data)  # keeps the embedded set from being generated
    at.run()
    at.switch_page("../pages/train.py").run()
    assert not at.exception
    assert any(m.value.startswith("**crash** is **") and "failed]**" in m.value for m in at.markdown)
    assert any("The run failed" in e.value for e in at.error)

    # --resume continues from the last saved epoch to the run's total.
    assert epochs_done < 4
    assert main(["train", "--resume", str(run_dir)]) == 0
    history = read_history(run_dir)
    assert history["epoch"].tolist()[-(4 - epochs_done):] == list(range(epochs_done + 1, 5))
    assert run_state(run_dir) == "finished"
    assert read_checkpoint(run_dir / "last.pt")["train_state"]["epoch"] == 4


_SLOW_WRITER = """
import sys, time
from pathlib import Path
import pandas as pd
import pyarrow.parquet as pq
from ocr_core.score import write_frame_atomic

real = pq.write_table
def slow(table, where, **kw):
    # Half a Parquet file, then hang: the kill lands here.
    sink = where if hasattr(where, "write") else open(where, "wb")
    sink.write(b"PAR1" + b"x" * 4096)
    sink.flush()
    print("writing", flush=True)
    time.sleep(60)
pq.write_table = slow
frame = pd.DataFrame({"sample": range(10), "label": ["A"] * 10})
write_frame_atomic(frame, Path(sys.argv[1]), meta={"n": 10})
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_scoring_killed_while_writing_its_cache_leaves_nothing_trusted(tmp_path):
    target = tmp_path / "scores" / "key.parquet"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)], stdout=subprocess.PIPE, env=env,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert not target.exists(), "only the temp file may exist after the kill"
    assert read_cached_frame(target) is None
    leftovers = [p for p in target.parent.iterdir() if p.suffix != ".json"]  # the sidecar is never read alone
    assert leftovers and all(p.name.startswith(".") for p in leftovers), leftovers

    # A later run writes a good cache beside the leftover, and only that one is read.
    frame = pd.DataFrame({"sample": range(3), "label": ["A", "B", "C"]})
    write_frame_atomic(frame, target, meta={"n": 3})
    assert read_cached_frame(target)["label"].tolist() == ["A", "B", "C"]


def test_a_corrupt_cache_file_is_never_trusted(tmp_path):
    target = tmp_path / "key.parquet"
    frame = pd.DataFrame({"sample": range(3), "label": ["A", "B", "C"]})
    write_frame_atomic(frame, target, meta={"n": 3})
    blob = target.read_bytes()
    target.write_bytes(blob[: len(blob) // 2])  # e.g. a disk filled up under an older, non-atomic writer
    assert read_cached_frame(target) is None


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups (POSIX)")
def test_sigterm_to_the_whole_process_group_still_saves_last(tmp_path, monkeypatch):
    """Ctrl-C in a terminal or `pkill` reaches the DataLoader workers too; the run must still stop cleanly."""
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = tmp_path / "data"
    make_images(data, [f"AB{i:04d}" for i in range(300)], naming="id")
    run_dir = workspace.runs_dir() / "group"
    process = launch_training({"data": str(data), "out": str(run_dir), "epochs": 30, "batch_size": 16,
                               "workers": 2, "augment": "none", "device": "cpu", "val_split": 0.1})
    try:
        _wait_for(lambda: len(read_history(run_dir)) >= 1, 240, "the first epoch")
        os.killpg(process.pid, signal.SIGTERM)  # launch_training starts a new session: pgid == pid
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    assert run_state(run_dir) == "stopped", log[-2000:]
    assert "Traceback" not in log, log[-2000:]
    assert read_checkpoint(run_dir / "last.pt")["train_state"]["epoch"] >= 1


_FAILING_STEP = """
import sys
from ocr_core.heads import CTCHead
from ocr_core.train import TrainOptions, train

real_loss, steps = CTCHead.training_loss, []
def failing_loss(self, logits, labels):
    steps.append(1)
    if len(steps) == 3:
        raise ValueError("a bug in the third step")
    return real_loss(self, logits, labels)
CTCHead.training_loss = failing_loss
train(TrainOptions(data=sys.argv[1], out=sys.argv[2], epochs=2, augment="none", workers=1, batch_size=16,
                   device="cpu", val_split=0.1))
"""


def test_a_training_step_that_raises_ends_the_process_with_its_error(tmp_path, make_images):
    """With a DataLoader worker, an error used to leave the process waiting on its worker forever."""
    data = tmp_path / "data"
    make_images(data, [f"AB{i:04d}" for i in range(120)], naming="id")
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _FAILING_STEP, str(data), str(run_dir)], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the failed training run did not exit within 120 s (hung on its DataLoader worker)")
    assert done.returncode == 1 and "a bug in the third step" in done.stderr
    assert run_state(run_dir) == "failed"
    assert "a bug in the third step" in json.loads((run_dir / "status.json").read_text())["error"]
