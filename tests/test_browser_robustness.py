"""The Overview's leakage warning and label corrections, and the Robustness page, in a real Chromium on the
real crops: the screenshots the README shows.

Its own module: the module-scoped stand-in checkpoints of tests/test_robustness_page.py must not be in
place while this test trains from, and compares against, the shipped demo and baseline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    README_SHOTS,
    REAL_PLATES,
    SHOTS,
    _pick,
    _settle,
    server,
    sync_api,
)
from test_browser import MAIN as BROWSER_MAIN

from ocr_core import workspace


def _clip(page, locators, path: Path) -> None:
    """A screenshot of the region holding every one of ``locators`` (with a margin)."""
    boxes = [box for box in (loc.bounding_box() for loc in locators) if box]
    left, top = max(0, min(b["x"] for b in boxes) - 12), max(0, min(b["y"] for b in boxes) - 12)
    right = max(b["x"] + b["width"] for b in boxes) + 12
    bottom = max(b["y"] + b["height"] for b in boxes) + 12
    page.screenshot(path=str(path), clip={"x": left, "y": top, "width": right - left, "height": bottom - top})


@pytest.mark.browser
@pytest.mark.slow
def test_overview_and_robustness_in_chromium_on_the_real_crops(sync_api, server, tmp_path):  # noqa: F811
    """The demo fine-tuned one epoch on half of the real crops, then evaluated on all of them: the Overview
    warns of the leak and applies two label decisions about real crops; the Robustness page computes and draws
    the demo against the shipped baseline. With PLATELENS_UPDATE_SCREENSHOTS=1 the shots go to
    tests/screenshots/ (11-overview-corrections-leakage.png, 11-leakage-pairs.png, 12-robustness.png)."""
    from ocr_core.corrections import Correction, append_correction, corrections_path
    from ocr_core.train import TrainOptions, train

    if not REAL_PLATES.is_dir():
        pytest.skip(f"{REAL_PLATES} is absent (see ../shared/data/README.md); test needs the real crops")
    baseline = workspace.DEMO_CHECKPOINT.parent / "baseline.pt"
    if not baseline.is_file():
        pytest.skip(f"{baseline} is missing; the robustness comparison needs the shipped baseline")
    ws = tmp_path / "workspace"
    run = ws / "runs" / "demo-real-half"
    train(TrainOptions(data=str(REAL_PLATES), out=str(run), init=str(workspace.DEMO_CHECKPOINT), epochs=1,
                       batch_size=32, augment="none", workers=0, val_split=0.5))
    # Two decisions a reviewer made on these crops (README "Label corrections and the review queue"): a sign
    # that is not a plate, and a plate whose province glyph is cut off at the crop's edge.
    decisions = corrections_path(str(REAL_PLATES), root=ws)
    append_correction(decisions, Correction(str(REAL_PLATES / "皖AJ0J22.jpg"), "invalid"))
    append_correction(decisions, Correction(str(REAL_PLATES / "皖AKK123.jpg"), "unsure"))

    shots = SHOTS / "robustness"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(server)
            _settle(page, "Overview", f'{BROWSER_MAIN} [data-testid="stMetric"]', timeout_ms=200_000)
            page.get_by_role("combobox", name="Checkpoint", exact=True).click()
            page.get_by_role("option").filter(has_text="demo-real-half").first.click()
            _pick(page, "Dataset", "Other folder or manifest…")
            box = page.get_by_role("textbox", name="Dataset path")
            box.fill(str(REAL_PLATES))
            box.press("Enter")
            warning = page.locator(BROWSER_MAIN).get_by_text("duplicates of training crops").first
            warning.wait_for(timeout=200_000)
            page.wait_for_function(IDLE, timeout=120_000)
            page.locator(BROWSER_MAIN).get_by_text("Label corrections applied").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            assert page.locator('[data-testid="stException"]').count() == 0
            text = page.locator(BROWSER_MAIN).inner_text()
            assert "of the 297 test crops are (near-)duplicates of training crops" in text, text[:2000]
            assert "0 relabelled, 1 excluded as not valid, 1 unsure" in text
            page.set_viewport_size({"width": 1600, "height": 1060})  # down to the sidebar's corrections toggle
            page.wait_for_timeout(800)
            toggle = page.locator('[data-testid="stSidebar"]').get_by_text("Apply label corrections")
            assert toggle.count() == 1
            page.screenshot(path=str(shots / "11-overview-corrections-leakage.png"))
            page.set_viewport_size({"width": 1600, "height": 2400})  # the open expander fits in the clip
            page.locator(BROWSER_MAIN).get_by_text("test/training pairs").first.click()
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=30_000)
            page.wait_for_timeout(1500)
            expander = page.locator(f'{BROWSER_MAIN} [data-testid="stExpander"]').first
            _clip(page, [expander], shots / "11-leakage-pairs.png")

            page.set_viewport_size({"width": 1600, "height": 1000})
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Robustness", exact=True).click()
            page.locator(BROWSER_MAIN).get_by_role("heading", name="Robustness curves", exact=True).wait_for(
                timeout=60_000)
            page.wait_for_function(IDLE, timeout=120_000)
            # A is the sidebar's checkpoint: the demo again, against its shipped baseline.
            page.get_by_role("combobox", name="Checkpoint", exact=True).click()
            page.get_by_role("option", name="Demo checkpoint (demo.pt)").click()
            page.wait_for_function(IDLE, timeout=120_000)
            page.get_by_role("combobox", name="Second checkpoint (optional)").click()
            page.get_by_role("option").filter(has_text="baseline").first.click()
            page.wait_for_function(IDLE, timeout=120_000)
            page.locator(BROWSER_MAIN).get_by_role("button", name="Compute the robustness curves of A and B").click()
            page.locator(f'{BROWSER_MAIN} [data-testid="stProgress"]').first.wait_for(timeout=60_000)
            page.wait_for_selector(f"{BROWSER_MAIN} .js-plotly-plot", timeout=480_000)
            page.wait_for_function(IDLE, timeout=60_000)
            page.wait_for_timeout(1500)
            assert page.locator('[data-testid="stException"]').count() == 0
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": 1600, "height": min(max(int(height), 1000), 3000)})
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / "12-robustness.png"))
        finally:
            browser.close()
    if os.environ.get("PLATELENS_UPDATE_SCREENSHOTS") == "1":
        for name in ("11-overview-corrections-leakage", "11-leakage-pairs", "12-robustness"):
            shutil.copyfile(shots / f"{name}.png", README_SHOTS / f"{name}.png")
