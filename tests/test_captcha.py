"""Captchas: the synthetic captcha style, the shipped captcha demo, the embedded captcha set and the real split.

Figures (the demo's accuracy on real captchas, the fine-tune's) are measured by the README's commands,
never asserted here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr_core import workspace
from ocr_core.cli import main as cli_main
from ocr_core.data import synth
from ocr_core.data.captcha import (CAPTCHA_ALPHABET, CAPTCHA_TEST_FRACTION, captcha_split, is_captcha_test,
                                   random_captcha_label, render_captcha, render_captcha_with_boxes)
from ocr_core.data.sources import list_source
from ocr_core.vocab import Vocab

REAL_CAPTCHAS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "captcha"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def test_captcha_style_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = synth.generate(tmp_path / "a", 6, seed=3, styles=("captcha",))
    b = synth.generate(tmp_path / "b", 6, seed=3, styles=("captcha",))
    c = synth.generate(tmp_path / "c", 6, seed=4, styles=("captcha",))
    assert [p.name for p in a] == [p.name for p in b]
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


def test_captchas_are_200x50_grey_with_alphabet_labels(tmp_path: Path) -> None:
    paths = synth.generate(tmp_path, 12, seed=11, styles=("captcha",))
    for index, path in enumerate(paths):
        number, label = path.stem.split("-")
        assert number == f"{index:06d}"
        assert len(label) == 5 and set(label) <= set(CAPTCHA_ALPHABET)
        with Image.open(path) as image:
            assert image.size == (200, 50)
            assert image.mode == "L"
            grey = np.asarray(image)
        # Dark glyphs and line on a light background, as the real set.
        assert grey.min() < 60 and np.median(grey) > 170
    assert [s.label for s in list_source(tmp_path).samples] == [p.stem.split("-")[1] for p in paths]


def test_captcha_labels_hold_doubles_about_as_often_as_the_real_set() -> None:
    labels = [random_captcha_label(np.random.default_rng([5, i])) for i in range(4000)]
    doubled = np.mean([any(a == b for a, b in zip(t, t[1:])) for t in labels])
    assert 0.15 < doubled < 0.25  # real captcha_images_v2 subset: 89 of 487 (0.18)
    assert set("".join(labels)) == set(CAPTCHA_ALPHABET)


def test_render_captcha_refuses_labels_outside_the_alphabet() -> None:
    with pytest.raises(ValueError, match="captcha label"):
        render_captcha("abc12", np.random.default_rng(0))
    with pytest.raises(ValueError, match="captcha label"):
        render_captcha("2345", np.random.default_rng(0))


def _holes(ink: np.ndarray) -> int:
    """Enclosed counters of a glyph image (ink > 0)."""
    import cv2

    binary = (ink > 127).astype(np.uint8)
    _, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return 0 if hierarchy is None else int((hierarchy[0][:, 3] >= 0).sum())


def test_captcha_g_is_drawn_single_storey_like_the_real_font() -> None:
    from ocr_core.data.captcha import _glyph

    # The real captchas' g has one bowl; Noto's own g has two (fails if the label's g is drawn as "g").
    assert _holes(_glyph("g")[0]) == 1
    assert _holes(_glyph("8")[0]) == 2 and _holes(_glyph("d")[0]) == 1


def test_captcha_first_glyph_sits_where_the_real_set_draws_it() -> None:
    lefts = []
    for i in range(60):
        rng = np.random.default_rng([8, i])
        label = random_captcha_label(rng)
        image, boxes = render_captcha_with_boxes(label, rng)
        assert len(boxes) == 5 and all(a < b for a, b in boxes)
        # Same pixels as render_captcha for the same generator state.
        again = np.random.default_rng([8, i])
        random_captcha_label(again)
        assert np.array_equal(render_captcha(label, again), image)
        lefts.append(boxes[0][0])
    # Real: the first glyph's left ink edge is at about x = 29 of 200 in every file.
    assert 27 <= float(np.median(lefts)) <= 32
    assert np.mean([27 <= x <= 32 for x in lefts]) > 0.6


def test_captcha_fringe_grows_from_the_first_glyph_to_the_last() -> None:
    first, last = [], []
    for i in range(40):
        rng = np.random.default_rng([12, i])
        label = random_captcha_label(rng)
        grey = render_captcha_with_boxes(label, rng)
        image, boxes = grey[0][:, :, 0], grey[1]
        mid = (image >= 100) & (image < 180)
        first.append(mid[:, int(boxes[0][0]): int(boxes[0][1])].mean())
        last += [mid[:, int(a): int(b)].mean() for a, b in boxes[3:]]
    # Real: mid-grey share about 0.07 over the first glyph, 0.12 over the last ones (a fringe drawn
    # as often on every glyph gives about the same share everywhere).
    assert np.mean(first) < 0.85 * np.mean(last)


def test_captcha_preset_and_style_charset() -> None:
    assert synth.style_charset("captcha") == CAPTCHA_ALPHABET
    assert Vocab.preset("captcha").chars == CAPTCHA_ALPHABET
    assert "captcha" in synth.ALL_STYLES and "captcha" not in synth.STYLES


def test_cli_synth_accepts_the_captcha_style(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["synth", "--out", str(tmp_path / "c"), "--count", "3", "--seed", "2", "--style", "captcha"]) == 0
    assert len(list((tmp_path / "c").glob("*.png"))) == 3
    assert (tmp_path / "c" / ".complete").is_file()


def test_shipped_captcha_demo_reads_generated_captchas(tmp_path: Path) -> None:
    from ocr_core.checkpoint import load_model
    from ocr_core.data.dataset import load_dataset
    from ocr_core.score import score_dataset

    assert workspace.CAPTCHA_DEMO_CHECKPOINT.is_file()
    assert workspace.CAPTCHA_DEMO_CHECKPOINT.stat().st_size < 10 * 2**20
    loaded = load_model(workspace.CAPTCHA_DEMO_CHECKPOINT)
    assert loaded.head.vocab.chars == CAPTCHA_ALPHABET
    # Enough CTC time steps for the worst captcha label (five equal characters need nine).
    steps = loaded.model(torch_blank(loaded)).shape[1]
    assert loaded.head.unreadable("nnnnn", steps) == ""
    synth.generate(tmp_path, 8, seed=424242, styles=("captcha",))  # a seed no training set used
    data = load_dataset(tmp_path, loaded.input.size)
    frame = score_dataset(loaded, data)
    assert len(frame) == 8
    # A sanity check that it reads captchas at all, not the measured accuracy (that is in the README).
    assert int(frame["correct"].sum()) >= 5, frame[["label", "pred"]].to_string()


def torch_blank(loaded):  # noqa: ANN001, ANN201 - small helper for the time-step check
    import torch

    spec = loaded.input
    return torch.zeros(1, spec.channels, spec.height, spec.width)


def test_embedded_captcha_set_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setattr(workspace, "EMBEDDED_CAPTCHA_COUNT", 10)
    calls: list[tuple[int, int]] = []
    folder = workspace.ensure_embedded_captcha_set(progress=lambda done, total: calls.append((done, total)))
    assert folder == workspace.datasets_dir() / workspace.EMBEDDED_CAPTCHA_TESTSET
    assert (folder / ".complete").is_file()
    names = sorted(p.name for p in folder.glob("*.png"))
    assert len(names) == 10 and calls and calls[-1] == (10, 10)
    before = _digests(folder)
    calls.clear()
    assert workspace.ensure_embedded_captcha_set(progress=lambda d, t: calls.append((d, t))) == folder
    assert calls == [] and _digests(folder) == before
    assert folder in workspace.synthetic_sets()


def test_captcha_split_is_a_fixed_hash_of_the_file_name(tmp_path: Path) -> None:
    names = [f"{random_captcha_label(np.random.default_rng([9, i]))}.png" for i in range(600)]
    names = sorted(set(names))
    for name in names:
        (tmp_path / name).write_bytes(b"")
    train, test = captcha_split(tmp_path)
    assert not {p.name for p in train} & {p.name for p in test}
    assert len(train) + len(test) == len(names)
    assert abs(len(test) / len(names) - CAPTCHA_TEST_FRACTION) < 0.06
    assert all(is_captcha_test(p.name) for p in test)
    assert captcha_split(tmp_path) == (train, test)


def test_real_captcha_split_and_manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not REAL_CAPTCHAS.is_dir():
        pytest.skip(f"real captcha folder {REAL_CAPTCHAS} is absent (see ../shared/data/README.md)")
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    train, test = captcha_split(REAL_CAPTCHAS)
    assert (len(train), len(test)) == (341, 146)
    train_csv, test_csv = workspace.ensure_captcha_split(REAL_CAPTCHAS)
    train_rows = list_source(train_csv).samples
    test_rows = list_source(test_csv).samples
    assert [Path(s.path).name for s in test_rows] == [p.name for p in test]
    assert {s.label for s in train_rows}.isdisjoint({s.label for s in test_rows})
    assert all(s.label == Path(s.path).stem for s in train_rows + test_rows)
