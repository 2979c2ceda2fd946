"""The shareable report: one HTML file that opens offline, with its crops and its confusion matrix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from ocr_core.cli import main
from ocr_core.data import synth

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "_artifacts" / "screenshots"


@pytest.fixture
def report(tmp_path, tiny_checkpoint) -> Path:
    folder = tmp_path / "images"
    synth.generate(folder, 30, seed=12, styles=("ccpd",))
    rows = []
    for i, image in enumerate(sorted(folder.glob("*.png"))):
        label = image.stem.split("-", 1)[1]
        wrong = label[:-1] + ("9" if label.endswith("8") else "8")
        rows.append({"file": image.name, "pred": wrong if i % 3 == 0 else label})
    pd.DataFrame(rows).to_csv(folder / "preds.csv", index=False)
    out = tmp_path / "report.html"
    assert main(["report", str(folder / "preds.csv"), "--data", str(folder), "--compare", str(tiny_checkpoint),
                 "--out", str(out), "--title", "Test report"]) == 0
    return out


def test_report_holds_every_section(report):
    text = report.read_text(encoding="utf-8")
    for heading in ("Headline", "Compared with tiny.pt", "Accuracy by label length", "Accuracy by province",
                    "Worst slices", "Most confused characters", "The 10 worst samples"):
        assert heading in text, heading
    assert text.count('<img alt=') == 10 and text.count('" src="data:image/png;base64,') == 10


@pytest.mark.browser
@pytest.mark.slow
def test_report_opens_offline_in_chromium_with_its_images(report):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        pytest.skip(f"{chromium} is missing; install Debian's chromium package to run the browser test")
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--headless", "--no-sandbox",
                                    "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The network is off: anything but the file itself and inline data is refused and recorded.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                       else (outside.append(route.request.url), route.abort()))
            page.goto(report.as_uri())
            page.wait_for_selector("#confusion-matrix .main-svg", timeout=30_000)
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=30_000)
            assert page.evaluate("document.images.length") == 10
            # Its plate-glyph font is inline: 皖 renders on a machine without a CJK font too.
            assert page.evaluate("""async () =>
                (await document.fonts.load('16px "PlateLens Plate Glyphs"', '皖')).length > 0""")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert outside == [], outside


def test_report_draws_the_robustness_curves_it_is_given(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    folder = tmp_path / "images"
    synth.generate(folder, 12, seed=5, styles=("ccpd",))
    curves = tmp_path / "curves.csv"
    second = tmp_path / "second.pt"
    second.write_bytes(tiny_checkpoint.read_bytes())
    assert main(["robustness", str(tiny_checkpoint), "--data", str(folder), "--compare", str(second),
                 "--levels", "0,1", "--corruptions", "blur,jpeg", "--out", str(curves)]) == 0
    out = tmp_path / "report.html"
    assert main(["report", str(tiny_checkpoint), "--data", str(folder), "--robustness", str(curves),
                 "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<h2>Robustness curves</h2>" in text and 'id="robustness-curves"' in text
    assert "on 12 crops" in text and "(solid: tiny.pt, dashed: second.pt)" in text
    # A line per model and corruption; plotly writes "·" as it is with orjson, as \u00b7 without it.
    assert len(re.findall(r"blur (?:·|\\u00b7) tiny\.pt", text)) >= 2
    assert text.count("window.PlotlyConfig") == 1  # plotly.js inlined once, for the matrix and the curves
    # The kept curves (curves.json) serve as well; without --robustness the section is absent.
    kept = sorted((tmp_path / "ws" / "robustness").glob("*/curves.json"))[0]
    assert main(["report", str(tiny_checkpoint), "--data", str(folder), "--robustness", str(kept),
                 "--out", str(out)]) == 0
    assert 'id="robustness-curves"' in out.read_text(encoding="utf-8")
    assert main(["report", str(tiny_checkpoint), "--data", str(folder), "--out", str(out)]) == 0
    assert "Robustness curves" not in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(tiny_checkpoint), "--data", str(folder), "--robustness", str(folder / ".."),
                 "--out", str(out)]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["report", str(tiny_checkpoint), "--data", str(folder), "--robustness", str(bad),
                 "--out", str(out)]) == 2
    assert "holds no robustness curves" in capsys.readouterr().err


def test_kept_curves_are_found_by_checkpoint_and_dataset(tmp_path, tiny_checkpoint, monkeypatch):
    from ocr_core.data.dataset import load_dataset
    from ocr_core.robustness import cached_curves

    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    folder = tmp_path / "images"
    synth.generate(folder, 8, seed=6, styles=("ccpd",))
    assert main(["robustness", str(tiny_checkpoint), "--data", str(folder), "--levels", "0,1",
                 "--corruptions", "noise"]) == 0
    fingerprint = load_dataset(str(folder), (32, 128)).fingerprint()
    ((meta, curves),) = cached_curves(tiny_checkpoint, fingerprint)
    assert meta["limit"] == 1000 and list(curves["corruption"].unique()) == ["noise"]
    assert cached_curves(tiny_checkpoint, "another dataset") == []
    stat = tiny_checkpoint.stat()
    os.utime(tiny_checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file: another model
    assert cached_curves(tiny_checkpoint, fingerprint) == []
