"""The bench scripts on the real crops: real_accuracy.py's per-glyph-group table, province_glyphs.py's
glyph measures, province_stability.py's shifted boxes, province_probe.py's probe, the pipelines in
bench/pipelines, upscale_choices.py, set_upscale.py, which re-saved the demo with the choice,
ensemble_accuracy.py's reading of several checkpoints together, and province_proxy.py's renderer variants."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from ocr_core.checkpoint import load_model, read_checkpoint

from conftest import SHIPPED_DEMO

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:  # the scripts import bench/real_plates.py, as `python bench/x.py` allows
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_real_accuracy_splits_province_accuracy_by_glyph_group() -> None:
    ra = _bench("real_accuracy")
    frame = pd.DataFrame({
        "path": ["a", "b", "c", "d", "e"],
        "label": ["皖A12345", "皖A12346", "皖A12347", "苏B11111", "浙C22222"],
        "pred": ["皖A12345", "云A12346", "皖A1234", "苏B11111", "皖C22222"],
    })
    frame["correct"] = frame["pred"] == frame["label"]
    frame["edit_distance"] = [0, 1, 1, 0, 1]
    frame["label_len"] = frame["label"].str.len()
    frame["confidence"] = 0.9
    frame["oov"] = 0
    rows = {r["slice"]: r for r in ra.report_rows("x", frame, val_paths={"d", "e"})}
    assert set(rows) == {"all 297", "train split", "val split", "皖 crops", "non-皖 crops"}
    everything = rows["all 297"]
    assert everything["province_acc"] == 3 / 5 and everything["accuracy"] == 2 / 5
    assert everything["province_皖"] == 2 / 3 and everything["province_other"] == 1 / 2
    assert everything["n_other"] == 2
    assert everything["rest_acc"] == 4 / 5  # only 皖A1234 drops a character after the province
    assert rows["train split"]["n"] == 3 and math.isnan(rows["train split"]["province_other"])
    assert rows["val split"]["province_other"] == 1 / 2
    assert math.isnan(rows["皖 crops"]["province_other"]) and math.isnan(rows["non-皖 crops"]["province_皖"])
    lit = {r["slice"]: r for r in ra.report_rows("x", frame, val_paths={"d", "e"}, dim_paths={"b", "c"})}
    assert lit["warm or dark"]["n"] == 2 and lit["warm or dark"]["province_acc"] == 1 / 2
    assert lit["other light"]["n"] == 3 and lit["other light"]["province_acc"] == 2 / 3


def test_real_plates_tells_crops_lit_warm_or_dark_from_daylight_ones() -> None:
    real_plates = _bench("real_plates")

    def plate(paint: tuple[int, int, int], ink: tuple[int, int, int]) -> np.ndarray:
        crop = np.empty((24, 94, 3), np.uint8)
        crop[:] = paint
        crop[6:18, 12:80:8] = ink  # glyph strokes: a fifth of the middle's pixels
        crop[6:18, 13:80:8] = ink
        return crop

    daylight = plate((20, 70, 190), (190, 215, 245))  # at 94x24 the white ink takes some of the blue
    warmth, paint = real_plates.light_measures(daylight)
    assert warmth == pytest.approx(-55, abs=1) and paint == pytest.approx(93.3, abs=0.5)
    assert not real_plates.is_warm_or_dark(daylight)
    assert real_plates.is_warm_or_dark(plate((40, 60, 50), (230, 200, 90)))  # sodium light: yellow ink
    assert real_plates.is_warm_or_dark(plate((10, 25, 70), (120, 120, 150)))  # night: dark paint


def test_province_glyph_measures_find_the_first_two_glyphs() -> None:
    pg = _bench("province_glyphs")
    crops = pg.synthetic_crops(40, seed=3)
    assert all(label.startswith("皖") and len(label) == 7 for label, _ in crops)
    measures = [m for _, rgb in crops if (m := pg.glyph_measures(rgb)) is not None]
    assert len(measures) >= 30
    widths = np.array([m["width"] for m in measures])
    gaps = np.array([m["gap"] for m in measures])
    # At 128x32 a 45 mm glyph of a 440 mm plate is about 13 px wide; the gap to the letter 12 mm, ~3 px.
    assert 7 <= np.median(widths) <= 20
    assert 1 <= np.median(gaps) <= 7
    # A crop with no glyphs (plain paint) is not measured.
    assert pg.glyph_measures(np.full((24, 94, 3), (20, 60, 200), np.uint8)) is None


def test_province_stability_moves_the_box_and_counts_flipped_readings() -> None:
    ps = _bench("province_stability")
    crop = np.zeros((24, 94, 3), np.uint8)
    crop[:, 10] = 255  # one bright column
    # The box moves left: what is in the crop moves right by as many pixels, and the size stays.
    moved = ps.shift_box(crop, -2)
    assert moved.shape == crop.shape and np.flatnonzero(moved[0, :, 0]).tolist() == [12]
    assert np.flatnonzero(ps.shift_box(crop, 4)[0, :, 0]).tolist() == [6]
    # Shifts scale with the crop's width: 2 px of 94 is 4 px of 188.
    wide = np.zeros((48, 188, 3), np.uint8)
    wide[:, 20] = 255
    assert np.flatnonzero(ps.shift_box(wide, -2)[0, :, 0]).tolist() == [24]
    assert ps.zoom_out(crop, 0.05).shape == (24 + 2, 94 + 2 * 5, 3)

    labels = ["皖A12345", "皖B12345", "苏C12345"]
    untouched = [crop.copy() for _ in labels]

    def reader(crops):
        # Reads the first crop's province right only as it is, the second's only when it was changed.
        same = [np.array_equal(c, crop) for c in crops]
        return ["皖A12345" if same[0] else "云A12345", "皖B12345" if not same[1] else "云B12345", "苏C12345"]

    rows = {r["perturbation"]: r for r in ps.stability_rows("x", labels, untouched, reader)}
    assert rows["as it is"]["province"] == 2 / 3 and rows["as it is"]["fixed"] == rows["as it is"]["broke"] == 0
    assert rows["box 2 px left"]["fixed"] == 1 and rows["box 2 px left"]["broke"] == 1
    assert rows["box 2 px left"]["province"] == 2 / 3 and rows["box 2 px left"]["exact"] == 2 / 3


def test_province_probe_folds_its_standardisation_and_reads_the_small_models_time_steps() -> None:
    import torch

    from ocr_core.checkpoint import load_model

    pp = _bench("province_probe")
    generator = torch.Generator().manual_seed(0)
    raw = torch.randn(3000, 5, generator=generator)
    y = (raw[:, 0] > 0).long()
    # Far from zero mean and unit scale: the probe must read raw features after folding its standardisation.
    x = raw * 10 + 100
    probe = pp.train_probe(x, y, classes=2, seed=0)
    standardised = pp.train_probe(raw, y, classes=2, seed=0)
    with torch.no_grad():
        assert (probe(x).argmax(1) == y).float().mean().item() > 0.85
        assert (probe(x).argmax(1) == standardised(raw).argmax(1)).float().mean().item() > 0.99
    loaded = load_model(SHIPPED_DEMO, fuse=False)
    feats = pp.features(loaded.model, loaded.input, np.zeros((3, *loaded.input.size, 3), np.uint8))
    assert feats["CNN"].shape == (3, 32, 256) and feats["BiLSTM"].shape == (3, 32, 256)


def test_the_pipelines_of_the_readme_load_and_keep_the_crop_size() -> None:
    import json

    from ocr_core.augment import pipeline_from_dict

    names = sorted(p.name for p in (BENCH / "pipelines").glob("*.json"))
    assert names == ["geometry-strong-invert.json", "geometry-strong.json", "geometry-tilt.json",
                     "glyph-shape-hard.json", "glyph-shape-strong.json", "glyph-shape-weight.json",
                     "glyph-shape.json"]
    readme = (BENCH.parent / "README.md").read_text(encoding="utf-8")
    assert all(f"bench/pipelines/{name}" in readme for name in names), "every pipeline kept is one the README measured"
    crop = np.random.default_rng(0).integers(0, 256, (32, 128, 3), dtype=np.uint8)
    for name in names:
        pipeline = pipeline_from_dict(json.loads((BENCH / "pipelines" / name).read_text()))
        assert pipeline(image=crop)["image"].shape == crop.shape


def test_set_upscale_changes_the_input_setting_and_nothing_else(tiny_checkpoint, tmp_path, capsys,
                                                                  monkeypatch) -> None:
    set_upscale = _bench("set_upscale")
    out = tmp_path / "cubic.pt"
    monkeypatch.setattr(sys, "argv", ["set_upscale.py", str(tiny_checkpoint), "--upscale", "cubic",
                                      "--out", str(out)])
    assert set_upscale.main() == 0
    before, after = read_checkpoint(tiny_checkpoint), read_checkpoint(out)
    assert after["input"] == {**before["input"], "upscale": "cubic"}
    assert {k: v for k, v in after.items() if k not in ("input", "state_dict")} == \
        {k: v for k, v in before.items() if k not in ("input", "state_dict")}
    assert all(torch.equal(after["state_dict"][k], v) for k, v in before["state_dict"].items())
    assert load_model(out).input.upscale == "cubic"
    monkeypatch.setattr(sys, "argv", ["set_upscale.py", str(tmp_path / "missing.pt"), "--upscale", "cubic",
                                      "--out", str(out)])
    assert set_upscale.main() == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_demo_enlarges_real_crops_with_the_setting_that_reads_them_better() -> None:
    real_plates, real_accuracy = _bench("real_plates"), _bench("real_accuracy")
    if real_plates.skipped_line():
        pytest.skip(real_plates.skipped_line())
    from ocr_core.data.dataset import decode_listing
    from ocr_core.data.sources import SourceListing, list_source, split_by_hash
    from ocr_core.score import score_dataset

    loaded = load_model(SHIPPED_DEMO)
    assert loaded.input.upscale == "cubic"
    listing = list_source(real_plates.REAL_PLATES)
    train_idx, _ = split_by_hash(listing.samples, real_plates.VAL_FRACTION)
    # The half the setting was chosen on; the validation half only confirmed it (README).
    half = SourceListing(listing.spec, listing.kind, [listing.samples[i] for i in train_idx])
    province = {}
    for upscale in ("linear", "cubic"):
        frame = score_dataset(loaded, decode_listing(half, loaded.input_size, upscale=upscale))
        province[upscale] = real_accuracy.province_accuracy(frame)
    assert province["cubic"] >= province["linear"], province


def test_every_way_of_enlarging_gives_a_model_input_and_blur_softens() -> None:
    choices = _bench("upscale_choices")
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (24, 94, 3), dtype=np.uint8)
    out = {name: enlarge(crop, (128, 32)) for name, enlarge in choices.CHOICES.items()}
    assert all(o.shape == (32, 128, 3) and o.dtype == np.uint8 for o in out.values())

    def edges(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(int), axis=1)).mean())

    linear = edges(out["linear (as trained)"])
    assert edges(out["cubic"]) > linear and edges(out["linear, unsharp 0.5"]) > linear
    assert edges(out["linear, blur sigma 0.5"]) < linear


def test_finetune_cv_folds_partition_the_train_half_and_never_read_the_validation_half() -> None:
    cv = _bench("finetune_cv")
    from ocr_core.data.sources import Sample, split_by_hash

    samples = [Sample(path=f"/x/皖A{i:05d}.jpg", label=f"皖A{i:05d}", source="real") for i in range(300)]
    folds = [cv.fold_of(s, 3) for s in samples]
    assert set(folds) == {0, 1, 2} and all(90 <= folds.count(k) <= 110 for k in range(3))
    assert folds == [cv.fold_of(s, 3) for s in samples], "a crop keeps its fold"
    # The folds are salted apart from the half split: each fold holds both halves' share of crops.
    _, val_idx = split_by_hash(samples, 0.35)
    assert len({folds[i] for i in val_idx}) == 3


@pytest.mark.slow
def test_finetune_cv_trains_each_fold_and_reads_only_its_held_out_crops(tmp_path, tiny_checkpoint, monkeypatch,
                                                                       capsys) -> None:
    from ocr_core.data.sources import list_source, split_by_hash

    cv = _bench("finetune_cv")
    if not cv.REAL_PLATES.is_dir():
        pytest.skip(f"{cv.REAL_PLATES} is absent (see ../shared/data/README.md)")
    monkeypatch.setattr(sys, "argv", ["finetune_cv.py", "--folds", "2", "--root", str(tmp_path), "--name", "t", "--",
                                      "--init", str(tiny_checkpoint), "--epochs", "1", "--synth-mix", "0",
                                      "--augment", "none"])
    assert cv.main() == 0
    out = capsys.readouterr().out
    def files(name: str, k: int) -> set[str]:
        return {s.path for s in list_source(tmp_path / "t" / f"fold-{k}" / name).samples}

    held = [files("held-out.json", k) for k in range(2)]
    assert held[0] == files("train.json", 1) and held[1] == files("train.json", 0)
    ra = _bench("real_accuracy")
    listing = list_source(cv.REAL_PLATES)
    _, val_idx = split_by_hash(listing.samples, ra.VAL_FRACTION)
    val_names = {Path(listing.samples[i].path).name for i in val_idx}
    seen = {Path(f).name for f in held[0] | held[1]}
    assert len(seen) == len(listing.samples) - len(val_names) and not seen & val_names
    assert "pooled" in out and out.count("fold ") >= 2
    from ocr_core.frame import check_frame

    for name in ("held-out.parquet", "held-out-cn-tta.parquet"):
        frame = pd.read_parquet(tmp_path / "t" / name)
        assert check_frame(frame) == [] and list(frame["sample"]) == list(range(len(seen)))
        assert {Path(f).name for f in frame["path"]} == seen
    from ocr_core.predictions import import_predictions

    imported = import_predictions(tmp_path / "t" / "held-out.parquet")  # what the dashboard's file choice reads
    assert len(imported.frame) == len(seen) and not imported.missing
    misread = pd.read_parquet(tmp_path / "t" / "held-out-cn-tta.parquet")
    assert f"misread with cn+tta ({int((~misread['correct']).sum())})" in out
    again = (tmp_path / "t" / "fold-0" / "run" / "last.pt").stat().st_mtime_ns
    assert cv.main() == 0, "a rerun with the same arguments reads the runs again"
    assert (tmp_path / "t" / "fold-0" / "run" / "last.pt").stat().st_mtime_ns == again


def _ctc_outputs(steps: list[dict[int, float]]) -> torch.Tensor:
    """(1, steps, 5) log-probabilities of CTCHead("AB12") (blank 0, A 1, B 2, 1 3, 2 4), given per step."""
    probs = torch.full((1, len(steps), 5), 1e-4)
    for t, step in enumerate(steps):
        for c, p in step.items():
            probs[0, t, c] = p
    return torch.log(probs / probs.sum(-1, keepdim=True))


def test_ensemble_reading_rescores_candidates_by_the_summed_loss_of_every_model() -> None:
    from ocr_core.heads import CTCHead

    ea = _bench("ensemble_accuracy")
    head = CTCHead("AB12")  # blank 0, A 1, B 2, 1 3, 2 4

    # Truth "AB1". The first model doubts the A, the second the B; each alone reads one glyph wrong.
    first = _ctc_outputs([{1: 0.45, 2: 0.55}, {0: 1.0}, {2: 1.0}, {0: 1.0}, {3: 1.0}, {0: 1.0}])
    second = _ctc_outputs([{1: 1.0}, {0: 1.0}, {2: 0.45, 4: 0.55}, {0: 1.0}, {3: 1.0}, {0: 1.0}])
    readings = ea.read_together(head, [first, second])
    assert readings["model 1"] == ["BB1"] and readings["model 2"] == ["A21"]
    assert readings["frame mean"] == ["AB1"]
    losses = {text: float(sum(head.sample_losses(lp, [text])[0] for lp in (first, second)))
              for text in ("BB1", "A21", "AB1")}
    assert readings["rescored"] == [min(losses, key=losses.get)] == ["AB1"]
    frame = ea.frame_of(["p"], ["AB1"], ["A21"])
    assert frame["edit_distance"].tolist() == [1] and not frame["correct"].any()


def test_ensemble_reading_takes_every_view_of_every_model_and_a_format() -> None:
    from ocr_core.heads import CTCHead
    from ocr_core.score import vote_readings

    ea = _bench("ensemble_accuracy")
    head = CTCHead("AB12")  # blank 0, A 1, B 2, 1 3, 2 4

    # Truth "AB1". Model 1's plain view doubts the A, its shifted view reads it; model 2 doubts the B.
    plain = _ctc_outputs([{1: 0.4, 2: 0.6}, {0: 1.0}, {2: 1.0}, {0: 1.0}, {3: 1.0}, {0: 1.0}])
    shifted = _ctc_outputs([{1: 0.9, 2: 0.1}, {0: 1.0}, {2: 1.0}, {0: 1.0}, {3: 1.0}, {0: 1.0}])
    second = _ctc_outputs([{1: 1.0}, {0: 1.0}, {2: 0.45, 4: 0.55}, {0: 1.0}, {3: 1.0}, {0: 1.0}])
    assert ea.read_together(head, [plain, second])["model 1"] == ["BB1"]
    readings = ea.read_together(head, [[plain, shifted], [second]])
    assert readings["model 1"] == vote_readings(head, [plain, shifted])[0] == ["AB1"]
    assert readings["model 2"] == ["A21"]
    losses = {text: float(sum(head.sample_losses(lp, [text])[0] for lp in (plain, shifted, second)))
              for text in ("BB1", "A21", "AB1")}
    assert readings["rescored"] == [min(losses, key=losses.get)] == ["AB1"]
    # A format of a letter A, a letter, a digit: each model alone now reads the glyph it doubted right.
    constrained = ea.read_together(head, [plain, second], text_format="A[AB][12]")
    assert constrained["model 1"] == constrained["model 2"] == ["AB1"]
    assert all(text[0] == "A" for texts in constrained.values() for text in texts)


def test_student_line_counts_what_a_student_learnt_of_the_glyphs_only_some_models_read() -> None:
    ea = _bench("ensemble_accuracy")
    # Six crops: model 1 misses 0-2, model 2 reads 0 and 1 of them; crop 5 no model reads.
    right = np.array([[False, False, False, True, True, False],
                      [True, True, False, True, False, False]])
    learnt = np.array([True, False, False, False, True, True])
    line = ea.student_line(right, learnt)
    assert line == ("student reads 3 province glyphs right; of the 2 that model 1 misses and another model "
                    "reads, 1; it misses 1 that model 1 reads, and reads 1 of the 2 that no model reads")


def test_unread_lines_name_the_crops_whose_province_no_model_reads() -> None:
    ea = _bench("ensemble_accuracy")
    paths = ["/r/皖A1.jpg", "/r/皖B2.jpg", "/r/沪C3.jpg"]
    labels = ["皖A1", "皖B2", "沪C3"]
    readings = [["皖A1", "云B2", "皖C3"], ["浙A1", "赣B2", "沪C3"]]
    lines = ea.unread_lines(paths, labels, readings, ["/r/皖B2.jpg"])
    assert lines == ["  皖B2.jpg (val half): 皖B2 -> 云B2, 赣B2"]


def test_province_proxy_variants_redraw_the_province_glyph_and_restore_the_renderer() -> None:
    from ocr_core.data import synth

    proxy = _bench("province_proxy")
    shipped_mask = synth._glyph_mask("皖", 20, 40, 1, 0).copy()
    shipped_letter = synth._glyph_mask("A", 20, 40, 1, 0).copy()
    label, shipped = synth.render_sample(3, 0, proxy.STYLES)
    with proxy.renderer_variant("fills=0.5"):
        *_, boxes = synth._compose_plate("皖A12345", "ccpd", 140, np.random.default_rng(0))
        assert synth.render_sample(3, 0, proxy.STYLES)[0] == label
        assert not np.array_equal(synth.render_sample(3, 0, proxy.STYLES)[1], shipped)
    widths = boxes[:, 2] - boxes[:, 0]
    assert widths[0] / widths[1] == pytest.approx(0.5, abs=0.05)  # province glyph at half its slot
    with proxy.renderer_variant("shipped+cjk-dilate=15.15"):
        assert synth._glyph_mask("皖", 20, 40, 1, 0).sum() > 1.2 * shipped_mask.sum()
        assert np.array_equal(synth._glyph_mask("A", 20, 40, 1, 0), shipped_letter)  # Latin glyphs as shipped
    with proxy.renderer_variant("cjk-erode=9.9"):
        assert synth._glyph_mask("皖", 20, 40, 1, 0).sum() < shipped_mask.sum()
    bar = np.zeros((160, 80), np.uint8)
    bar[20:140, 30:50] = 255  # a 20 px stem: its skeleton is a centre line 1-2 px wide, inside the stem
    skeleton = proxy._skeleton(bar)
    assert skeleton[bar == 0].sum() == 0 and skeleton[40:120].sum(1).max() <= 2
    assert set(np.nonzero(skeleton[40:120].any(0))[0]) <= {39, 40}
    with proxy.renderer_variant("cjk-monoline=3"):
        thin = synth._glyph_mask("皖", 20, 40, 1, 0)
        assert not np.array_equal(thin, shipped_mask) and thin.max() > 100
    assert np.array_equal(synth._glyph_mask("皖", 20, 40, 1, 0), shipped_mask)
    assert np.array_equal(synth.render_sample(3, 0, proxy.STYLES)[1], shipped)
    for bad in ("fills=0", "fills=a", "cjk-dilate=3", "cjk-monoline=0", "serif"):
        with pytest.raises(ValueError, match="variant part"):
            proxy.parse_variant(bad)


def test_province_proxy_thin_variant_draws_connected_strokes_of_one_width_per_weight() -> None:
    from ocr_core.data import synth

    proxy = _bench("province_proxy")
    ring = np.zeros((160, 100), np.uint8)
    cv2.rectangle(ring, (20, 20), (80, 140), 255, 16)  # a closed 16 px frame: one connected loop
    thinned = proxy._thinned(ring)
    assert thinned[ring == 0].sum() == 0
    assert cv2.connectedComponents(thinned)[0] == 2  # the background and one skeleton, unbroken
    assert thinned[60:100, :50].sum(1).max() == 1  # one pixel wide across the left stem
    assert proxy.parse_variant("cjk-thin=8").morphs == (("thin", 8, 8),) * 3
    assert proxy.parse_variant("cjk-thin=10,8,6").morphs == (("thin", 10, 10), ("thin", 8, 8), ("thin", 6, 6))
    shipped_mask = synth._glyph_mask("皖", 20, 40, 1, 0).copy()
    with proxy.renderer_variant("cjk-thin=4,8,12"):
        inks = [int(synth._glyph_mask("皖", 20, 40, weight, 0).sum()) for weight in range(3)]
        assert inks[0] < inks[1] < inks[2]  # each stroke weight its own radius
    assert np.array_equal(synth._glyph_mask("皖", 20, 40, 1, 0), shipped_mask)


@pytest.mark.parametrize("bad", ["cjk-thin=0", "cjk-thin=8,6", "cjk-thin=a", "cut-left=0", "cut-left=0.5",
                                 "cut-left=x", "warm=0", "warm=1.5", "warm=x"])
def test_province_proxy_refuses_a_bad_part_of_the_newer_variants(bad: str) -> None:
    with pytest.raises(ValueError, match="variant part"):
        _bench("province_proxy").parse_variant(bad)


def test_province_proxy_cut_left_variant_lets_the_crop_edge_cut_into_the_province_glyph() -> None:
    from ocr_core.data import synth

    proxy = _bench("province_proxy")
    assert proxy.parse_variant("cut-left=0.1").cut_left == 0.1
    assert proxy.parse_variant("shipped").cut_left == 0.0

    def first_glyph_inside(seeds: range) -> np.ndarray:
        rng = np.random.default_rng
        return np.array([synth.render_plate_with_legibility("皖A12345", "ccpd", rng(seed))[1][0]
                         for seed in seeds])

    shipped = first_glyph_inside(range(30))
    with proxy.renderer_variant("cut-left=0.15"):
        assert synth.MIN_GLYPH_INSIDE == proxy.CUT_MIN_INSIDE
        cut = first_glyph_inside(range(30))
    assert synth.MIN_GLYPH_INSIDE == 0.9 and synth._plate_quad.__name__ == "_plate_quad"  # restored
    assert shipped.min() >= 0.9 and (cut < 0.9).sum() >= 3 and cut.min() >= proxy.CUT_MIN_INSIDE
    assert np.array_equal(first_glyph_inside(range(30)), shipped)


def test_province_proxy_warm_variant_casts_the_crops_warm_and_darker() -> None:
    from ocr_core.data import synth

    proxy = _bench("province_proxy")
    assert proxy.parse_variant("warm=0.3").warm == 0.3
    shipped = [synth.render_sample(5, i, proxy.STYLES)[1].astype(np.float64) for i in range(12)]
    with proxy.renderer_variant("warm=1"):
        warm = [synth.render_sample(5, i, proxy.STYLES)[1].astype(np.float64) for i in range(12)]
    assert synth._photometric.__name__ == "_photometric"  # restored

    def red_minus_blue(crops: list[np.ndarray]) -> float:
        return float(np.mean([c[..., 0].mean() - c[..., 2].mean() for c in crops]))

    assert red_minus_blue(warm) > red_minus_blue(shipped) + 40
    assert np.mean([c.mean() for c in warm]) < np.mean([c.mean() for c in shipped])
    assert np.array_equal(synth.render_sample(5, 0, proxy.STYLES)[1], shipped[0].astype(np.uint8))


def test_province_proxy_font_and_downscale_variants(monkeypatch) -> None:
    from ocr_core.data import synth

    proxy = _bench("province_proxy")
    shipped = [synth._glyph_mask("皖", 20, 40, w, 0).copy() for w in range(3)]
    _, shipped_plate = synth.render_sample(3, 0, proxy.STYLES)
    with proxy.renderer_variant(f"cjk-font={synth.FONT_PATH}"):  # the shipped font by path: the same glyphs
        assert all(np.array_equal(synth._glyph_mask("皖", 20, 40, w, 0), shipped[w]) for w in range(3))
    with proxy.renderer_variant("cjk-weights=0,e1.3,e3.5"):  # the shipped weights, spelt out
        assert all(np.array_equal(synth._glyph_mask("皖", 20, 40, w, 0), shipped[w]) for w in range(3))
    with proxy.renderer_variant("cjk-weights=d5.3,e1.3,e3.5"):  # bold dilated, the others as shipped
        assert synth._glyph_mask("皖", 20, 40, 0, 0).sum() > 1.1 * shipped[0].sum()
        assert all(np.array_equal(synth._glyph_mask("皖", 20, 40, w, 0), shipped[w]) for w in (1, 2))
    with proxy.renderer_variant(f"cjk-font={synth.FONT_PATH}+cjk-plain"):  # no thinner weights
        assert synth._glyph_mask("皖", 20, 40, 2, 0).sum() > 1.1 * shipped[2].sum()
    with proxy.renderer_variant("downscale=3,3.5"):
        label, plate = synth.render_sample(3, 0, proxy.STYLES)
        assert label == synth.render_sample(3, 0, proxy.STYLES)[0]
        assert plate.shape == shipped_plate.shape and not np.array_equal(plate, shipped_plate)
    assert np.array_equal(synth.render_sample(3, 0, proxy.STYLES)[1], shipped_plate)
    # Two fonts: the stroke weight picks one, and each keeps its weight's erosion.
    block = np.zeros((160, 80), np.uint8)
    block[20:140, 20:60] = 255
    inks = {"a": block, "b": np.zeros((160, 80), np.uint8)}
    monkeypatch.setattr(proxy, "_font_ink", lambda spec, char: inks[spec])
    master = proxy._glyph_master_with(None, ("a", "b"))
    assert np.array_equal(master("皖", 80, 0, 0), block) and master("皖", 80, 1, 0).max() == 0
    assert 0 < master("皖", 80, 2, 0).sum() < block.sum()  # font a again, eroded
    captcha_font = synth.FONT_PATH.with_name("NotoSansCJKsc-Bold-captcha.otf")  # no province glyphs
    for bad in (f"cjk-font={captcha_font}", "cjk-font=/no/such.ttf", f"cjk-font={synth.FONT_PATH}@-1",
                f"cjk-font={synth.FONT_PATH.parent / 'LICENSE-OFL.txt'}", "downscale=0.5,2", "downscale=3",
                "downscale=4,3", "cjk-weights=0,e1.3", "cjk-weights=0,x1.3,e3.5", "cjk-weights=0,e0.3,e3.5"):
        with pytest.raises(ValueError, match="variant part"):
            proxy.parse_variant(bad)


def test_province_proxy_trains_on_rendered_regions_and_reads_other_crops() -> None:
    proxy = _bench("province_proxy")
    regions, provinces = proxy.render_regions("fills=0.9", seed=5, count=24, processes=1)
    assert regions.shape == (24, 32, 40, 3) and regions.dtype == np.uint8
    assert provinces.min() >= 0 and provinces.max() < 31
    fresh, _ = proxy.render_regions("shipped", seed=6, count=5, processes=1)
    read_train, read_fresh = proxy.train_and_read(regions, provinces, [regions, fresh], seed=0, epochs=1,
                                                  width=2, batch_size=8)
    assert read_train.shape == (24,) and read_fresh.shape == (5,)
    assert 0 <= read_fresh.min() and read_fresh.max() < 31


def test_province_proxy_writes_a_variant_as_a_data_set(tmp_path, monkeypatch) -> None:
    from ocr_core.data import synth
    from ocr_core.data.image_io import read_rgb

    proxy = _bench("province_proxy")
    argv = ["downscale=1.2,2", "--write-set", str(tmp_path / "set"), "--count", "256", "--data-seed", "5"]
    monkeypatch.setattr(sys, "argv", ["province_proxy.py", *argv])
    assert proxy.main() == 0
    written = sorted((tmp_path / "set").iterdir())
    assert len(written) == 256
    with proxy.renderer_variant("downscale=1.2,2"):
        label, rgb = synth.render_sample(5, 255, proxy.STYLES)
    assert written[-1].name == synth.sample_name(255, label)
    assert np.array_equal(read_rgb(written[-1]), rgb)
    assert not np.array_equal(synth.render_sample(5, 255, proxy.STYLES)[1], rgb)  # not the shipped renderer's
    (tmp_path / "a-file").write_text("in the way")
    monkeypatch.setattr(sys, "argv", ["province_proxy.py", "shipped", "--write-set", str(tmp_path / "a-file")])
    with pytest.raises(SystemExit) as exit_info:
        proxy.main()
    assert exit_info.value.code == 2


@pytest.mark.parametrize("args", [["serif"], ["--first-seed", "-1"], ["--data-seed", "-3"], ["--count", "10"],
                                  ["shipped", "fills=0.9", "--write-set", "/tmp/unused"]])
def test_province_proxy_refuses_bad_arguments_in_one_sentence(args, monkeypatch, capsys) -> None:
    proxy = _bench("province_proxy")
    monkeypatch.setattr(proxy, "skipped_line", lambda: None)
    monkeypatch.setattr(sys, "argv", ["province_proxy.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        proxy.main()
    assert exit_info.value.code == 2
    assert "province_proxy.py: error:" in capsys.readouterr().err
