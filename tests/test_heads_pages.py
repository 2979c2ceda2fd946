"""Every architecture, whatever its head and input settings, through every dashboard page (AppTest).

Each run opens the dashboard on a checkpoint of one architecture (untrained: it reads the plates wrong,
which gives the error pages something to show) and visits Overview, Worst predictions (with the
probability heatmap of its head), Confusions, Augmentations, Compare against a CTC ``small`` checkpoint,
and Train. Loss-falls and notebook-parity tests of each architecture live in ``test_seed_archs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.heads import head_for_labels
from ocr_core.models import ARCHITECTURES, arch_config, arch_spec, build_model
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


def arch_checkpoint(arch: str, path: Path) -> Path:
    """An untrained checkpoint of ``arch`` over the CCPD characters, with its registry head and input."""
    torch.manual_seed(0)
    spec = arch_spec(arch)
    chars = synth.style_charset("ccpd")
    labels = ["皖A12345", "沪BCD678"] + [chars[i:i + 7] for i in range(0, len(chars) - 7, 7)]
    head = head_for_labels(spec.head, labels, Vocab(chars), spec.positions, spec.separate_first)
    config = arch_config(arch)
    model = build_model(arch, head.output_classes, config)
    save_checkpoint(make_checkpoint(model, arch, config, head, spec.input), path)
    return path


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "small"])
def test_every_page_renders_for_every_architecture(arch, tmp_path, monkeypatch):
    checkpoint = arch_checkpoint(arch, tmp_path / f"{arch}.pt")
    other = arch_checkpoint("small", tmp_path / "small.pt")
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 24)
    monkeypatch.setattr(workspace, "DEMO_CHECKPOINT", checkpoint)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(MAIN, default_timeout=180)
        at.run()
        assert_clean(at)
        assert {m.label: m.value for m in at.metric}["Samples"] == "24"

        at.switch_page("../pages/worst.py").run()
        assert_clean(at)
        next(b for b in at.button if b.key and b.key.startswith("worst:inspect:")).click().run()  # the detail
        assert_clean(at)
        titles = [c.proto.spec for c in at.get("plotly_chart")]
        head_title = "per position" if arch_spec(arch).head == "fixed" else "per time step"
        assert any(head_title in t for t in titles), "the heatmap is titled for the model's head"
        assert any("Alternative readings" in m.value for m in at.markdown)

        for page in ("confusions", "augmentations", "train"):
            at.switch_page(f"../pages/{page}.py").run()
            assert_clean(at)

        at.switch_page("../pages/compare.py").run()
        at.selectbox(key="compare_b").set_value(OTHER).run()
        at.text_input(key="compare_b_path").set_value(str(other)).run()
        assert_clean(at)
        assert [m.label for m in at.metric][:2] == ["Accuracy A", "Accuracy B"]
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
