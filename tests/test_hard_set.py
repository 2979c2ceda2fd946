"""The embedded hard set: legible plates under night, glare, blur, tilt and dirt, sliced by condition."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.data.sources import list_source
from ocr_core.frame import COLUMNS
from ocr_core.robustness import HARD_CONDITIONS

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


def test_the_hard_set_is_generated_once_with_a_condition_per_plate(tmp_path, monkeypatch):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(workspace, "EMBEDDED_HARD_COUNT", 10)
    manifest = workspace.ensure_embedded_hard_set()
    samples = list_source(manifest).samples
    assert len(samples) == 10
    assert [s.attrs["condition"] for s in samples[:5]] == list(HARD_CONDITIONS)
    stamp = manifest.stat().st_mtime_ns
    assert workspace.ensure_embedded_hard_set() == manifest and manifest.stat().st_mtime_ns == stamp


def test_the_dashboard_offers_the_hard_set_and_slices_by_condition(tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 8)
    monkeypatch.setattr(workspace, "EMBEDDED_HARD_COUNT", 15)
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", tiny_checkpoint)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(MAIN, default_timeout=120)
        at.run()
        at.sidebar.selectbox(key="dataset").set_value("embedded:" + workspace.EMBEDDED_HARD_TESTSET).run()
        assert not at.exception and not at.error
        assert {m.label: m.value for m in at.metric}["Samples"] == "15"
        (slicer,) = [box for box in at.selectbox if str(box.key).startswith("overview_attribute")]
        assert "condition" in slicer.options
        # Core columns are outcomes (label_issue among them), never a slice of the samples.
        assert not set(slicer.options) & set(COLUMNS), slicer.options
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
