"""AppTest runs of every dashboard page on a small embedded test set in a temporary workspace.

The checkpoint is a freshly initialised stand-in for the demo (it reads every plate wrong, which is
what the error-analysis pages need to have something to show, and it does not depend on demo.pt).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.analysis import rank_worst
from ocr_core.atomic import write_json_atomic
from ocr_core.checkpoint import make_checkpoint, read_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.models import arch_config, build_model
from ocr_core.runs import OPTIONS_FILE, read_history, run_state, write_progress, write_status
from ocr_core.train import FINETUNE_LR, SCRATCH_LR
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
EMBEDDED_COUNT = 200
OTHER = "__other__"


def stand_in_checkpoint(path: Path, seed: int = 0) -> Path:
    """An untrained ``small`` model over the CCPD characters."""
    torch.manual_seed(seed)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    model = build_model("small", vocab.num_classes, config)
    save_checkpoint(make_checkpoint(model, "small", config, vocab, (32, 128)), path)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """A temporary workspace with a 200-plate embedded set and a stand-in demo checkpoint."""
    root = tmp_path_factory.mktemp("app")
    ws = root / "workspace"
    checkpoint = stand_in_checkpoint(root / "demo.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATELENS_WORKSPACE", str(ws))
        mp.setattr(workspace, "EMBEDDED_COUNT", EMBEDDED_COUNT)
        mp.setattr(workspace, "DEMO_CHECKPOINT", checkpoint)
        yield SimpleNamespace(root=root, workspace=ws, checkpoint=checkpoint)



def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def image_urls(at: AppTest) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def embedded_score_frame(env) -> pd.DataFrame:
    """The cached score frame of the stand-in checkpoint on the embedded test set."""
    for sidecar in (env.workspace / "scores").glob("*.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if (meta["checkpoint"] == str(env.checkpoint) and workspace.EMBEDDED_TESTSET in meta["dataset"]
                and not meta.get("tta")):
            return pd.read_parquet(sidecar.with_suffix(".parquet"))
    raise AssertionError("no cached score frame of the embedded test set")


def open_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(f"../pages/{page}.py").run()
    assert_clean(at)
    return at


def test_first_run_generates_scores_and_caches(app, env):
    app.run()
    assert_clean(app)
    assert app.sidebar.selectbox(key="checkpoint").value == str(env.checkpoint)
    assert app.sidebar.selectbox(key="dataset").value.startswith("embedded:")
    assert any("CPU" in c.value or "GPU" in c.value for c in app.sidebar.caption)
    assert (env.workspace / "datasets" / workspace.EMBEDDED_TESTSET / ".complete").exists()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Samples"] == str(EMBEDDED_COUNT)
    assert {"Accuracy", "CER", "Mean confidence", "OOV labels"} <= set(metrics)
    assert len(app.get("plotly_chart")) == 7  # five slices, doubled characters and the attribute slice
    cached = list((env.workspace / "scores").glob("*.parquet"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns

    st.cache_data.clear()
    st.cache_resource.clear()
    again = AppTest.from_file(MAIN, default_timeout=120).run()
    assert_clean(again)
    assert cached[0].stat().st_mtime_ns == stamp, "a second launch must read the score cache, not rescore"


def test_the_tta_toggle_scores_once_more_and_keeps_both_frames(app, env):
    app.run()
    assert_clean(app)
    assert not any("test-time augmentation" in c.value for c in app.caption)
    plain = list((env.workspace / "scores").glob("*.parquet"))
    assert len(plain) == 1
    app.sidebar.toggle(key="tta").set_value(True).run()
    assert_clean(app)
    assert any("test-time augmentation" in c.value for c in app.caption)
    frames = {p: json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
              for p in (env.workspace / "scores").glob("*.parquet")}
    assert len(frames) == 2, "the toggle scores the set again, under its own cache key"
    voted = next(p for p, meta in frames.items() if meta.get("tta"))
    # The label's loss is that of the crop as it is, with or without the views' vote.
    pd.testing.assert_series_equal(pd.read_parquet(voted)["loss"], pd.read_parquet(plain[0])["loss"])
    stamp = plain[0].stat().st_mtime_ns
    app.sidebar.toggle(key="tta").set_value(False).run()
    assert_clean(app)
    assert plain[0].stat().st_mtime_ns == stamp, "switching back reads the first frame from the cache"


def test_bad_paths_show_a_message_not_a_traceback(app, env):
    app.run()
    app.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    assert any("Enter a checkpoint path" in i.value for i in app.info)
    app.sidebar.text_input(key="checkpoint_path").set_value(str(env.root / "missing.pt")).run()
    assert not app.exception
    assert any("missing.pt does not exist" in e.value for e in app.error)
    broken = env.root / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    app.sidebar.text_input(key="checkpoint_path").set_value(str(broken)).run()
    assert not app.exception
    assert any("broken.pt" in e.value for e in app.error)

    app.sidebar.selectbox(key="checkpoint").set_value(str(env.checkpoint))
    app.sidebar.selectbox(key="dataset").set_value(OTHER).run()
    app.sidebar.text_input(key="dataset_path").set_value(str(env.root / "nowhere")).run()
    assert not app.exception
    assert any("nowhere does not exist" in e.value for e in app.error)


def test_worst_predictions_gallery_filters_and_detail(app):
    at = open_page(app, "worst")
    cards = at.get("image")
    assert len(cards) >= 12  # a page of cards
    diff = " ".join(m.value for m in at.markdown)
    assert "CER" in diff and "conf" in diff and "background:#" in diff
    assert at.get("download_button")
    assert any("samples match" in m.value for m in at.markdown)

    inspect = [b for b in at.button if b.key and b.key.startswith("worst:inspect:")]
    target = int(inspect[3].key.rsplit(":", 1)[1])
    inspect[3].click().run()
    assert_clean(at)
    assert at.selectbox(key="worst_detail").value == target
    assert at.get("plotly_chart"), "the per-time-step heatmap"
    assert len(at.get("image")) >= len(cards) + 1 + 4  # the detail image and four augmented draws

    at.multiselect(key="worst_lengths").set_value([8]).run()  # green plates only
    assert_clean(at)
    count_line = next(m.value for m in at.markdown if "samples match" in m.value)
    assert not count_line.startswith("**0**")

    at.radio(key="worst_correctness").set_value("correct").run()
    assert_clean(at)
    assert any("No errors in this slice" in i.value for i in at.info)


def test_confusions_matrix_table_and_pair_samples(app):
    at = open_page(app, "confusions")
    assert len(at.get("plotly_chart")) == 1
    assert at.dataframe
    pair = at.selectbox(key="confusion_pair")
    assert pair.value is not None
    assert len(at.get("image")) >= 1
    at.toggle(key="confusion_hide_diagonal").set_value(False).run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1


def test_augmentation_slider_changes_the_preview_and_pipeline_saves(app, env):
    at = open_page(app, "augmentations")
    before = image_urls(at)
    assert len(before) == 3 * 5  # three worst samples: original + four draws each
    at.slider(key="aug:Perspective:p").set_value(1.0)
    at.slider(key="aug:Perspective:scale").set_value((0.2, 0.3)).run()
    assert_clean(at)
    after = image_urls(at)
    assert after[0] == before[0], "the original crop does not change"
    assert after != before, "a stronger perspective must change the augmented draws"
    assert any("Perspective" in m.value for m in at.markdown), "each draw lists its transforms"

    at.button(key="aug_save").click().run()
    assert_clean(at)
    saved = env.workspace / "augment" / "lab-pipeline.json"
    assert saved.is_file()
    assert '"Perspective"' in saved.read_text(encoding="utf-8")

    at.button(key="aug_reset").click().run()
    assert at.slider(key="aug:Perspective:p").value == 0.5
    at.selectbox(key="aug_load_choice").set_value(saved).run()
    at.button(key="aug_load").click().run()
    assert_clean(at)
    assert at.slider(key="aug:Perspective:p").value == 1.0
    assert at.slider(key="aug:Perspective:scale").value == (0.2, 0.3)


def test_augmentation_lab_augments_the_worst_samples_in_rank_order(app, env):
    at = open_page(app, "augmentations")
    at.slider(key="aug_worst_count").set_value(5).run()
    assert_clean(at)
    shown = [int(n) for m in at.markdown for n in re.findall(r"original #(\d+)", m.value)]
    assert shown == rank_worst(embedded_score_frame(env))["sample"].head(5).tolist()

    at.segmented_control(key="aug_source").set_value("chosen").run()
    assert_clean(at)
    assert at.multiselect(key="aug_chosen").value == shown[:2]


def test_train_page_lowers_the_learning_rate_default_for_a_fine_tune(app):
    at = open_page(app, "train")
    assert at.number_input(key="train_lr").value == SCRATCH_LR
    checkpoint = at.sidebar.selectbox(key="checkpoint").value
    at.selectbox(key="train_init").set_value(checkpoint).run()
    assert_clean(at)
    assert at.number_input(key="train_lr_finetune").value == FINETUNE_LR


def test_train_page_runs_a_tiny_training_to_the_end(app, env):
    tiny = workspace.datasets_dir() / "synth-tiny"
    synth.generate(tiny, 48, seed=5, styles=("ccpd",))
    (tiny / ".complete").write_text("seed=5 count=48\n", encoding="utf-8")

    at = open_page(app, "train")
    at.selectbox(key="train_data").set_value(str(tiny))
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_batch").set_value(16)
    at.number_input(key="train_workers").set_value(0)
    at.selectbox(key="train_augment").set_value("none")
    at.text_input(key="train_name").set_value("tiny-run")
    # The demo teaches it, every position in turn (README, Distillation).
    at.multiselect(key="train_teachers").set_value([str(workspace.DEMO_CHECKPOINT)]).run()
    at.checkbox(key="train_distill_others").check()
    at.button(key="train_start").click().run()
    assert_clean(at)
    run_dir = workspace.runs_dir() / "tiny-run"
    assert run_dir.is_dir()

    deadline = time.monotonic() + 150
    while run_state(run_dir) == "running" and time.monotonic() < deadline:
        time.sleep(2)
        at.run()  # AppTest does not run fragments on their timer: rerun to poll, as the browser would
        assert not at.exception
    log = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    assert run_state(run_dir) == "finished", log[-2000:]
    assert len(read_history(run_dir)) == 1
    options = json.loads((run_dir / OPTIONS_FILE).read_text(encoding="utf-8"))
    assert options["teachers"] == [str(workspace.DEMO_CHECKPOINT)] and options["distill_other_positions"]
    at.run()
    assert_clean(at)
    assert at.get("plotly_chart"), "the run's curves"
    assert str(run_dir / "best.pt") in at.sidebar.selectbox(key="checkpoint").options or any(
        "tiny-run" in o for o in at.sidebar.selectbox(key="checkpoint").options)


def test_train_page_refuses_a_teacher_of_another_input_size_in_one_sentence(app, env):
    tiny = workspace.datasets_dir() / "synth-refused"
    synth.generate(tiny, 8, seed=6, styles=("ccpd",))
    (tiny / ".complete").write_text("seed=6 count=8\n", encoding="utf-8")
    teacher = workspace.uploads_dir() / "small-input.pt"
    teacher.parent.mkdir(parents=True, exist_ok=True)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    model = build_model("small", vocab.num_classes, config)
    save_checkpoint(make_checkpoint(model, "small", config, vocab, (24, 94)), teacher)
    try:
        at = open_page(app, "train")
        at.selectbox(key="train_data").set_value(str(tiny))
        at.multiselect(key="train_teachers").set_value([str(teacher)])
        at.text_input(key="train_name").set_value("refused-run")
        at.button(key="train_start").click().run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "24x94" in errors[0] and "input size" in errors[0], errors
        assert not (workspace.runs_dir() / "refused-run").exists()
    finally:
        teacher.unlink()
        shutil.rmtree(tiny)  # other tests list the workspace's sets


def test_train_page_shows_a_running_runs_progress_within_the_epoch(app, env):
    run_dir = workspace.runs_dir() / "long-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / OPTIONS_FILE, {"data": "somewhere", "epochs": 3, "arch": "small"})
    write_status(run_dir, "running", pid=os.getpid())  # this test process stands in for the trainer
    write_progress(run_dir, "train", 1200, 3125, epoch=2, epochs=3)
    try:
        at = open_page(app, "train")
        at.selectbox(key="train_run").set_value(str(run_dir)).run()
        assert_clean(at)
        bars = at.get("progress")
        assert len(bars) == 1
        assert bars[0].proto.text == "Epoch 2 of 3: batch 1,200 of 3,125"
        assert bars[0].proto.value == 38  # percent, rounded down
    finally:
        shutil.rmtree(run_dir)  # other tests list the workspace's runs


def test_compare_shows_deltas_between_two_checkpoints(app, env):
    other = env.root / "other.pt"
    if not other.exists():
        checkpoint = read_checkpoint(env.checkpoint)
        torch.manual_seed(1)
        checkpoint["state_dict"] = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v
                                    for k, v in checkpoint["state_dict"].items()}
        save_checkpoint(checkpoint, other)
    at = open_page(app, "compare")
    at.selectbox(key="compare_b").set_value(OTHER).run()
    assert any("checkpoint B" in i.value for i in at.info)
    at.text_input(key="compare_b_path").set_value(str(other)).run()
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert labels == ["Accuracy A", "Accuracy B", "CER A", "CER B"]
    assert len(at.tabs) == 2
    assert at.get("plotly_chart")
