"""The worst-slice finder on frames with a planted bad slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ocr_core.frame import build_frame
from ocr_core.slices import find_worst_slices, slice_rows, wilson_lower


def planted(n: int = 3000, seed: int = 0, bad: float = 0.6, base: float = 0.05) -> pd.DataFrame:
    """Plates from 4 cameras at 3 heights; camera c3 at small heights fails at ``bad``, the rest at ``base``."""
    rng = np.random.default_rng(seed)
    camera = rng.choice(["c0", "c1", "c2", "c3"], n)
    height = rng.choice([18, 24, 40], n)
    planted_mask = (camera == "c3") & (height == 18)
    wrong = rng.random(n) < np.where(planted_mask, bad, base)
    labels = [f"皖A{i:05d}" for i in range(n)]
    preds = [f"沪A{i:05d}" if w else t for i, (t, w) in enumerate(zip(labels, wrong))]
    return build_frame(pd.DataFrame({"path": [f"/x/{i}.png" for i in range(n)], "label": labels, "pred": preds,
                                     "camera": camera, "height": height}))


def test_the_planted_slice_comes_first():
    frame = planted()
    slices = find_worst_slices(frame)
    assert slices.iloc[0]["conditions"] == (("camera", "c3"), ("height", "18"))
    top = slices.iloc[0]
    assert top["error_rate"] > 0.45 and top["score"] > 0.3 and top["lift"] > 3
    rows = slice_rows(frame, top["conditions"])
    assert len(rows) == top["n"] and (~rows["correct"]).sum() == top["errors"]
    # Its parents are worse than the whole too, but the pair is what explains them.
    assert set(slices["slice"]) >= {"camera = c3", "height = 18"}


def test_no_slice_on_a_frame_without_one_and_support_is_respected():
    frame = planted(bad=0.05)  # every slice fails at the base rate
    assert find_worst_slices(frame).empty
    frame = planted()
    assert (find_worst_slices(frame, min_support=400)["n"] >= 400).all()
    assert find_worst_slices(frame.iloc[:0]).empty


def test_wilson_lower_bound():
    assert wilson_lower(np.array([0]), np.array([10]))[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_lower(np.array([50]), np.array([100]))[0] == pytest.approx(0.4038, abs=1e-3)
    assert wilson_lower(np.array([5]), np.array([10]))[0] < wilson_lower(np.array([50]), np.array([100]))[0]


def test_the_slices_page_finds_the_planted_slice(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ocr_core import workspace
    from ocr_core.data import synth

    folder = tmp_path / "images"
    synth.generate(folder, 60, seed=2, styles=("ccpd",))
    rows = []
    for i, image in enumerate(sorted(folder.glob("*.png"))):
        label = image.stem.split("-", 1)[1]
        camera = "c3" if i % 3 == 0 else "c1"
        rows.append({"file": image.name, "label": label, "camera": camera,
                     "pred": label[:-1] if camera == "c3" and i % 2 == 0 else label})
    pd.DataFrame(rows).to_csv(folder / "p.csv", index=False)
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(tmp_path))
    monkeypatch.setattr(workspace, "EMBEDDED_COUNT", 8)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file("../app/main.py", default_timeout=120)
        at.run()
        at.sidebar.selectbox(key="checkpoint").set_value("__other__").run()
        at.sidebar.text_input(key="checkpoint_path").set_value(str(folder / "p.csv")).run()
        at.switch_page("../pages/slices.py").run()
        assert not at.exception and not at.error
        assert at.selectbox(key="slices_pick").value == 0
        line = next(m.value for m in at.markdown if "are misread" in m.value)
        assert "camera = c3" in line and line.startswith("**10**")
        assert len(at.get("image")) == 10
        # Each card can record a decision about its sample, into the predictions file's corrections file.
        unsure = [b for b in at.button if b.key and b.key.startswith("slices:fix:") and b.key.endswith(":unsure")]
        assert len(unsure) == 10
        unsure[0].click().run()
        assert not at.exception and any("Saved for" in s.value for s in at.success)
        assert "Decision: unsure" in " ".join(m.value for m in at.markdown)
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
