"""The app reads crops by path on demand (issue 17): ``loaders.CropsByPath`` gives what decoding the whole
listing gave, for every way the pages index it, and a dataset in the app holds no decoded array."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

APP_DIR = Path(__file__).resolve().parents[1] / "app"
if str(APP_DIR) not in sys.path:  # streamlit puts app/ on sys.path; pytest does not
    sys.path.insert(0, str(APP_DIR))

import loaders  # noqa: E402

from ocr_core.data import synth  # noqa: E402
from ocr_core.data.dataset import decode_listing  # noqa: E402
from ocr_core.data.sources import list_source  # noqa: E402
from ocr_core.preprocess import InputSpec  # noqa: E402


@pytest.fixture(scope="module")
def listing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crops")
    synth.generate(folder, 12, seed=5)
    return list_source(folder)


@pytest.mark.parametrize("upscale", ["linear", "cubic"])
def test_crops_by_path_equal_the_decoded_dataset(listing, upscale):
    # The synthetic crops are mostly 94x24, so both paths enlarge them, with the model's interpolation.
    decoded = decode_listing(listing, (32, 128), upscale=upscale)
    lazy = loaders._lazy_dataset(listing, InputSpec(upscale=upscale))
    other = decode_listing(listing, (32, 128), upscale="cubic" if upscale == "linear" else "linear")
    assert not np.array_equal(decoded.images, other.images)
    assert isinstance(lazy.images, loaders.CropsByPath)
    assert lazy.images.shape == decoded.images.shape and len(lazy.images) == len(decoded)
    assert np.array_equal(lazy.images[3], decoded.images[3])
    assert np.array_equal(lazy.images[np.int64(-1)], decoded.images[-1])
    assert np.array_equal(lazy.images[2:7], decoded.images[2:7])
    assert np.array_equal(lazy.images[np.array([9, 0, 4])], decoded.images[np.array([9, 0, 4])])
    assert lazy.images[5:5].shape == (0, 32, 128, 3)
    assert lazy.samples == decoded.samples


def test_a_crop_that_broke_after_listing_reads_grey(listing, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    crops = loaders.CropsByPath([listing.samples[0].__class__(str(broken), "A1", "folder")], (32, 128))
    assert crops[0].shape == (32, 128, 3) and int(crops[0].min()) == 200
