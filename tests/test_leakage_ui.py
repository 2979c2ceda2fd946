"""Train/test leakage: checkpoints record what they were trained on, and Overview and Compare warn when the
test crops are (near-)duplicates of those training crops, or are the training data itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import load_model, make_checkpoint, read_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.models import arch_config, build_model
from ocr_core.near_duplicates import leakage, training_paths
from ocr_core.train import TrainOptions, train
from ocr_core.vocab import Vocab

OTHER = "__other__"


def checkpoint_with(path: Path, sources: dict | None = None, fingerprint: str = "", seed: int = 0) -> Path:
    """An untrained ``small`` model over the CCPD characters that says it was trained on ``sources``."""
    torch.manual_seed(seed)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    model = build_model("small", vocab.num_classes, config)
    save_checkpoint(make_checkpoint(model, "small", config, vocab, (32, 128), data_fingerprint=fingerprint,
                                    training_sources=sources), path)
    return path


def sources_of(folder: Path, val_split: float = 0.0) -> dict:
    return {"data": str(folder.resolve()), "val_split": val_split, "extra_data": [], "corrections": None,
            "fingerprint": "unused"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """A workspace with a training set, a test set holding 3 of its crops (two copies, one recompressed) and
    12 fresh plates, a clean test set, a checkpoint trained on the training set and one trained elsewhere."""
    root = tmp_path_factory.mktemp("leak")
    ws = root / "workspace"
    train_dir = ws / "datasets" / "train-set"
    train_paths = synth.generate(train_dir, 40, seed=3, styles=("ccpd",))
    leaky = ws / "test-leaky"
    synth.generate(leaky, 12, seed=99, styles=("ccpd",))
    for source in train_paths[:2]:
        shutil.copy(source, leaky / source.name)
    image = cv2.imread(str(train_paths[2]))
    cv2.imwrite(str(leaky / f"recompressed-{train_paths[2].stem.split('-', 1)[1]}.jpg"), image,
                [cv2.IMWRITE_JPEG_QUALITY, 70])
    clean = ws / "test-clean"
    synth.generate(clean, 12, seed=98, styles=("ccpd",))
    elsewhere = ws / "datasets" / "elsewhere"
    synth.generate(elsewhere, 20, seed=7, styles=("ccpd",))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATELENS_WORKSPACE", str(ws))
        mp.setattr(workspace, "EMBEDDED_COUNT", 20)
        yield SimpleNamespace(
            root=root, ws=ws, train=train_dir, train_paths=train_paths, leaky=leaky, clean=clean,
            trained=checkpoint_with(ws / "trained.pt", sources_of(train_dir)),
            other=checkpoint_with(ws / "other.pt", sources_of(elsewhere), seed=1),
        )



def open_overview(at: AppTest, checkpoint: Path, dataset: Path) -> AppTest:
    at.session_state["checkpoint"] = OTHER
    at.session_state["checkpoint_path"] = str(checkpoint)
    at.session_state["dataset"] = OTHER
    at.session_state["dataset_path"] = str(dataset)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def leak_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "duplicates of training crops" in w.value or "own training" in w.value]


# ---- engine -------------------------------------------------------------------------------------------

def test_leakage_counts_test_crops_with_a_training_twin(env):
    paths, unread = training_paths(sources_of(env.train))
    assert len(paths) == 40 and unread == ()
    found = leakage(paths, [str(p) for p in sorted(env.leaky.iterdir())])
    assert (found.test_total, found.train_total, found.leaked, found.exact) == (15, 40, 3, 2)
    assert set(found.pairs["b"].map(lambda p: Path(p).name)) == {p.name for p in env.train_paths[:3]}
    none = leakage(paths, [str(p) for p in sorted(env.clean.iterdir())])
    assert none.leaked == 0 and none.pairs.empty


def test_training_paths_leave_out_the_validation_split_and_unreadable_sources(env, tmp_path):
    kept, _ = training_paths(sources_of(env.train, val_split=0.5))
    assert 5 < len(kept) < 35
    gone = {**sources_of(env.train), "extra_data": [str(tmp_path / "gone")]}
    paths, unread = training_paths(gone)
    assert len(paths) == 40 and unread == (str(tmp_path / "gone"),)
    outside, unread = training_paths(sources_of(env.train), roots=[tmp_path])
    assert outside == [] and unread == (str(env.train.resolve()),)


def test_train_records_its_sources_and_old_checkpoints_still_load(tmp_path, env):
    data = tmp_path / "d"
    synth.generate(data, 24, seed=4, styles=("ccpd",))
    out = tmp_path / "run"
    train(TrainOptions(data=str(data), out=str(out), epochs=1, batch_size=8, augment="none", workers=0,
                       val_split=0.25))
    saved = read_checkpoint(out / "last.pt")
    sources = saved["training_sources"]
    assert sources["data"] == str(data.resolve()) and sources["val_split"] == 0.25
    assert sources["fingerprint"] == saved["data_fingerprint"]
    assert load_model(out / "last.pt").meta["training_sources"] == sources
    assert "training_sources" not in load_model(workspace.DEMO_CHECKPOINT).meta  # shipped before the key existed
    paths, _ = training_paths(sources)
    assert 0 < len(paths) < 24  # the validation quarter is not training data


# ---- pages --------------------------------------------------------------------------------------------

def test_overview_warns_of_planted_duplicates_and_shows_the_pairs(app, env):
    at = open_overview(app, env.trained, env.leaky)
    (warning,) = leak_warnings(at)
    assert warning.startswith("3 of the 15 test crops are (near-)duplicates of training crops"), warning
    assert "2 exact copies" in warning
    assert any(e.label.startswith("See the 3 test/training pairs") for e in at.expander)
    assert len(at.get("image")) >= 6  # the first pairs side by side


def test_overview_is_quiet_without_overlap(app, env):
    at = open_overview(app, env.trained, env.clean)
    assert leak_warnings(at) == []


def test_overview_says_when_the_test_set_is_the_training_set(app, env):
    fingerprint = load_dataset(str(env.clean), (32, 128)).fingerprint()
    own = checkpoint_with(env.ws / "own.pt", fingerprint=fingerprint)
    at = open_overview(app, own, env.clean)
    (warning,) = leak_warnings(at)
    assert "evaluated on its own training data" in warning


def test_compare_warns_for_the_checkpoint_whose_training_crops_leak(app, env):
    at = open_overview(app, env.trained, env.leaky)
    at.switch_page("../pages/compare.py").run()
    at.selectbox(key="compare_b").set_value(OTHER).run()
    at.text_input(key="compare_b_path").set_value(str(env.other)).run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = leak_warnings(at)
    assert len(warnings) == 1 and "of checkpoint A" in warnings[0], warnings
    # Swapped: B is the leaky one.
    at.session_state["checkpoint_path"] = str(env.other)
    at.run()
    at.text_input(key="compare_b_path").set_value(str(env.trained)).run()
    warnings = leak_warnings(at)
    assert len(warnings) == 1 and "of checkpoint B" in warnings[0], warnings


def test_near_duplicates_cli_against_the_crops_a_checkpoint_was_trained_on(env, capsys):
    from ocr_core.cli import main

    assert main(["near-duplicates", str(env.leaky), "--trained-on", str(env.trained), "--show", "0"]) == 0
    out = capsys.readouterr().out
    assert "3 near-duplicate pair(s) between" in out and "the 40 training crops of" in out
    assert "3 of the 15 crops of" in out
    assert main(["near-duplicates", str(env.leaky), "--trained-on", str(workspace.DEMO_CHECKPOINT)]) == 2
    assert "does not record what it was trained on" in capsys.readouterr().err
