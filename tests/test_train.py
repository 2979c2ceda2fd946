"""Training on a tiny drawn set: loss goes down, the run folder is complete, fine-tuning and resuming work.

Also the run-folder helpers of ``ocr_core.runs`` (history with a torn last line, dead "running" processes).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ocr_core.checkpoint import load_model, make_checkpoint, read_checkpoint
from ocr_core.data.image_io import read_rgb, resize_to_input
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.runs import (
    HISTORY_FILE,
    STATUS_FILE,
    ProgressWriter,
    append_history,
    list_runs,
    progress_line,
    read_history,
    read_json,
    run_state,
    train_command,
    write_status,
)
from ocr_core.preprocess import InputSpec
from ocr_core.train import (FINETUNE_LR, SCRATCH_LR, TrainOptions, _load_splits, resumed_batches, train,
                             transfer_weights)
from ocr_core.vocab import Vocab

HISTORY_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "val_cer", "lr", "seconds",
                "samples_per_second"}
CHARSET = "ABC0123"


def _labels(n: int, charset: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(charset) for _ in range(rng.randint(3, 5))) for _ in range(n)]


def _options(data: Path, out: Path, **overrides) -> TrainOptions:
    base = dict(data=str(data), out=str(out), epochs=3, augment="none", workers=0, batch_size=16,
                device="cpu", val_split=0.15, seed=0)
    base.update(overrides)
    return TrainOptions(**base)


@pytest.fixture(scope="module")
def plate_folder(tmp_path_factory, make_images) -> Path:
    folder = tmp_path_factory.mktemp("plates")
    make_images(folder, _labels(48, CHARSET, seed=0), naming="id")
    return folder


@pytest.fixture(scope="module")
def finished_run(plate_folder, tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    out = tmp_path_factory.mktemp("run") / "r1"
    seen: list[dict] = []

    def on_epoch(row: dict) -> None:
        status = read_json(out / STATUS_FILE)
        seen.append({"row": row, "status": status})

    result = train(_options(plate_folder, out), on_epoch=on_epoch)
    return out, result, seen


def test_training_lowers_the_loss_and_writes_the_run_folder(finished_run):
    out, result, seen = finished_run
    names = {p.name for p in out.iterdir()}
    assert names >= {"best.pt", "last.pt", "history.jsonl", "status.json", "options.json"}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]

    lines = (out / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 3
    for row in rows:
        assert set(row) >= HISTORY_KEYS
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(0.0 <= r["val_cer"] for r in rows) and all(0.0 <= r["val_accuracy"] <= 1.0 for r in rows)
    assert all(r["samples_per_second"] > 0 and r["seconds"] >= 0 for r in rows)

    status = json.loads((out / STATUS_FILE).read_text(encoding="utf-8"))
    assert status["state"] == "finished" and "progress" not in status
    assert run_state(out) == "finished"
    # While the epochs ran, the status said running, with this process's id.
    assert [s["status"]["state"] for s in seen] == ["running"] * 3
    # ...and how far the epoch had got: every epoch's last batch is always reported.
    progress = [s["status"]["progress"] for s in seen]
    assert [(p["phase"], p["epoch"], p["epochs"]) for p in progress] == [("train", e, 3) for e in (1, 2, 3)]
    assert all(p["done"] == p["total"] > 0 for p in progress)
    assert {s["status"]["pid"] for s in seen} == {os.getpid()}
    assert [s["row"]["epoch"] for s in seen] == [1, 2, 3]

    options = json.loads((out / "options.json").read_text(encoding="utf-8"))
    assert options["epochs"] == 3 and options["augment"] == "none"
    assert result["epoch"] == 3 and result["train_loss"] == pytest.approx(rows[-1]["train_loss"])

    best = read_checkpoint(out / "best.pt")
    last = read_checkpoint(out / "last.pt")
    assert "train_state" not in best and last["train_state"]["epoch"] == 3
    assert best["vocab"] == "".join(sorted(CHARSET))
    assert last["augment"] is None
    loaded = load_model(out / "best.pt")
    assert loaded.arch == "small" and loaded.input_size == (32, 128)

    history = read_history(out)
    assert list(history["epoch"]) == [1, 2, 3]
    runs = list_runs(out.parent)
    assert runs.loc[0, "run"] == out.name and runs.loc[0, "state"] == "finished"
    assert runs.loc[0, "epochs"] == "3/3" and runs.loc[0, "best_checkpoint"].endswith("best.pt")


def test_fine_tune_with_init_extends_the_vocabulary_and_keeps_old_rows(finished_run, tmp_path, make_images):
    init = finished_run[0] / "best.pt"
    old = read_checkpoint(init)
    assert "Z" not in old["vocab"] and "X" not in old["vocab"]
    data = tmp_path / "new"
    make_images(data, [lab + ("Z" if i % 2 else "X") for i, lab in enumerate(_labels(20, CHARSET, seed=5))],
                naming="id")
    out = tmp_path / "ft"
    # lr=0: the optimizer moves no weight, so the carried rows must be exactly the init checkpoint's.
    train(_options(data, out, epochs=1, init=str(init), lr=0.0))
    tuned = read_checkpoint(out / "best.pt")
    assert tuned["arch"] == old["arch"]
    assert tuned["vocab"] == old["vocab"] + "XZ"
    n_old = len(old["vocab"]) + 1
    for key in ("head.weight", "head.bias"):
        assert tuned["state_dict"][key].shape[0] == n_old + 2
        assert torch.equal(tuned["state_dict"][key][:n_old], old["state_dict"][key])
    assert torch.equal(tuned["state_dict"]["rnn.weight_ih_l0"], old["state_dict"]["rnn.weight_ih_l0"])


def test_a_fine_tune_defaults_to_a_lower_peak_learning_rate(finished_run, plate_folder, tmp_path):
    scratch = finished_run[0]
    assert json.loads((scratch / "options.json").read_text())["lr"] == SCRATCH_LR
    out = tmp_path / "ft-default-lr"
    # Same data, epochs and batch size as the scratch run, so both follow the same schedule, scaled by its peak.
    train(_options(plate_folder, out, init=str(scratch / "best.pt")))
    assert json.loads((out / "options.json").read_text())["lr"] == FINETUNE_LR
    tuned, fresh = read_history(out)["lr"].to_numpy(), read_history(scratch)["lr"].to_numpy()
    assert tuned == pytest.approx(fresh * (FINETUNE_LR / SCRATCH_LR), rel=1e-6)


def test_resume_continues_the_epochs(plate_folder, finished_run, tmp_path):
    out = tmp_path / "r2"
    train(_options(plate_folder, out, epochs=2))
    assert [r["epoch"] for r in map(json.loads, (out / HISTORY_FILE).read_text().splitlines())] == [1, 2]
    # Resume with a larger total: the saved options are reused, only the epoch count grows.
    train(TrainOptions(data="", out=str(out), epochs=3), resume=str(out))
    rows = [json.loads(line) for line in (out / HISTORY_FILE).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert read_checkpoint(out / "last.pt")["train_state"]["epoch"] == 3
    assert json.loads((out / "options.json").read_text())["epochs"] == 3
    assert json.loads((out / "options.json").read_text())["data"] == str(plate_folder)
    assert run_state(out) == "finished"
    # The learning-rate schedule is re-planned for the new total: epoch 3 ends where a fresh 3-epoch run ends.
    fresh = read_history(finished_run[0])
    assert rows[2]["lr"] == pytest.approx(float(fresh["lr"].iloc[2]), rel=1e-6)
    # Each run's last logged LR is the end of its own schedule (annealed to about zero), not past it.
    assert rows[2]["lr"] < 1e-3 * json.loads((out / "options.json").read_text())["lr"]
    # Resuming a finished run runs no more epochs.
    train(TrainOptions(data="", out=str(out), epochs=0), resume=str(out))
    assert len(read_history(out)) == 3


def test_a_run_stopped_mid_epoch_resumes_on_the_fresh_schedule(plate_folder, tmp_path, monkeypatch):
    """A stop (Ctrl-C, `timeout`) inside an epoch saves that epoch's partial steps in last.pt's scheduler."""
    import ocr_core.train as train_module

    class StopInEpochTwo(train_module._StopFlag):
        checks = 0

        @property
        def raised(self) -> bool:
            StopInEpochTwo.checks += 1
            return StopInEpochTwo.checks == 5 + 3  # the loop checks once a step; 5 steps an epoch at batch 8

        @raised.setter
        def raised(self, value: bool) -> None:
            pass

    out = tmp_path / "stopped"
    monkeypatch.setattr(train_module, "_StopFlag", StopInEpochTwo)
    assert train(_options(plate_folder, out, batch_size=8))["stopped"]
    monkeypatch.undo()
    assert run_state(out) == "stopped" and len(read_history(out)) == 1
    assert read_checkpoint(out / "last.pt")["train_state"]["scheduler"]["last_epoch"] == 8
    # Resumed, epochs 2 and 3 run on the schedule of a run that was never stopped (before: "Tried to step
    # 17 times. The specified number of total steps is 16").
    train(TrainOptions(data="", out=str(out), epochs=0), resume=str(out))
    fresh = tmp_path / "fresh"
    train(_options(plate_folder, fresh, batch_size=8))
    resumed, unstopped = read_history(out), read_history(fresh)
    assert resumed["epoch"].tolist() == [1, 2, 3] and run_state(out) == "finished"
    assert resumed["lr"].to_numpy() == pytest.approx(unstopped["lr"].to_numpy(), rel=1e-6)


def _shuffled_loader(workers: int) -> torch.utils.data.DataLoader:
    # train()'s loader: seeded generator, shuffle, drop_last, persistent workers when there are any.
    return torch.utils.data.DataLoader(list(range(23)), batch_size=4, shuffle=True, drop_last=True,
                                       generator=torch.Generator().manual_seed(7), num_workers=workers,
                                       persistent_workers=workers > 0)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_resumed_run_goes_on_in_the_uninterrupted_runs_order(workers):
    """Before, a resumed run restarted its generator from the seed and repeated the first epochs' orders."""
    loader = _shuffled_loader(workers)
    uninterrupted = [[int(i) for batch in loader for i in batch] for _ in range(4)]
    assert uninterrupted[2] != uninterrupted[0]
    resumed_loader = _shuffled_loader(workers)  # a resume builds its loader afresh, then starts at epoch 3
    epoch_3 = [int(i) for batch in resumed_batches(resumed_loader, 2, 7) for i in batch]
    epoch_4 = [int(i) for batch in resumed_loader for i in batch]
    assert [epoch_3, epoch_4] == uninterrupted[2:]


def test_a_run_started_with_the_largest_seed_resumes():
    from ocr_core.cli import MAX_SEED
    from ocr_core.train import _resumed_seed, _set_seed

    _set_seed(_resumed_seed(MAX_SEED, 3))  # numpy refused seed + 3 steps (over 2**32 - 1)
    assert _resumed_seed(5, 0) == 5


def test_an_augmented_run_without_workers_is_reproducible(plate_folder, tmp_path):
    """With --workers 0 the pipeline augments in the training process; it took OS entropy, not --seed."""
    weights = []
    for name in ("a", "b"):
        train(_options(plate_folder, tmp_path / name, epochs=1, augment="default"))
        weights.append(read_checkpoint(tmp_path / name / "last.pt")["state_dict"])
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_resume_without_last_checkpoint_fails_cleanly(tmp_path):
    with pytest.raises(InputError, match="last.pt"):
        train(TrainOptions(data="", out=str(tmp_path), epochs=1), resume=str(tmp_path))


def test_bad_dataset_marks_the_run_failed(tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(InputError, match="does not exist"):
        train(_options(tmp_path / "missing", out))
    status = read_json(out / STATUS_FILE)
    assert status["state"] == "failed" and "does not exist" in status["error"]
    assert run_state(out) == "failed"


def test_transfer_weights_grows_output_rows_only():
    torch.manual_seed(0)
    config = arch_config("small", {"channels": [8, 8, 16, 16], "rnn_hidden": 8})
    old = build_model("small", 5, config)
    new = build_model("small", 7, config)
    fresh_rows = new.head.weight[5:].detach().clone()
    transfer_weights(new, old.state_dict(), 5)
    assert torch.equal(new.head.weight[:5], old.head.weight)
    assert torch.equal(new.head.bias[:5], old.head.bias)
    assert torch.equal(new.head.weight[5:], fresh_rows)
    assert torch.equal(new.cnn[0].weight, old.cnn[0].weight)
    other = build_model("small", 7, arch_config("small", {"channels": [8, 8, 16, 32], "rnn_hidden": 8}))
    with pytest.raises(InputError, match="--arch"):
        transfer_weights(other, old.state_dict(), 5)


def test_best_checkpoint_metrics_match_rescoring_the_validation_split(finished_run, plate_folder):
    """The figures stored in best.pt are what the scorer finds on the same hash-split validation rows."""
    from ocr_core.data.dataset import load_dataset
    from ocr_core.data.sources import split_by_hash
    from ocr_core.score import score_dataset, summarize

    out = finished_run[0]
    best = read_checkpoint(out / "best.pt")
    loaded = load_model(out / "best.pt")
    data = load_dataset(plate_folder)
    _, val_idx = split_by_hash(data.samples, 0.15)
    assert 0 < len(val_idx) < len(data)
    frame = score_dataset(loaded, data.subset(val_idx))
    summary = summarize(frame)
    assert summary.accuracy == pytest.approx(best["metrics"]["val_accuracy"], abs=1e-6)
    assert summary.cer == pytest.approx(best["metrics"]["val_cer"], abs=1e-5)
    # val_loss is per label character, the unit of the training loss.
    per_char = frame["loss"] / frame["label_len"].clip(lower=1)
    assert float(per_char.mean()) == pytest.approx(best["metrics"]["val_loss"], rel=1e-4)
    assert best["metrics"]["epoch"] in read_history(out)["epoch"].tolist()


# ---- runs ---------------------------------------------------------------------------------------------

def test_read_history_ignores_a_torn_last_line(tmp_path):
    append_history(tmp_path / HISTORY_FILE, {"epoch": 1, "train_loss": 3.0, "val_loss": float("nan")})
    append_history(tmp_path / HISTORY_FILE, {"epoch": 2, "train_loss": 2.0, "val_loss": 1.0})
    with open(tmp_path / HISTORY_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"epoch": 3, "train_lo')
    history = read_history(tmp_path)
    assert history["epoch"].tolist() == [1, 2]
    # NaN is written as null and read back as missing.
    assert history["val_loss"].isna().tolist() == [True, False]
    assert read_history(tmp_path / "nothing").empty


def test_run_state_running_with_dead_pid_is_failed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    write_status(tmp_path, "running", pid=proc.pid)
    assert read_json(tmp_path / STATUS_FILE)["state"] == "running"
    assert run_state(tmp_path) == "failed"
    write_status(tmp_path, "running", pid=os.getpid())
    assert run_state(tmp_path) == "running"
    write_status(tmp_path, "stopped")
    assert run_state(tmp_path) == "stopped"
    (tmp_path / STATUS_FILE).write_text("{not json", encoding="utf-8")
    assert run_state(tmp_path) == "failed"
    assert run_state(tmp_path / "none") == "failed"


def test_progress_writer_throttles_and_progress_line_reads_it(tmp_path):
    write_status(tmp_path, "running")
    started = read_json(tmp_path / STATUS_FILE)["started"]
    now = [0.0]
    report = ProgressWriter(tmp_path, interval_s=2.0, clock=lambda: now[0])
    report("decode", 64, 1000)
    assert progress_line(tmp_path) == (0.064, "Decoding images: 64 of 1,000")
    now[0] = 1.0
    report("decode", 128, 1000)  # too soon after the last write: dropped
    assert progress_line(tmp_path)[1] == "Decoding images: 64 of 1,000"
    report("decode", 1000, 1000)  # a finished phase is always written
    assert progress_line(tmp_path) == (1.0, "Decoding images: 1,000 of 1,000")
    now[0] = 1.5
    report("train", 1, 3125, 1, 3)  # too soon, but a new phase: written, or the page shows decoding
    assert progress_line(tmp_path)[1] == "Epoch 1 of 3: batch 1 of 3,125"
    now[0] = 1.6
    report("train", 2, 3125, 1, 3)  # same phase and epoch, too soon: dropped
    assert progress_line(tmp_path)[1] == "Epoch 1 of 3: batch 1 of 3,125"
    now[0] = 3.5
    report("train", 1200, 3125, 2, 3)
    assert progress_line(tmp_path) == (pytest.approx(1200 / 3125), "Epoch 2 of 3: batch 1,200 of 3,125")
    status = read_json(tmp_path / STATUS_FILE)
    assert status["state"] == "running" and status["started"] == started and status["pid"] == os.getpid()
    # A run that has ended shows no progress bar, and the final status carries none.
    write_status(tmp_path, "finished")
    assert progress_line(tmp_path) is None and "progress" not in read_json(tmp_path / STATUS_FILE)
    assert progress_line(tmp_path / "none") is None


def test_train_command_round_trips_options(tmp_path):
    cmd = train_command({"data": "d", "out": str(tmp_path), "epochs": 4, "augment": "none", "init": None,
                         "batch_size": 16, "workers": 0})
    assert cmd[:3] == [sys.executable, "-m", "ocr_core"]
    assert cmd[cmd.index("--epochs") + 1] == "4" and "--init" not in cmd
    assert cmd[cmd.index("--workers") + 1] == "0"
    assert "--teacher" not in cmd and "--distill-other-positions" not in cmd

    cmd = train_command({"data": "d", "out": str(tmp_path), "teachers": ["a.pt", "b.pt"],
                         "distill_temperature": 4.0, "distill_other_positions": True})
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--teacher"] == ["a.pt", "b.pt"]
    assert cmd[cmd.index("--distill-temperature") + 1] == "4.0" and "--distill-other-positions" in cmd


def test_make_checkpoint_train_state_is_weights_only_loadable(tmp_path):
    """Everything train() puts in last.pt must load with weights_only=True (it is read back on --resume)."""
    vocab = Vocab("AB")
    model = build_model("small", vocab.num_classes, arch_config("small", {"channels": [4, 4, 8, 8]}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=4)
    ckpt = make_checkpoint(model, "small", arch_config("small", {"channels": [4, 4, 8, 8]}), vocab, (32, 128),
                           train_state={"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                        "options": {"data": "x"}, "epoch": 1})
    torch.save(ckpt, tmp_path / "c.pt")
    assert read_checkpoint(tmp_path / "c.pt")["train_state"]["epoch"] == 1


# ---- workspace ----------------------------------------------------------------------------------------

def test_workspace_folders_follow_the_environment(tmp_path, monkeypatch):
    from ocr_core import workspace

    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    assert workspace.workspace_dir() == (tmp_path / "ws").resolve()
    for folder in (workspace.runs_dir(), workspace.datasets_dir(), workspace.scores_dir()):
        assert folder.is_dir() and folder.parent == (tmp_path / "ws").resolve()
    done = workspace.datasets_dir() / "a"
    done.mkdir()
    (done / ".complete").write_text("x", encoding="utf-8")
    (workspace.datasets_dir() / "half-written").mkdir()
    assert workspace.synthetic_sets() == [done]


def test_embedded_testset_is_generated_once_into_place(tmp_path, monkeypatch):
    from ocr_core import workspace

    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    calls = []

    def fake_generate(out, count, seed, styles, progress=None):
        calls.append((Path(out).name, count, seed, tuple(styles)))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "000000-A1.png").write_bytes(b"png")
        return [Path(out) / "000000-A1.png"]

    monkeypatch.setattr(workspace.synth, "generate", fake_generate)
    first = workspace.ensure_embedded_testset()
    second = workspace.ensure_embedded_testset()
    assert first == second == workspace.datasets_dir() / workspace.EMBEDDED_TESTSET
    assert len(calls) == 1 and calls[0][0].startswith(".")  # written to a hidden temp folder first
    assert calls[0][1:3] == (workspace.EMBEDDED_COUNT, workspace.EMBEDDED_SEED)
    assert (first / ".complete").is_file() and (first / "000000-A1.png").is_file()
    assert [p.name for p in workspace.datasets_dir().iterdir()] == [workspace.EMBEDDED_TESTSET]


def test_synthetic_mix_is_generated_once_with_its_own_seed(tmp_path, monkeypatch):
    from ocr_core import workspace

    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    calls = []

    def fake_generate(out, count, seed, styles, progress=None):
        calls.append((count, seed, tuple(styles)))
        Path(out).mkdir(parents=True, exist_ok=True)
        return []

    monkeypatch.setattr(workspace.synth, "generate", fake_generate)
    first = workspace.ensure_synthetic_mix(40)
    assert workspace.ensure_synthetic_mix(40) == first == workspace.datasets_dir() / "synth-mix-40"
    assert calls == [(40, workspace.SYNTH_MIX_SEED, ("ccpd", "ccpd-green"))]
    assert workspace.SYNTH_MIX_SEED != workspace.EMBEDDED_SEED
    with pytest.raises(ValueError, match="positive plate count"):
        workspace.ensure_synthetic_mix(0)


def test_train_cli_mixes_the_synthetic_set_into_the_training_data(tmp_path, monkeypatch, make_images, capsys):
    from ocr_core import cli, workspace

    mix = tmp_path / "mix"
    make_images(mix, ["CAB12"] * 4, naming="id")
    requested = []

    def fake_mix(count, progress=None):
        requested.append(count)
        return mix

    seen = {}

    def fake_train(opts, resume=None):
        seen["extra_data"] = opts.extra_data
        return {"best_accuracy": 1.0}

    monkeypatch.setattr(workspace, "ensure_synthetic_mix", fake_mix)
    monkeypatch.setattr("ocr_core.train.train", fake_train)
    other = str(mix)  # --extra-data must exist (checked by the parser)
    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--extra-data", other]
    assert cli.main([*argv, "--synth-mix", "25"]) == 0
    assert requested == [25] and seen["extra_data"] == [other, str(mix)]
    assert cli.main(argv) == 0
    assert requested == [25] and seen["extra_data"] == [other]
    assert cli.main([*argv, "--synth-mix", "-3"]) == cli.EXIT_INPUT_ERROR
    assert "--synth-mix: -3 is out of range" in capsys.readouterr().err


def test_upscale_is_set_for_a_new_model_inherited_by_a_fine_tune_and_used_to_decode(tmp_path, make_images):
    # Crops smaller than the 32x128 input, as the real CCPD crops (94x24) are: the setting decides how they grow.
    data = tmp_path / "small-crops"
    paths = make_images(data, _labels(24, CHARSET, seed=7), naming="id", size=(24, 94))
    cubic_run = tmp_path / "cubic"
    train(_options(data, cubic_run, epochs=1, upscale="cubic"))
    assert read_checkpoint(cubic_run / "best.pt")["input"]["upscale"] == "cubic"
    inherited = tmp_path / "inherited"
    train(_options(data, inherited, epochs=1, init=str(cubic_run / "best.pt"), lr=0.0))
    assert read_checkpoint(inherited / "best.pt")["input"]["upscale"] == "cubic"
    overridden = tmp_path / "overridden"
    train(_options(data, overridden, epochs=1, init=str(cubic_run / "best.pt"), lr=0.0, upscale="linear"))
    assert read_checkpoint(overridden / "best.pt")["input"]["upscale"] == "linear"

    decoded, _ = _load_splits(_options(data, tmp_path / "unused", val_split=0.0), InputSpec(upscale="cubic"))
    first = decoded.samples.index(next(s for s in decoded.samples if Path(s.path) == paths[0]))
    assert np.array_equal(decoded.images[first], resize_to_input(read_rgb(paths[0]), 32, 128, "cubic"))
    assert not np.array_equal(decoded.images[first], resize_to_input(read_rgb(paths[0]), 32, 128, "linear"))
