"""Captchas and other text lines on the dashboard: no plate-only analyses, doubled characters, time steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    captchas = tmp_path / "captchas"
    synth.generate(captchas, 30, seed=4, styles=("captcha",))
    torch.manual_seed(0)
    vocab = Vocab(synth.style_charset("captcha"))
    model = build_model("small", vocab.num_classes, arch_config("small"))
    checkpoint = tmp_path / "captcha.pt"
    save_checkpoint(make_checkpoint(model, "small", arch_config("small"), vocab, (32, 128)), checkpoint)
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(tmp_path))
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", checkpoint)
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 8)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="dataset").set_value(OTHER).run()
    at.sidebar.text_input(key="dataset_path").set_value(str(captchas)).run()
    yield at
    st.cache_data.clear()
    st.cache_resource.clear()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_titles(at: AppTest) -> str:
    return " ".join(c.proto.spec for c in at.get("plotly_chart"))


def test_captchas_get_text_line_analyses_not_plate_ones(app):
    assert_clean(app)
    titles = chart_titles(app)
    assert "province" not in titles, "no province chart for captchas"
    assert "Accuracy by label length" in titles
    assert "doubled characters" in titles
    assert any("time steps" in c.value for c in app.caption), "the time-step check of a CTC model"

    app.switch_page("../pages/worst.py").run()
    assert_clean(app)
    assert app.multiselect(key="worst_provinces").label == "First character"
    app.selectbox(key="worst_doubled").set_value("with").run()
    assert_clean(app)
    doubled = next(m.value for m in app.markdown if "samples match" in m.value)
    app.selectbox(key="worst_doubled").set_value("without").run()
    single = next(m.value for m in app.markdown if "samples match" in m.value)
    count = lambda line: int(line.split("**")[1].replace(",", ""))  # noqa: E731
    assert count(doubled) + count(single) == 30, (doubled, single)
    app.toggle(key="worst_beyond_steps").set_value(True).run()
    assert_clean(app)

    app.switch_page("../pages/confusions.py").run()
    assert_clean(app)
    assert [o.content for o in app.get("segmented_control")[0].proto.options] == ["All characters", "Letters", "Digits"]


def test_the_domain_switch_opens_the_captcha_demo_on_its_embedded_set(tmp_path, monkeypatch):
    torch.manual_seed(1)
    plates = Vocab(synth.style_charset("ccpd"))
    captchas = Vocab(synth.style_charset("captcha"))
    paths = {}
    for name, vocab in (("demo", plates), ("captcha-demo", captchas)):
        model = build_model("small", vocab.num_classes, arch_config("small"))
        paths[name] = tmp_path / f"{name}.pt"
        save_checkpoint(make_checkpoint(model, "small", arch_config("small"), vocab, (32, 128)), paths[name])
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", paths["demo"])
    monkeypatch.setattr(workspace, "CAPTCHA_DEMO_CHECKPOINT", paths["captcha-demo"])
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 8)
    monkeypatch.setattr(workspace, "EMBEDDED_CAPTCHA_COUNT", 12)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(MAIN, default_timeout=120)
        at.run()
        assert_clean(at)
        at.sidebar.get("segmented_control")[0].set_value("captcha").run()
        assert_clean(at)
        assert at.sidebar.selectbox(key="checkpoint").value == str(paths["captcha-demo"])
        assert at.sidebar.selectbox(key="dataset").value == "embedded:" + workspace.EMBEDDED_CAPTCHA_TESTSET
        assert {m.label: m.value for m in at.metric}["Samples"] == "12"
        assert "province" not in chart_titles(at)
        at.sidebar.get("segmented_control")[0].set_value("plates").run()
        assert at.sidebar.selectbox(key="checkpoint").value == str(paths["demo"])
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
