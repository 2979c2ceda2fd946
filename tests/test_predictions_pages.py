"""The dashboard on another OCR system's predictions: a CSV that no PlateLens model made (AppTest)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.cli import main
from ocr_core.data import synth
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


def other_system(folder: Path, out: Path, seed: int) -> Path:
    """What a script around another OCR package writes: file, pred, confidence (every 4th reading wrong)."""
    rows = []
    for i, image in enumerate(sorted(folder.glob("*.png"))):
        label = image.stem.split("-", 1)[1]
        wrong = (i + seed) % 4 == 0
        rows.append({"file": image.name, "pred": label[:-1] + ("8" if label[-1] != "8" else "B") if wrong else label,
                     "confidence": 0.55 if wrong else 0.97})
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


@pytest.fixture
def env(tmp_path, monkeypatch):
    images = tmp_path / "images"
    synth.generate(images, 24, seed=5, styles=("ccpd",))
    a = other_system(images, images / "system-a.csv", 0)
    b = other_system(images, images / "system-b.csv", 1)
    torch.manual_seed(0)
    vocab = Vocab(synth.style_charset("ccpd"))
    model = build_model("small", vocab.num_classes, arch_config("small"))
    checkpoint = tmp_path / "demo.pt"
    save_checkpoint(make_checkpoint(model, "small", arch_config("small"), vocab, (32, 128)), checkpoint)
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(tmp_path))
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 16)
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", checkpoint)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield {"images": images, "a": a, "b": b, "checkpoint": checkpoint}
    st.cache_data.clear()
    st.cache_resource.clear()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_on_predictions(path: Path, dataset: Path | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    at.sidebar.text_input(key="checkpoint_path").set_value(str(path)).run()
    if dataset is not None:
        at.sidebar.selectbox(key="dataset").set_value(OTHER).run()
        at.sidebar.text_input(key="dataset_path").set_value(str(dataset)).run()
    assert_clean(at)
    return at


def test_a_predictions_file_drives_every_analysis_page_without_a_model(env):
    at = open_on_predictions(env["a"], env["images"])  # labels from the file names of the dataset
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "24" and metrics["Accuracy"].startswith("75")
    assert any("Predictions file" in c.value for c in at.caption)

    at.switch_page("../pages/worst.py").run()
    assert_clean(at)
    assert any("samples match" in m.value for m in at.markdown)
    assert len(at.get("image")) >= 6, "the gallery reads the crops by path"
    # The detail view says what needs a model instead of stopping.
    inspect = next(b for b in at.button if b.key and b.key.startswith("worst:inspect:"))
    inspect.click().run()
    assert_clean(at)
    assert any("Load a checkpoint" in i.value for i in at.info)

    at.switch_page("../pages/confusions.py").run()
    assert_clean(at)
    assert at.selectbox(key="confusion_pair").value is not None

    # The review queue has no model figures to rank by (label_issue is NaN), and may have no image size.
    at.switch_page("../pages/review.py").run()
    assert_clean(at)
    assert any("Candidate 1 of" in m.value for m in at.markdown)

    at.switch_page("../pages/augmentations.py").run()
    assert_clean(at)
    assert any("Load a checkpoint" in i.value for i in at.info)

    # Compare: a second predictions file, then a checkpoint that reads the same images.
    at.switch_page("../pages/compare.py").run()
    at.selectbox(key="compare_b").set_value(OTHER).run()
    at.text_input(key="compare_b_path").set_value(str(env["b"])).run()
    assert_clean(at)
    assert [m.label for m in at.metric] == ["Accuracy A", "Accuracy B", "CER A", "CER B"]
    assert any("fixed" in m.value and "broken" in m.value for m in at.markdown)
    at.text_input(key="compare_b_path").set_value(str(env["checkpoint"])).run()
    assert_clean(at)
    assert [m.label for m in at.metric][:2] == ["Accuracy A", "Accuracy B"]
    # The checkpoint read the predictions file's own 24 images, so every one is joined.
    line = next(m.value for m in at.markdown if "both wrong" in m.value)
    assert sum(int(n.replace(",", "")) for n in re.findall(r"\*\*([\d,]+)\*\*", line)) == 24


def test_a_platelens_score_frame_says_how_it_was_read(env, tmp_path):
    frame = tmp_path / "scored.parquet"
    assert main(["score", "--checkpoint", str(env["checkpoint"]), "--data", str(env["images"]), "--out", str(frame),
                 "--tta", "--format", "cn"]) == 0
    at = open_on_predictions(frame)
    note = "Scored by PlateLens with `demo.pt`, test-time augmentation (five views voted), readings constrained"
    assert any(note in c.value for c in at.caption), [c.value for c in at.caption]
    # Another system's file has no such record, and its caption says nothing of the kind.
    at = open_on_predictions(env["a"], env["images"])
    assert not any("Scored by PlateLens" in c.value for c in at.caption)


def test_a_bad_predictions_file_is_one_sentence(env, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,text\nx.png,AB\n", encoding="utf-8")
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    at.sidebar.text_input(key="checkpoint_path").set_value(str(bad)).run()
    assert not at.exception
    assert any("needs file (or path)" in e.value for e in at.error)
