"""The error map: the model's own features, a 2-D projection, and geometric selections."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import load_model
from ocr_core.error_map import features, in_box, in_polygon, project


def test_features_projection_and_selections(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    images = np.random.default_rng(0).integers(0, 255, (5, 32, 128, 3), dtype=np.uint8)
    feats = features(loaded, images, batch_size=2)
    assert feats.shape == (5, loaded.model.head.in_features)
    assert np.allclose(features(loaded, images[:1]), feats[:1], atol=1e-5), "batching does not change them"
    points = project(feats)
    assert points.shape == (5, 2) and np.allclose(points.mean(axis=0), 0, atol=1e-4)
    # PCA's first axis carries the most variance.
    assert points[:, 0].var() >= points[:, 1].var()
    grid = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 0.5]])
    assert in_box(grid, [0.5, 2.5], [2.5, 0.5]).tolist() == [False, True, True, False]
    triangle = ([0.5, 4.0, 0.5], [0.5, 0.5, 4.0])
    probes = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, 3.0], [2.0, 0.6]])
    assert in_polygon(probes, *triangle).tolist() == [False, True, False, True]


def test_the_error_map_page_draws_the_crops(tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 20)
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", tiny_checkpoint)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file("../app/main.py", default_timeout=120)
        at.run()
        at.switch_page("../pages/error_map.py").run()
        assert not at.exception and not at.error
        assert len(at.get("plotly_chart")) == 1
        assert any("Draw a box or a lasso" in i.value for i in at.info)
        at.selectbox(key="map_colour").set_value("cer").run()
        assert not at.exception
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
