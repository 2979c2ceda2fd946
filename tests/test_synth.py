"""Tests for the synthetic plate renderer and the bundled font subset."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from fontTools.ttLib import TTFont

from ocr_core.data import synth

NAME_RE = re.compile(r"^(\d{6})-(.+)\.png$")
PROV = re.escape(synth.PROVINCES)
LET = re.escape(synth.PLATE_LETTERS)
ALNUM = re.escape(synth.PLATE_ALNUM)
RU_L = re.escape("ABEKMHOPCTYX")
LABEL_RE = {
    "ccpd": re.compile(rf"^[{PROV}][{LET}][{ALNUM}]{{5}}$"),
    "ccpd-green": re.compile(rf"^[{PROV}][{LET}][DF][{ALNUM}]\d{{4}}$"),
    "ru": re.compile(rf"^[{RU_L}]\d{{3}}[{RU_L}]{{2}}\d{{2,3}}$"),
}


def _read_rgb(path: Path) -> np.ndarray:
    # np.fromfile + imdecode, because cv2.imread cannot open non-ASCII paths on every platform.
    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, f"could not decode {path.name}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_constants_match_ccpd_conventions() -> None:
    assert synth.PROVINCES == "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
    assert len(synth.PLATE_LETTERS) == 24 and "I" not in synth.PLATE_LETTERS and "O" not in synth.PLATE_LETTERS
    assert synth.PLATE_ALNUM == synth.PLATE_LETTERS + "0123456789"
    assert synth.STYLES == ("ccpd", "ccpd-green", "ru")


@pytest.mark.parametrize("style", synth.STYLES)
def test_style_charset_is_deterministic_and_covers_labels(style: str) -> None:
    charset = synth.style_charset(style)
    assert charset == synth.style_charset(style)
    assert len(set(charset)) == len(charset)
    rng = np.random.default_rng(0)
    used = {ch for _ in range(300) for ch in synth.random_label(style, rng)}
    assert used <= set(charset)


@pytest.mark.parametrize("style", synth.STYLES)
def test_random_label_matches_style_rules(style: str) -> None:
    rng = np.random.default_rng(1)
    labels = [synth.random_label(style, rng) for _ in range(2000)]
    bad = [label for label in labels if not LABEL_RE[style].match(label)]
    assert not bad, bad[:5]
    if style == "ru":
        assert {len(label) for label in labels} == {8, 9}


def test_ccpd_labels_never_contain_i_or_o() -> None:
    rng = np.random.default_rng(2)
    for style in ("ccpd", "ccpd-green"):
        joined = "".join(synth.random_label(style, rng) for _ in range(3000))
        assert "I" not in joined and "O" not in joined


def test_province_weights_uniform_covers_every_province() -> None:
    weights = synth.province_weights("uniform")
    assert weights.shape == (len(synth.PROVINCES),)
    assert weights.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    firsts = {synth.random_label("ccpd", rng, weights)[0] for _ in range(3000)}
    assert firsts == set(synth.PROVINCES)


def test_province_weights_ccpd_skew_is_dominated_by_wan() -> None:
    weights = synth.province_weights("ccpd")
    assert weights.sum() == pytest.approx(1.0)
    assert int(np.argmax(weights)) == 0 and weights[0] > 0.85
    rng = np.random.default_rng(4)
    firsts = [synth.random_label("ccpd", rng, weights)[0] for _ in range(3000)]
    share = firsts.count("皖") / len(firsts)
    assert 0.85 < share < 0.97
    assert len(set(firsts)) > 10


def test_unknown_style_and_skew_are_rejected() -> None:
    with pytest.raises(ValueError, match="style"):
        synth.style_charset("us")
    with pytest.raises(ValueError, match="skew"):
        synth.province_weights("zipf")


@pytest.mark.parametrize("style", synth.STYLES)
def test_render_plate_returns_plausible_rgb_crop(style: str) -> None:
    rng = np.random.default_rng(5)
    for _ in range(8):
        image = synth.render_plate(synth.random_label(style, rng), style, rng)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        h, w = image.shape[:2]
        assert 22 <= h <= 50 and 85 <= w <= 210
        assert image.std() > 5


def test_ccpd_render_is_rgb_blue_not_bgr() -> None:
    rng = np.random.default_rng(6)
    blue_wins = 0
    for _ in range(20):
        image = synth.render_plate(synth.random_label("ccpd", rng), "ccpd", rng).astype(np.float32)
        blue_wins += int(image[..., 2].mean() > image[..., 0].mean())
    assert blue_wins >= 16


def test_render_plate_draws_the_label() -> None:
    a = synth.render_plate("皖A12345", "ccpd", np.random.default_rng(7))
    b = synth.render_plate("皖A12345", "ccpd", np.random.default_rng(7))
    c = synth.render_plate("皖A67890", "ccpd", np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert a.shape == c.shape
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def _glyph_card(ink_level: float, paint_level: float) -> tuple[np.ndarray, np.ndarray]:
    ink = np.zeros((24, 94), np.uint8)
    ink[6:18, 10:20] = 255
    image = np.full((24, 94, 3), paint_level, np.uint8)
    image[ink > 0] = ink_level
    return image, ink


def test_glyph_legibility_measures_contrast_and_clipping() -> None:
    image, ink = _glyph_card(230, 60)
    inside_box = np.float32([[[8, 4], [22, 4], [22, 20], [8, 20]]])
    half_out = inside_box - np.float32([15, 0])
    inside, contrast = synth.glyph_legibility(image, ink, np.concatenate([inside_box, half_out]))
    assert inside[0] == pytest.approx(1.0)
    assert inside[1] == pytest.approx(7 / 14)
    assert contrast[0] == pytest.approx(170, abs=1)
    washed, _ = _glyph_card(70, 60)
    assert synth.glyph_legibility(washed, ink, inside_box)[1][0] == pytest.approx(10, abs=1)


@pytest.mark.parametrize("style", synth.STYLES)
def test_every_rendered_glyph_is_inside_the_crop_and_distinct(style: str) -> None:
    rng = np.random.default_rng(17)
    failures = 0
    for _ in range(150):
        image, inside, contrast = synth.render_plate_with_legibility(synth.random_label(style, rng), style, rng)
        assert len(inside) == len(contrast) >= 7
        failures += int(inside.min() < synth.MIN_GLYPH_INSIDE or contrast.min() < synth.MIN_GLYPH_CONTRAST)
    # Only a crop where every redraw failed may fall short (returned as the most legible draw).
    assert failures <= 2


def test_crop_boxes_are_as_tight_as_the_real_crops() -> None:
    # bench/plate_fill.py measured the real crops: the plate fills at least 71% of the crop height in
    # 90% of them.
    rng = np.random.default_rng(19)
    out_w, out_h = 94, 24
    fills = []
    for _ in range(2000):
        quad = synth._plate_quad(out_w, out_h, rng)
        top = np.clip(quad[[0, 1], 1], 0, out_h)
        bottom = np.clip(quad[[3, 2], 1], 0, out_h)
        fills.append(float(np.mean(bottom - top)) / out_h)
    # The looser boxes the renderer drew before gave 0.53 and 0.38 here.
    assert np.percentile(fills, 10) >= 0.7
    assert np.percentile(fills, 1) >= 0.6


def test_unreachable_legibility_returns_the_most_legible_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "MIN_GLYPH_CONTRAST", 10_000.0)
    first = synth.render_plate_with_legibility("皖A12345", "ccpd", np.random.default_rng(18))
    again = synth.render_plate_with_legibility("皖A12345", "ccpd", np.random.default_rng(18))
    assert np.array_equal(first[0], again[0])
    assert first[2].min() < synth.MIN_GLYPH_CONTRAST
    monkeypatch.setattr(synth, "MIN_GLYPH_CONTRAST", 0.0)
    monkeypatch.setattr(synth, "MIN_GLYPH_INSIDE", 0.0)
    # With no bar the first draw is kept; the best of eight draws is at least as legible.
    plain = synth.render_plate_with_legibility("皖A12345", "ccpd", np.random.default_rng(18))
    assert min(first[2].min() / 10_000.0, first[1].min() / 0.9) >= min(plain[2].min() / 10_000.0, plain[1].min() / 0.9)


def test_render_plate_rejects_labels_the_style_cannot_draw() -> None:
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError):
        synth.render_plate("皖A1234", "ccpd", rng)
    with pytest.raises(ValueError):
        synth.render_plate("皖AI2345", "ccpd", rng)
    with pytest.raises(ValueError):
        synth.render_plate("A123BC77", "ccpd-green", rng)


def test_generate_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = synth.generate(tmp_path / "a", 6, seed=11, styles=("ccpd", "ccpd-green"))
    second = synth.generate(tmp_path / "b", 6, seed=11, styles=("ccpd", "ccpd-green"))
    other = synth.generate(tmp_path / "c", 6, seed=12, styles=("ccpd", "ccpd-green"))
    assert [p.name for p in first] == [p.name for p in second]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, second))
    assert [p.name for p in first] != [p.name for p in other]
    assert all(p.read_bytes() != q.read_bytes() for p, q in zip(first, other))


def test_generate_sample_does_not_depend_on_count(tmp_path: Path) -> None:
    short = synth.generate(tmp_path / "short", 2, seed=13)
    long = synth.generate(tmp_path / "long", 5, seed=13)
    assert short[1].name == long[1].name
    assert short[1].read_bytes() == long[1].read_bytes()


@pytest.mark.parametrize("style", synth.STYLES)
def test_generate_names_labels_and_non_ascii_paths(tmp_path: Path, style: str) -> None:
    out = tmp_path / "синтетика 合成"
    paths = synth.generate(out, 12, seed=21, styles=(style,))
    assert len(paths) == 12
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    for index, path in enumerate(paths):
        match = NAME_RE.match(path.name)
        assert match, path.name
        assert int(match.group(1)) == index
        label = match.group(2)
        assert LABEL_RE[style].match(label), label
        image = _read_rgb(path)
        expected_label, expected = synth.render_sample(21, index, (style,))
        assert expected_label == label
        assert np.array_equal(image, expected)


def test_generate_mixes_styles_and_skews_provinces(tmp_path: Path) -> None:
    paths = synth.generate(tmp_path, 60, seed=5, styles=("ccpd", "ccpd-green"), province_skew="ccpd")
    labels = [NAME_RE.match(p.name).group(2) for p in paths]  # type: ignore[union-attr]
    lengths = [len(label) for label in labels]
    assert 3 <= lengths.count(8) <= 25 and lengths.count(7) + lengths.count(8) == 60
    assert sum(label[0] == "皖" for label in labels) > 40


def test_generate_reports_progress_and_leaves_no_temp_files(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    synth.generate(tmp_path, 7, seed=3, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (7, 7)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert all(p.suffix == ".png" for p in tmp_path.iterdir())


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth.generate(tmp_path, 1, seed=0, styles=("nope",))
    with pytest.raises(ValueError):
        synth.generate(tmp_path, -1, seed=0)
    assert synth.generate(tmp_path / "empty", 0, seed=0) == []


def test_font_subset_is_small_and_has_every_plate_glyph() -> None:
    assert synth.FONT_PATH.is_file()
    assert synth.FONT_PATH.stat().st_size < 300 * 1024
    needed = synth.PROVINCES + "警学" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789" + "\u00b7"
    font = TTFont(str(synth.FONT_PATH))
    cmap = font.getBestCmap()
    missing = [ch for ch in needed if ord(ch) not in cmap]
    assert not missing
    licence = synth.FONT_PATH.parent / "LICENSE-OFL.txt"
    text = licence.read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in text and "Copyright" in text
