"""Robustness curves: corruptions grow with severity, are reproducible, and curves are kept per checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_core.cli import main
from ocr_core.robustness import CORRUPTIONS, corrupt

from conftest import SHIPPED_DEMO


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corruptions_grow_with_severity_and_are_reproducible(corruption):
    rng = np.random.default_rng(0)
    images = np.zeros((4, 32, 128, 3), np.uint8)
    images[:, 8:24, 10:118] = rng.integers(120, 255, (4, 16, 108, 3))  # a bright plate on black
    assert corrupt(images, corruption, 0.0) is images
    change = [float(np.abs(corrupt(images, corruption, s).astype(int) - images).mean()) for s in (0.25, 1.0)]
    assert 0 < change[0] < change[1], change
    assert np.array_equal(corrupt(images, corruption, 0.5, seed=3), corrupt(images, corruption, 0.5, seed=3))


def test_robustness_cli_compares_two_checkpoints_and_keeps_the_curves(tmp_path, make_images, tiny_checkpoint,
                                                                      capsys, monkeypatch):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    make_images(tmp_path / "d", ["皖AY339S", "沪C8GK31", "京A12345", "豫B0000A"])
    args = ["robustness", str(tiny_checkpoint), "--data", str(tmp_path / "d"), "--compare", str(tiny_checkpoint),
            "--out", str(tmp_path / "curves.csv")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cer B" in out and out.count("\n") == 2 + len(CORRUPTIONS) * 5
    (kept,) = (tmp_path / "ws" / "robustness").glob("*/curves.json")
    stamp = kept.stat().st_mtime_ns
    assert main(args) == 0
    assert kept.stat().st_mtime_ns == stamp, "the kept curves are read, not computed again"
    assert capsys.readouterr().out == out
    assert (tmp_path / "curves.csv").read_text(encoding="utf-8").count("\n") == 1 + 2 * len(CORRUPTIONS) * 5


def test_robustness_and_the_report_with_its_curves_on_20_real_crops(shared_data, tmp_path, monkeypatch, capsys):
    import json

    real = shared_data / "real-plates"
    if not real.is_dir():
        pytest.skip(f"{real} is absent; the test needs the real plate crops")
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    crops = sorted(real.glob("*.jpg"))[:20]
    manifest = tmp_path / "real20.json"
    manifest.write_text(json.dumps([{"file": str(p), "text": p.stem} for p in crops], ensure_ascii=False),
                        encoding="utf-8")
    curves = tmp_path / "curves.csv"
    assert main(["robustness", str(SHIPPED_DEMO), "--data", str(manifest), "--levels", "0,0.5,1",
                 "--out", str(curves)]) == 0
    out = capsys.readouterr().out
    assert "20 crops" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    cer = {(name, float(s)): float(c) for name, s, c in rows}
    assert len(cer) == len(CORRUPTIONS) * 3
    assert cer[("blur", 0.0)] < 0.2, "the demo reads most real crops as they are"
    assert all(cer[(c, 1.0)] >= cer[(c, 0.0)] for c in CORRUPTIONS), cer  # the strongest level never helps
    report = tmp_path / "real.html"
    assert main(["report", str(SHIPPED_DEMO), "--data", str(manifest), "--robustness", str(curves),
                 "--out", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert 'id="robustness-curves"' in text and "on 20 crops" in text
    assert text.count('" src="data:image/png;base64,') >= 1  # the worst real crops, inlined
