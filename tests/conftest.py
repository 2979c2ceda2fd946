"""Shared fixtures: the read-only real data, tiny image sets, a tiny checkpoint, and a fresh AppTest of the app."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab
from ocr_core.workspace import DEMO_CHECKPOINT

# The tests share a small machine with other sessions; keep torch from spawning a thread per core.
torch.set_num_threads(1)

# The shipped demo checkpoint, bound at import: some fixtures point workspace.DEMO_CHECKPOINT at a stand-in.
SHIPPED_DEMO: Path = DEMO_CHECKPOINT

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Characters of the tiny checkpoint: CCPD letters and digits plus two provinces.
TINY_VOCAB = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ皖沪"


@pytest.fixture
def shared_data() -> Path:
    """The read-only real data folder (``../shared/data``); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (see its README); test needs real plates")
    return SHARED_DATA


class TouchOnUnpickle:
    """Unpickling this creates ``marker``: stands in for a checkpoint that would run code when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an image (BGR/BGRA/gray, any depth cv2 encodes) to ``path``; works for non-ASCII names."""
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    assert ok, f"cv2 could not encode {path}"
    buf.tofile(str(path))
    return path


def plate_image(label: str, index: int, height: int = 32, width: int = 128) -> np.ndarray:
    """A small BGR picture of the label's ASCII characters on a noisy tinted background."""
    rng = np.random.default_rng(1000 + index)
    tint = rng.integers(150, 256, size=3)
    image = (np.full((height, width, 3), tint, np.int16) + rng.integers(-20, 21, (height, width, 3)))
    image = np.clip(image, 0, 255).astype(np.uint8)
    text = "".join(c for c in label if c.isascii()) or "?"
    scale = 0.9 * height / 32
    origin = (3, int(height * 0.75))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 2, cv2.LINE_AA)
    return image


def make_images(
    directory: Path, labels: Sequence[str], naming: str = "label", ext: str = ".png",
    size: tuple[int, int] = (32, 128),
) -> list[Path]:
    """Write one small, distinct RGB picture per label and return the paths.

    naming: ``label`` -> ``LABEL.ext``; ``id`` -> ``000123-LABEL.ext``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, label in enumerate(labels):
        if naming == "label":
            name = f"{label}{ext}"
        elif naming == "id":
            name = f"{i:06d}-{label}{ext}"
        else:
            raise ValueError(f"unknown naming {naming!r}")
        paths.append(write_png(directory / name, plate_image(label, i, *size)))
    return paths


@pytest.fixture(name="make_images", scope="session")
def make_images_fixture() -> Callable[..., list[Path]]:
    """The :func:`make_images` helper, as a fixture."""
    return make_images


@pytest.fixture(name="write_png", scope="session")
def write_png_fixture() -> Callable[[Path, np.ndarray], Path]:
    """The :func:`write_png` helper, as a fixture."""
    return write_png


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A freshly initialised ``small`` model over ``TINY_VOCAB``, saved as a PlateLens checkpoint."""
    torch.manual_seed(0)
    vocab = Vocab(TINY_VOCAB)
    config = arch_config("small")
    model = build_model("small", vocab.num_classes, config)
    path = tmp_path / "tiny.pt"
    save_checkpoint(make_checkpoint(model, "small", config, vocab, (32, 128)), path)
    return path


@pytest.fixture
def app(env):
    """A fresh AppTest of app/main.py, the streamlit caches cleared before and after.

    ``env`` is the requesting module's own fixture: it sets up the workspace and checkpoints the app sees.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    yield AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app" / "main.py"), default_timeout=120)
    st.cache_data.clear()
    st.cache_resource.clear()
