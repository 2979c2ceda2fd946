"""What a stakeholder sees (issue 19): first paint before heavy imports, offline icons, and the defects a new
user hit on Compare, uploads, Train, Worst predictions, the score cache and out-of-vocabulary data.

AppTest runs share the small stand-in workspace of tests/test_app_pages.py (its fixtures are imported).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ocr_core import workspace

from test_app_pages import MAIN, OTHER, ROOT, app, assert_clean, env, open_page  # noqa: F401 - fixtures

REAL_DEMO = ROOT / "ocr_core" / "assets" / "demo.pt"
APP_SOURCES = sorted([*(ROOT / "app").glob("*.py"), *(ROOT / "pages").glob("*.py")])


def _blocks(at: AppTest, kind: str) -> list:
    """Every block of the element tree whose proto is of ``kind`` (e.g. ``tab_container``)."""
    found, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "WhichOneof"):
            try:
                if proto.WhichOneof("type") == kind:
                    found.append(node)
            except ValueError:
                pass
        stack.extend(getattr(node, "children", {}).values())
    return found


def _values(array) -> list[float]:
    """A plotly JSON array: a list, or plotly's typed array ``{"dtype": ..., "bdata": base64}``."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).astype(float).tolist()
    return [float(v) for v in array]


# ---- first paint ---------------------------------------------------------------------------------------

def test_the_sidebar_module_imports_nothing_heavy():
    """choices draws the sidebar before loaders is imported: it must not pull in torch, albumentations or plotly.express (streamlit itself imports plotly.graph_objects)."""
    code = ("import sys; sys.path.insert(0, 'app'); import choices; "
            "heavy = [m for m in ('torch', 'albumentations', 'plotly.express', 'torchmetrics') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_sidebar_and_heading_are_drawn_before_the_model_code_loads(app, monkeypatch):
    """With ``loaders`` unimportable, the sidebar pickers and the page heading must still be on the page."""
    monkeypatch.setitem(sys.modules, "loaders", None)  # import loaders -> ImportError
    app.run()
    assert app.exception, "the run must fail once it needs the model code"
    assert app.sidebar.selectbox(key="checkpoint").value is not None
    assert app.sidebar.selectbox(key="dataset").value is not None
    assert [t.value for t in app.title][:1] == ["Overview"]


def test_no_material_icons_anywhere():
    """A ``:material/...:`` page icon makes the browser fetch the favicon from a font CDN (fails offline)."""
    offenders = [f"{p.name}:{i}" for p in APP_SOURCES
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"[\"']:material/", line)]
    assert not offenders, offenders


def test_running_indicator_is_visible():
    """toolbarMode "minimal" hides streamlit's running indicator, so a slow first load looked like a blank page."""
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    assert re.search(r'^toolbarMode\s*=\s*"(viewer|auto|developer)"', config, re.M), config


# ---- Compare (defects 2 and 3) -------------------------------------------------------------------------

def test_compare_scores_nothing_until_b_is_chosen(app, env):
    at = open_page(app, "compare")
    assert at.selectbox(key="compare_b").value is None
    assert any("checkpoint B" in i.value for i in at.info)
    assert not at.metric, "no comparison before B is chosen"
    sidecars = [json.loads(p.read_text(encoding="utf-8")) for p in (env.workspace / "scores").glob("*.json")]
    assert all(meta["checkpoint"] == str(env.checkpoint) for meta in sidecars), "only A is scored"


def test_compare_opens_on_the_tab_with_samples_and_labels_deltas_in_points(app, env, monkeypatch):
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(REAL_DEMO.parent))
    at = open_page(app, "compare")
    # A: the real demo (reads most plates); B: the untrained stand-in (reads none): every change is "broken".
    at.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    at.sidebar.text_input(key="checkpoint_path").set_value(str(REAL_DEMO)).run()
    at.selectbox(key="compare_b").set_value(str(env.checkpoint)).run()
    assert_clean(at)
    labels = [t.label for t in at.tabs]
    assert labels[0] == "Fixed by B (0)" and labels[1].startswith("Broken by B (") and labels[1] != "Broken by B (0)"
    container = _blocks(at, "tab_container")
    assert len(container) == 1
    assert container[0].proto.tab_container.default_tab_index == 1, "opens on the broken samples"
    assert not any(i.proto.icon for i in at.info), "an empty tab is no success: no check icon"

    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    yaxis = chart["layout"]["yaxis"]
    assert yaxis.get("tickformat") != "+.0%", "a +0.34 pp delta read +0% on every tick"
    bars = [v for trace in chart["data"] for v in _values(trace["y"])]
    low, high = yaxis["range"]
    assert high - low >= 2.0 and max(abs(v) for v in bars) <= high, "percentage points, symmetric, ±1 at least"
