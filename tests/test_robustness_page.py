"""The Robustness page: it starts background runs of ``python -m ocr_core robustness``, shows their
progress, draws the curves of two checkpoints once they are kept, and finds them kept on the next visit."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.robustness import CORRUPTIONS, Settings, job_state, launch
from ocr_core.runs import write_status
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


def stand_in(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    save_checkpoint(make_checkpoint(build_model("small", vocab.num_classes, config), "small", config, vocab,
                                    (32, 128)), path)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("robust")
    ws = root / "workspace"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATELENS_WORKSPACE", str(ws))  # the background process inherits it
        mp.setattr(workspace, "EMBEDDED_COUNT", 24)
        mp.setattr(workspace, "DEMO_CHECKPOINT", stand_in(root / "demo.pt", 0))
        yield SimpleNamespace(root=root, ws=ws, a=workspace.DEMO_CHECKPOINT, b=stand_in(ws / "other.pt", 1))


@pytest.fixture
def app(env) -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield AppTest.from_file(MAIN, default_timeout=120)
    st.cache_data.clear()
    st.cache_resource.clear()


def clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_robustness(at: AppTest, b: Path | None) -> AppTest:
    at.run()
    at.switch_page("../pages/robustness.py").run()
    clean(at)
    at.number_input(key="robustness_limit").set_value(10)
    at.selectbox(key="robustness_levels").set_value(3).run()
    if b is not None:
        at.selectbox(key="robustness_b").set_value(OTHER).run()
        at.text_input(key="robustness_b_path").set_value(str(b)).run()
    clean(at)
    return at


def traces(at: AppTest) -> list[str]:
    (chart,) = at.get("plotly_chart")
    return [trace.get("name", "") for trace in json.loads(chart.proto.spec)["data"]]


def test_page_starts_two_background_runs_shows_progress_then_both_curves(app, env):
    at = open_robustness(app, env.b)
    assert not at.get("plotly_chart")
    at.button(key="robustness_start").click().run()
    clean(at)
    folders = sorted(p for p in (env.ws / "robustness").iterdir() if p.is_dir())
    assert len(folders) == 2, "one background run per checkpoint"
    bars = at.get("progress")
    assert bars and all("A · demo.pt" in b.proto.text or "B · other.pt" in b.proto.text for b in bars), \
        [b.proto.text for b in bars]
    deadline = time.monotonic() + 240
    while any(job_state(f) == "running" for f in folders) and time.monotonic() < deadline:
        time.sleep(2)
        at.run()  # AppTest does not run fragments on their timer: rerun to poll, as the browser would
        assert not at.exception
    logs = [(f / "robustness.log").read_text(encoding="utf-8", errors="replace")[-1500:] for f in folders]
    assert all(job_state(f) == "finished" for f in folders), logs
    at.run()
    clean(at)
    names = traces(at)
    assert len(names) == 2 * len(CORRUPTIONS), names
    assert {n.split(" · ", 1)[1] for n in names} == {"A · demo.pt", "B · other.pt"}
    assert not at.get("progress")

    # Kept: a fresh session draws them at once, without a button and without a new process.
    again = open_robustness(AppTest.from_file(MAIN, default_timeout=120), env.b)
    assert len(traces(again)) == 2 * len(CORRUPTIONS)
    assert not [b for b in again.button if b.key == "robustness_start"]
    assert len([p for p in (env.ws / "robustness").iterdir() if p.is_dir()]) == 2

    # Other settings are another result: the button comes back.
    again.number_input(key="robustness_limit").set_value(12).run()
    assert [b for b in again.button if b.key == "robustness_start"]
    assert not again.get("plotly_chart")


def test_the_second_checkpoint_defaults_to_compares_b(app, env):
    at = app.run()
    at.switch_page("../pages/compare.py").run()
    at.selectbox(key="compare_b").set_value(OTHER).run()
    at.text_input(key="compare_b_path").set_value(str(env.b)).run()
    clean(at)
    at.switch_page("../pages/robustness.py").run()
    clean(at)
    assert at.selectbox(key="robustness_b").value == str(env.b)
    assert "Compare's checkpoint B" in at.selectbox(key="robustness_b").format_func(str(env.b))


def test_a_dead_run_reads_as_failed_with_its_log_and_can_be_started_again(app, env, tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "robustness.log").write_text("Traceback ...\nMemoryError\n", encoding="utf-8")
    write_status(folder, "running", pid=2**22 + 12345)  # no such process
    assert job_state(folder) == "failed"
    write_status(folder, "running", pid=os.getpid())
    assert job_state(folder) == "running"
    with pytest.raises(InputError, match="being computed already"):
        launch(env.a, env.root, folder, Settings(10, (0.0, 1.0)))


# ---- in a real browser: the screenshots the README shows ------------------------------------------------

from test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, README_SHOTS, REAL_PLATES, SHOTS  # noqa: E402
from test_browser import MAIN as BROWSER_MAIN  # noqa: E402
from test_browser import _pick, _settle, server, sync_api  # noqa: E402,F401 - fixtures


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
