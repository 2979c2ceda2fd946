"""The Overview applies the dataset's label corrections by default and shows how they move the metrics."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.corrections import Correction, append_correction, corrections_path
from ocr_core.data import synth
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("corr")
    ws = root / "workspace"
    data = ws / "plates"
    synth.generate(data, 12, seed=8, styles=("ccpd",))
    torch.manual_seed(0)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    checkpoint = ws / "model.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(make_checkpoint(build_model("small", vocab.num_classes, config), "small", config, vocab,
                                    (32, 128)), checkpoint)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATELENS_WORKSPACE", str(ws))
        mp.setattr(workspace, "EMBEDDED_COUNT", 20)
        yield SimpleNamespace(ws=ws, data=data, checkpoint=checkpoint)


@pytest.fixture
def app(env) -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["checkpoint"] = OTHER
    at.session_state["checkpoint_path"] = str(env.checkpoint)
    at.session_state["dataset"] = OTHER
    at.session_state["dataset_path"] = str(env.data)
    yield at
    st.cache_data.clear()
    st.cache_resource.clear()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_overview_applies_planted_corrections_and_shows_before_and_after(app, env):
    app.run()
    clean(app)
    assert metric(app, "Samples") == "12"
    assert not [t for t in app.sidebar.toggle if t.key == "apply_corrections"], "no corrections file, no toggle"
    (frame_file,) = (env.ws / "scores").glob("*.parquet")
    frame = pd.read_parquet(frame_file).sort_values("sample")
    before = float(frame["correct"].mean())
    wrong = frame[~frame["correct"]]
    assert len(wrong) >= 3, "the untrained model misreads the plates"
    decisions = corrections_path(str(env.data))
    # The reading was right and the file name wrong: relabel to the reading. Then one crop that is not a
    # plate, and one the reviewer was unsure of.
    append_correction(decisions, Correction(str(wrong["path"].iloc[0]), "relabel", str(wrong["pred"].iloc[0])))
    append_correction(decisions, Correction(str(wrong["path"].iloc[1]), "invalid"))
    append_correction(decisions, Correction(str(wrong["path"].iloc[2]), "unsure"))

    app.run()
    clean(app)
    (toggle,) = [t for t in app.sidebar.toggle if t.key == "apply_corrections"]
    assert toggle.value is True, "applied by default"
    expected = (frame["correct"].sum() + 1) / 11
    assert metric(app, "Samples") == "11"
    assert metric(app, "Accuracy") == f"{100 * expected:.2f}%"
    note = next(i.value for i in app.info if "Label corrections applied" in i.value)
    assert "**1** relabelled, **1** excluded as not valid, **1** unsure" in note
    assert f"accuracy {100 * before:.2f}% → {100 * expected:.2f}%" in note and "samples 12 → 11" in note
    accuracy = next(m for m in app.metric if m.label == "Accuracy")
    assert accuracy.delta == f"{100 * (expected - before):+.2f} pp"

    toggle.set_value(False).run()
    clean(app)
    assert metric(app, "Samples") == "12"
    assert metric(app, "Accuracy") == f"{100 * before:.2f}%"
    assert any("Label corrections not applied" in i.value and "samples 12 → 11" in i.value for i in app.info)

    # The choice survives a visit to another page.
    app.switch_page("../pages/confusions.py").run()
    app.switch_page("../pages/overview.py").run()
    assert metric(app, "Samples") == "12"


def test_a_broken_corrections_file_is_one_sentence_and_the_original_labels(app, env, tmp_path):
    decisions = corrections_path(str(env.data))
    saved = decisions.read_bytes() if decisions.exists() else None
    decisions.parent.mkdir(parents=True, exist_ok=True)
    decisions.write_text("not json\n", encoding="utf-8")
    try:
        app.run()
        assert not app.exception
        assert [e.value for e in app.error if "line 1" in e.value and "original labels" in e.value]
        assert metric(app, "Samples") == "12"
    finally:
        if saved is None:
            decisions.unlink()
        else:
            decisions.write_bytes(saved)
