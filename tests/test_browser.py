"""End to end in a real headless Chromium: a fresh workspace, `streamlit run app/main.py`, every page.

Screenshots of every page go to tests/_artifacts/screenshots/ (git-ignored); look at them after a layout
change. With PLATELENS_UPDATE_SCREENSHOTS=1 the Worst-predictions and Confusions shots are also copied to
tests/screenshots/, the ones the README shows. The first page load generates the embedded test set and
scores it, as on a fresh clone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ocr_core import workspace

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "tests" / "_artifacts" / "screenshots"
README_SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
MAIN = '[data-testid="stMain"]'
# (link text in the sidebar, page title, file name, selector in the main area that shows the content arrived)
PAGES = [
    ("Overview", "Overview", "1-overview", f'{MAIN} [data-testid="stMetric"]'),
    ("Worst predictions", "Worst predictions", "2-worst-predictions",
     f'{MAIN} [data-testid="stImage"] img, {MAIN} [data-testid="stAlert"]'),
    ("Review labels", "Label review queue", "2b-review-labels",
     f'{MAIN} [data-testid="stImage"] img, {MAIN} [data-testid="stAlert"]'),
    ("Confusions", "Confusions", "3-confusions", f"{MAIN} .js-plotly-plot, {MAIN} [data-testid='stAlert']"),
    ("Worst slices", "Worst slices", "3b-worst-slices",
     f"{MAIN} [data-testid='stDataFrame'], {MAIN} [data-testid='stAlert']"),
    ("Error map", "Error map", "3c-error-map", f"{MAIN} .js-plotly-plot, {MAIN} [data-testid='stAlert']"),
    ("Augmentations", "Augmentation lab", "4-augmentations", f'{MAIN} [data-testid="stImage"] img'),
    ("Train", "Train", "5-train", f'{MAIN} [data-testid="stDataFrame"]'),
    ("Compare", "Compare checkpoints", "6-compare", f'{MAIN} [data-testid="stSelectbox"]'),
    ("Robustness", "Robustness curves", "7-robustness", f'{MAIN} [data-testid="stButton"], {MAIN} .js-plotly-plot'),
]
REAL_PLATES = ROOT.parent / "shared" / "data" / "real-plates"
# Diff blocks wider than their card scroll inside it, which looks like a cut-off plate ("津Y84A2" for "津Y84A26").
OVERFLOWING_DIFFS = """() => [...document.querySelectorAll('.pl-diff')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.replace(/\\n/g, ' / '))"""
GLYPH_FONT_LOADS = """async () => (await document.fonts.load('16px "PlateLens Plate Glyphs"', '皖')).length > 0"""
IDLE = "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f} s")


def _finished_run(runs: Path) -> None:
    """A finished run whose best.pt is the demo with nudged weights, so Train and Compare have content."""
    import torch

    from ocr_core.checkpoint import read_checkpoint, save_checkpoint
    from ocr_core.atomic import write_json_atomic
    from ocr_core.runs import OPTIONS_FILE, append_history, write_status

    run = runs / "demo-nudged"
    checkpoint = read_checkpoint(workspace.DEMO_CHECKPOINT)
    generator = torch.Generator().manual_seed(0)
    checkpoint["state_dict"] = {
        k: v + 0.02 * v.std().nan_to_num() * torch.randn(v.shape, generator=generator)
        if v.is_floating_point() else v
        for k, v in checkpoint["state_dict"].items()
    }
    save_checkpoint(checkpoint, run / "best.pt")
    write_json_atomic(run / OPTIONS_FILE, {"data": "synth-train", "arch": checkpoint["arch"], "epochs": 3})
    for epoch, (loss, accuracy) in enumerate([(2.1, 0.41), (0.9, 0.78), (0.5, 0.88)], start=1):
        append_history(run / "history.jsonl", {"epoch": epoch, "train_loss": loss, "val_loss": 6 * loss,
                                               "val_accuracy": accuracy, "val_cer": (1 - accuracy) / 5})
    write_status(run, "finished")


@pytest.fixture
def sync_api():
    """Playwright's sync API, or a skip that says what is missing."""
    api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium package to run the browser test")
    return api


@pytest.fixture
def server(sync_api, tmp_path):
    """A streamlit server on a free port with a fresh workspace (and one finished run); yields its URL."""
    if not workspace.DEMO_CHECKPOINT.is_file():
        pytest.skip(f"the demo checkpoint {workspace.DEMO_CHECKPOINT} is missing; the first page needs it")
    port = _free_port()
    _finished_run(tmp_path / "workspace" / "runs")
    env = {**os.environ, "PLATELENS_WORKSPACE": str(tmp_path / "workspace"), "PYTHONUNBUFFERED": "1",
           "PLATELENS_DATA_ROOTS": str(REAL_PLATES.parent)}
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, timeout=60)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        text = (tmp_path / "streamlit.log").read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in text, text[-3000:]


def _settle(page, title: str, selector: str, timeout_ms: int) -> None:
    """Wait for the page's title and content, for the script run to end, and for every image to load."""
    page.locator(MAIN).get_by_role("heading", name=title, exact=True).wait_for(timeout=timeout_ms)
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_function(IDLE, timeout=timeout_ms)
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=timeout_ms)
    if page.locator('[data-testid="stDataFrame"]').count():
        page.wait_for_selector('[data-testid="stDataFrame"] canvas', timeout=timeout_ms)
    page.wait_for_timeout(800)  # plotly and the data grid draw just after their elements appear


def _screenshot(page, path: Path) -> None:
    """The whole page: streamlit scrolls inside its main section, so grow the viewport to its height."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1600, "height": min(max(int(height), 1000), 5000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1600, "height": 1000})


def _click_a_matrix_cell(page, timeout_ms: int) -> None:
    """Click a confusion-matrix cell: the samples shown below switch to that pair."""
    x, y, pred, true = page.evaluate("""() => {
        const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        const layout = gd._fullLayout, cells = gd._fullData[1], box = gd.getBoundingClientRect();
        const i = Math.min(1, cells.x.length - 1);
        // calcdata holds category indices; d2p("4") would read a digit label as the index 4.
        const point = gd.calcdata[1][i];
        return [box.left + layout._size.l + layout.xaxis.c2p(point.x),
                box.top + layout._size.t + layout.yaxis.c2p(point.y), cells.x[i], cells.y[i]];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    pair = page.locator(f'{MAIN} [data-testid="stSelectbox"] input').last
    page.wait_for_function("([el, want]) => el.value === want", arg=[pair.element_handle(), f"{true} → {pred}"],
                           timeout=timeout_ms)
    page.wait_for_function(IDLE, timeout=timeout_ms)
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=timeout_ms)


def _watch_requests(page, server: str) -> list[str]:
    """Every URL the page requests that is not the dashboard's own (nothing may be fetched from elsewhere)."""
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url))
    return outside


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()


def _compare_with_the_finished_run(page, timeout_ms: int) -> None:
    """Compare opens with B unchosen (nothing is scored): choose the finished run as B."""
    _pick(page, "Checkpoint B", "Run demo-nudged (finished, val acc 0.880)")
    page.wait_for_selector(f'{MAIN} [data-testid="stMetric"]', timeout=timeout_ms)
    page.wait_for_function(IDLE, timeout=timeout_ms)
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=timeout_ms)
    page.wait_for_timeout(800)


def _visit_every_page(page, shots: Path, prefix: str = "", first_timeout_ms: int = 150_000) -> None:
    """Each page in turn: settled, no traceback, no cut-off diff, a full-page screenshot."""
    for index, (link, title, name, selector) in enumerate(PAGES):
        if index:
            page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
        _settle(page, title, selector, timeout_ms=first_timeout_ms if index == 0 else 60_000)
        assert page.locator('[data-testid="stException"]').count() == 0, f"{link} shows a traceback"
        if link == "Confusions" and page.locator(f"{MAIN} .js-plotly-plot").count():
            _click_a_matrix_cell(page, timeout_ms=60_000)
        if link == "Compare":
            _compare_with_the_finished_run(page, timeout_ms=120_000)
        assert page.evaluate(OVERFLOWING_DIFFS) == [], f"{link}: diffs cut off inside their cards"
        _screenshot(page, shots / f"{prefix}{name}.png")


def test_every_page_renders_in_chromium(sync_api, server):
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            outside = _watch_requests(page, server)
            page.goto(server)
            # First paint: the sidebar and the heading come before the slow work (generating and scoring the
            # embedded set on this fresh workspace), and that work shows its progress.
            page.locator('[data-testid="stSidebar"]').get_by_text("PlateLens", exact=True).wait_for(timeout=60_000)
            page.locator(MAIN).get_by_role("heading", name="Overview", exact=True).wait_for(timeout=60_000)
            assert page.locator(f'{MAIN} [data-testid="stMetric"]').count() == 0, "drawn before the scores"
            page.wait_for_selector(f'{MAIN} [data-testid="stProgress"], {MAIN} [data-testid="stSpinner"]',
                                   timeout=60_000)
            # Streamlit's own running indicator too (toolbarMode "minimal" hid it).
            assert page.locator('[data-testid="stStatusWidget"]').count() == 1, "no running indicator"
            _visit_every_page(page, SHOTS)
            # The sidebar's defaults are still picked on the last page.
            picked = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input')
            assert picked.nth(0).input_value() == "Demo checkpoint (demo.pt)"
            assert picked.nth(1).input_value() == "Embedded synthetic test set"
            # The shipped plate-glyph font is served (app/static), so a machine without a CJK font still draws
            # 皖 and not a box; loading it by name works whether or not an installed font would come first.
            assert page.evaluate(GLYPH_FONT_LOADS), "the app's plate-glyph font did not load"
            assert outside == [], f"fetched from outside the server: {outside[:5]}"
        finally:
            browser.close()
    assert len(list(SHOTS.glob("*.png"))) == len(PAGES)
    if os.environ.get("PLATELENS_UPDATE_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(exist_ok=True)
        for name in ("1-overview", "2-worst-predictions", "3-confusions"):
            shutil.copyfile(SHOTS / f"{name}.png", README_SHOTS / f"{name}.png")


def test_every_page_on_the_real_plates(sync_api, server):
    """The 297 real crops: every card on every page shows its whole plate (they lost their last glyph)."""
    if not REAL_PLATES.is_dir():
        pytest.skip(f"{REAL_PLATES} is absent (see ../shared/data/README.md); test needs the real crops")
    shots = SHOTS / "real-plates"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            outside = _watch_requests(page, server)
            page.goto(server)
            _pick(page, "Dataset", "Other folder or manifest…")
            box = page.get_by_role("textbox", name="Dataset path")
            box.fill(str(REAL_PLATES))
            box.press("Enter")
            page.locator(MAIN).get_by_text("real-plates").first.wait_for(timeout=150_000)
            _visit_every_page(page, shots, first_timeout_ms=150_000)
            assert outside == [], f"fetched from outside the server: {outside[:5]}"
        finally:
            browser.close()
    if os.environ.get("PLATELENS_UPDATE_SCREENSHOTS") == "1":
        for name, shot in (("3b-worst-slices", "13-real-worst-slices"), ("3c-error-map", "13-real-error-map")):
            shutil.copyfile(shots / f"{name}.png", README_SHOTS / f"{shot}.png")


def _match_count(page) -> tuple[int, int]:
    """(matching, total) from Worst predictions' "N of M samples match" line."""
    text = page.locator(MAIN).get_by_text("samples match").first.inner_text()
    shown, _, rest = text.partition(" of ")
    return int(shown.replace(",", "")), int(rest.split()[0].replace(",", ""))


def test_concurrent_sessions_stay_apart(sync_api, server):
    """Three browser sessions change Worst predictions' outcome filter at the same moment.

    Each must end on its own choice (no leak through shared caches), with no error in any session; the
    server log is checked for tracebacks by the fixture, and a cached model that anything tried to switch
    to train mode would raise there.
    """
    outcomes = ["all", "correct", "wrong"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pages = [browser.new_context(viewport={"width": 1400, "height": 900}).new_page() for _ in outcomes]
            pages[0].goto(f"{server}/worst")  # the first session generates and scores the embedded set
            _settle(pages[0], "Worst predictions", PAGES[1][3], timeout_ms=150_000)
            for page in pages[1:]:
                page.goto(f"{server}/worst")
            for page in pages[1:]:
                _settle(page, "Worst predictions", PAGES[1][3], timeout_ms=60_000)
            wrong, total = _match_count(pages[0])
            expected = {"all": total, "correct": total - wrong, "wrong": wrong}
            assert 0 < wrong < total, "the demo checkpoint must get some, not all, embedded plates wrong"

            for round_ in range(2):
                order = outcomes if round_ == 0 else outcomes[::-1]
                for page, outcome in zip(pages, order):  # no waiting in between: the reruns overlap
                    page.locator(f'{MAIN} [data-testid="stRadio"]').get_by_text(outcome, exact=True).click()
                for page, outcome in zip(pages, order):
                    want = f"{expected[outcome]:,} of {total:,} samples match"
                    page.locator(MAIN).get_by_text(want).first.wait_for(timeout=60_000)
                    page.wait_for_function(IDLE, timeout=60_000)
                for page, outcome in zip(pages, order):
                    assert _match_count(page) == (expected[outcome], total), outcome
                    assert page.locator('[data-testid="stException"]').count() == 0
                    assert page.locator('[data-testid="stAlert"]').filter(has_text="rror").count() == 0
        finally:
            browser.close()
