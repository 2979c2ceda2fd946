"""Exact and near-duplicate crops, within a set and between a training and a test set."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from ocr_core.cli import main
from ocr_core.data import synth
from ocr_core.near_duplicates import dhash, fingerprints, near_pairs


def test_planted_copies_and_recompressions_are_found_and_nothing_else(tmp_path, capsys):
    train = tmp_path / "train"
    paths = synth.generate(train, 40, seed=3, styles=("ccpd",))
    test = tmp_path / "test"
    test.mkdir()
    shutil.copy(paths[0], test / paths[0].name)  # the same file in both sets
    image = cv2.imread(str(paths[1]))
    cv2.imwrite(str(test / "recompressed-沪A00001.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    synth.generate(test / "fresh", 10, seed=99, styles=("ccpd",))
    first = fingerprints([str(p) for p in sorted(test.rglob("*.*"))])
    second = fingerprints([str(p) for p in paths])
    pairs = near_pairs(first, second)
    found = {(a.split("/")[-1], b.split("/")[-1], exact) for a, b, exact in zip(pairs["a"], pairs["b"], pairs["exact"])}
    assert (paths[0].name, paths[0].name, True) in found
    assert ("recompressed-沪A00001.jpg", paths[1].name, False) in found
    assert len(pairs) == 2, pairs
    # Within one set: the planted copy pairs with its original, fresh plates with nothing.
    within = near_pairs(fingerprints([str(p) for p in paths] + [str(test / paths[0].name)]))
    assert len(within) == 1 and within["exact"].all()
    assert main(["near-duplicates", str(test), "--against", str(train), "--out", str(tmp_path / "p.csv")]) == 0
    assert "2 near-duplicate pair(s) between" in capsys.readouterr().out
    assert (tmp_path / "p.csv").read_text(encoding="utf-8").count("\n") == 3


def test_dhash_ignores_brightness_and_sees_a_different_plate():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (24, 94, 3), dtype=np.uint8)
    brighter = np.clip(image.astype(int) + 20, 0, 255).astype(np.uint8)
    other = rng.integers(0, 255, (24, 94, 3), dtype=np.uint8)
    assert bin(dhash(image) ^ dhash(brighter)).count("1") <= 4
    assert bin(dhash(image) ^ dhash(other)).count("1") > 16
