"""In a real headless Chromium: another OCR system's predictions file opened from the sidebar, no model."""

from __future__ import annotations

import pandas as pd
import pytest

from ocr_core.data import synth
from tests.test_browser import (  # noqa: F401 - sync_api and server are fixtures used by name
    CHROMIUM,
    CHROMIUM_ARGS,
    MAIN,
    SHOTS,
    _pick,
    _screenshot,
    _settle,
    _watch_requests,
    server,
    sync_api,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_worst_predictions_of_a_predictions_file(sync_api, server, tmp_path):
    folder = tmp_path / "workspace" / "other-system"  # the workspace is a data root
    synth.generate(folder, 12, seed=9, styles=("ccpd",))
    rows = []
    for i, image in enumerate(sorted(folder.glob("*.png"))):
        label = image.stem.split("-", 1)[1]
        rows.append({"file": image.name, "label": label, "pred": label if i % 3 else label[1:]})
    predictions = folder / "predictions.csv"
    pd.DataFrame(rows).to_csv(predictions, index=False)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            outside = _watch_requests(page, server)
            page.goto(server)
            _pick(page, "Checkpoint", "Other checkpoint, ONNX model or predictions file…")
            box = page.get_by_role("textbox", name="Checkpoint path")
            box.fill(str(predictions))
            box.press("Enter")
            page.locator(MAIN).get_by_text("Predictions file").first.wait_for(timeout=120_000)
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Worst predictions", exact=True).click()
            _settle(page, "Worst predictions", f'{MAIN} [data-testid="stImage"] img', timeout_ms=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator(f'{MAIN} [data-testid="stImage"] img').count() == 4, "the 4 misread crops"
            SHOTS.mkdir(parents=True, exist_ok=True)
            _screenshot(page, SHOTS / "7-predictions-file-worst.png")
            assert outside == [], f"fetched from outside the server: {outside[:5]}"
        finally:
            browser.close()


def test_the_captcha_domain_in_chromium(sync_api, server):
    """The sidebar's domain switch opens the captcha demo on its embedded captchas, every page clean."""
    import os
    import shutil

    from ocr_core import workspace
    from tests.test_browser import IDLE, README_SHOTS

    if not workspace.CAPTCHA_DEMO_CHECKPOINT.is_file():
        pytest.skip(f"{workspace.CAPTCHA_DEMO_CHECKPOINT} is missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            outside = _watch_requests(page, server)
            page.goto(server)
            page.locator('[data-testid="stSidebar"]').get_by_text("Captchas", exact=True).click(timeout=120_000)
            page.locator(MAIN).get_by_text("embedded synthetic captchas").first.wait_for(timeout=180_000)
            _settle(page, "Overview", f'{MAIN} [data-testid="stMetric"]', timeout_ms=120_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            SHOTS.mkdir(parents=True, exist_ok=True)
            _screenshot(page, SHOTS / "8-captcha-overview.png")
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Worst predictions", exact=True).click()
            _settle(page, "Worst predictions", f'{MAIN} [data-testid="stImage"] img, {MAIN} [data-testid="stAlert"]',
                    timeout_ms=60_000)
            page.wait_for_function(IDLE, timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            _screenshot(page, SHOTS / "9-captcha-worst.png")
            assert outside == [], f"fetched from outside the server: {outside[:5]}"
        finally:
            browser.close()
    if os.environ.get("PLATELENS_UPDATE_SCREENSHOTS") == "1":
        for name in ("8-captcha-overview", "9-captcha-worst"):
            shutil.copyfile(SHOTS / f"{name}.png", README_SHOTS / f"{name}.png")
