"""The bad-input matrix: every kind of broken input, through the CLI and through the dashboard's path inputs.

Each kind must end in one clear sentence naming the file, or in a named and counted skip, or be read
correctly (odd but valid images); never a traceback, and never a partial output file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
from conftest import TINY_VOCAB, TouchOnUnpickle, make_images, write_png
from streamlit.testing.v1 import AppTest

from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.cli import EXIT_INPUT_ERROR, main
from ocr_core.models import arch_config, build_model
from ocr_core.roots import ROOTS_ENV
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"
GOOD = ["皖A12345", "沪B67890", "皖C24680", "沪D13579"]


@dataclass
class Case:
    """A bad input and what must come of it.

    outcome: ``error`` (one sentence naming ``name``), ``skip`` (``count`` files skipped, ``name`` among
    them, ``rows`` scored), ``ok`` (``count`` samples scored) or ``oov`` (scored, ``count`` rows flagged out
    of vocabulary).
    """

    checkpoint: Path
    data: Path
    outcome: str
    name: str = ""
    count: int = 0
    rows: int = len(GOOD)


def _checkpoint(path: Path, chars: str, head: int | None = None) -> Path:
    torch.manual_seed(0)
    vocab = Vocab(chars)
    config = arch_config("small")
    model = build_model("small", head or vocab.num_classes, config)
    save_checkpoint(make_checkpoint(model, "small", config, vocab, (32, 128)), path)
    return path


def _good_folder(root: Path) -> Path:
    folder = root / "plates"
    make_images(folder, GOOD, naming="id")
    return folder


def _image_case(root: Path, ckpt: Path, name: str, image: np.ndarray | bytes, outcome: str,
                count: int) -> Case:
    folder = _good_folder(root)
    path = folder / name
    if isinstance(image, bytes):
        path.write_bytes(image)
    else:
        write_png(path, image)
    return Case(ckpt, folder, outcome, name, count)


def _manifest_case(root: Path, ckpt: Path, name: str, text: str, outcome: str, mention: str,
                   count: int = 0) -> Case:
    _good_folder(root)
    manifest = root / name
    manifest.write_text(text, encoding="utf-8")
    return Case(ckpt, manifest, outcome, mention, count, rows=1)


def _entries(*rows: tuple[str, str]) -> str:
    return json.dumps([{"file": f, "text": t} for f, t in rows], ensure_ascii=False)


def _png_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _jpeg_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


RNG = np.random.default_rng(0)
PLATE = RNG.integers(0, 256, (24, 94, 3), dtype=np.uint8)
FIRST = f"000000-{GOOD[0]}.png"


def _dataset_cases() -> dict[str, Callable[[Path, Path], Case]]:
    n = len(GOOD)
    return {
        "zero-byte file": lambda r, c: _image_case(r, c, "000010-A11111.png", b"", "skip", 1),
        "truncated PNG": lambda r, c: _image_case(r, c, "000011-A22222.png", _png_bytes(PLATE)[:60], "skip", 1),
        "PNG cut inside its header": lambda r, c: _image_case(r, c, "000019-A99999.png", _png_bytes(PLATE)[:20],
                                                              "skip", 1),
        "JPEG cut inside its header": lambda r, c: _image_case(r, c, "000020-A99998.jpg", _jpeg_bytes(PLATE)[:40],
                                                               "skip", 1),
        "non-image file": lambda r, c: _image_case(r, c, "notes.txt", b"hello", "skip", 1),
        "JPEG that is text": lambda r, c: _image_case(r, c, "000012-A33333.jpg", b"just text\n", "skip", 1),
        "gray PNG": lambda r, c: _image_case(r, c, "000013-A44444.png", PLATE[..., 0], "ok", n + 1),
        "RGBA PNG": lambda r, c: _image_case(r, c, "000014-A55555.png",
                                             np.dstack([PLATE, np.full((24, 94), 128, np.uint8)]), "ok", n + 1),
        "16-bit PNG": lambda r, c: _image_case(r, c, "000015-A66666.png", PLATE.astype(np.uint16) * 257, "ok",
                                               n + 1),
        "10000x10000 image": lambda r, c: _image_case(r, c, "000016-A77777.png",
                                                      np.zeros((10000, 10000), np.uint8), "skip", 1),
        "1x1 image": lambda r, c: _image_case(r, c, "000017-A88888.png", PLATE[:1, :1], "ok", n + 1),
        "label outside the vocabulary": lambda r, c: _image_case(r, c, "000018-ЖA9999.png", PLATE, "oov", 1),
        "empty label": lambda r, c: _manifest_case(r, c, "empty-label.json", _entries(
            (f"plates/{FIRST}", GOOD[0]), ("plates/000001-沪B67890.png", "")), "skip", "000001-沪B67890.png", 1),
        "duplicate files": lambda r, c: _manifest_case(r, c, "twice.json", _entries(
            (f"plates/{FIRST}", GOOD[0]), (f"plates/{FIRST}", GOOD[0])), "skip", FIRST, 1),
        "empty folder": lambda r, c: (r / "empty").mkdir() or Case(c, r / "empty", "error", "empty"),
        "missing path": lambda r, c: Case(c, r / "nowhere", "error", "nowhere"),
        "manifest with missing files": lambda r, c: _manifest_case(r, c, "ghosts.json", _entries(
            (f"plates/{FIRST}", GOOD[0]), ("plates/ghost.png", "A1")), "error", "ghost.png"),
        "manifest with bad JSON": lambda r, c: _manifest_case(r, c, "broken.json", '[{"file": "plates/x', "error",
                                                              "broken.json"),
        "CSV with wrong columns": lambda r, c: _manifest_case(r, c, "columns.csv",
                                                              f"image,label\nplates/{FIRST},{GOOD[0]}\n", "error",
                                                              "columns.csv"),
    }


_EDITS = {
    "format_version as text": {"format_version": "1"},
    "input size that does not fit the weights": {"input_size": [64, 128]},
    "input size of 100000x100000": {"input_size": [100000, 100000]},
    "tensor in metrics": {"metrics": {"val_accuracy": torch.ones(2)}},
}


def _looping_link_case(root: Path, ckpt: Path) -> Case:
    folder = _good_folder(root)
    (folder / "000021-A12121.png").symlink_to("000021-A12121.png")
    return Case(ckpt, folder, "skip", "000021-A12121.png", 1)


def _bad_checkpoint(kind: str) -> Callable[[Path, Path], Case]:
    def build(root: Path, good: Path) -> Case:
        folder = _good_folder(root)
        path = root / f"{kind.replace(' ', '-')}.pt"
        if kind == "other vocabulary":
            # A Russian-plate model: every Chinese label has characters it cannot read.
            _checkpoint(path, "0123456789ABEKMHOPCTYX")
            return Case(path, folder, "oov", count=len(GOOD))
        if kind == "vocabulary that does not fit its weights":
            _checkpoint(path, TINY_VOCAB, head=len(TINY_VOCAB) + 5)
        elif kind == "truncated checkpoint":
            blob = good.read_bytes()
            path.write_bytes(blob[: len(blob) // 2])
        elif kind == "random binary":
            path.write_bytes(np.random.default_rng(1).bytes(4096))
        elif kind == "seed-000 notebook format":
            torch.save({"model": {}, "alphabet": "abc", "target_length": 7, "optimizer": {}, "scheduler": {}}, path)
        elif kind == "malicious pickle":
            torch.save({"format_version": 1, "x": TouchOnUnpickle(root / "MARKER")}, path)
        elif kind in _EDITS:  # issue 21: metadata of the wrong type or range
            data = {k: v for k, v in torch.load(good, weights_only=True).items() if k not in ("head", "input")}
            torch.save({**data, "format_version": 1, **_EDITS[kind]}, path)
        return Case(path, folder, "error", path.name)
    return build


CASES: dict[str, Callable[[Path, Path], Case]] = {
    **_dataset_cases(),
    **{kind: _bad_checkpoint(kind) for kind in (
        "other vocabulary", "vocabulary that does not fit its weights", "truncated checkpoint", "random binary",
        "seed-000 notebook format", "malicious pickle", *_EDITS)},
    "self-referencing symlink": _looping_link_case,
}


def test_the_matrix_covers_at_least_fifteen_kinds():
    assert len(CASES) >= 15


@pytest.fixture
def case(request, tmp_path) -> Case:
    good = _checkpoint(tmp_path / "good.pt", TINY_VOCAB)
    return CASES[request.param](tmp_path, good)


# ---- CLI -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES), indirect=True)
def test_cli(case: Case, tmp_path, capsys, caplog):
    out = tmp_path / "scores.parquet"
    with caplog.at_level(logging.WARNING):
        code = main(["score", "--checkpoint", str(case.checkpoint), "--data", str(case.data), "--out", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "MARKER").exists()
    if case.outcome == "error":
        assert code == EXIT_INPUT_ERROR
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and case.name in lines[0], captured.err
        assert not out.exists(), "a failed run must leave no output file"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".scores")], "no temp file left behind"
        return
    assert code == 0, captured.err
    frame = pd.read_parquet(out)
    if case.outcome == "skip":
        assert f"skipped {case.count} file(s)" in caplog.text and case.name in caplog.text, caplog.text
        assert len(frame) == case.rows
    elif case.outcome == "ok":
        assert len(frame) == case.count
        assert "skipped" not in caplog.text
    elif case.outcome == "oov":
        assert int(frame["oov"].sum()) == case.count


# ---- dashboard -----------------------------------------------------------------------------------------

@pytest.fixture
def dashboard(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield AppTest.from_file(MAIN, default_timeout=120)
    st.cache_data.clear()
    st.cache_resource.clear()


def _pick(at: AppTest, key: str, value: str) -> None:
    at.sidebar.selectbox(key=key).set_value(OTHER)
    at.run()
    at.sidebar.text_input(key=f"{key}_path").set_value(value)


@pytest.mark.parametrize("case", list(CASES), indirect=True)
def test_dashboard(case: Case, dashboard: AppTest, tmp_path):
    # Pick the paths before the first full run, so the embedded set is never generated here.
    scores_dir = tmp_path / "workspace" / "scores"
    dashboard.session_state["checkpoint"] = OTHER
    dashboard.session_state["checkpoint_path"] = str(case.checkpoint)
    dashboard.session_state["dataset"] = OTHER
    dashboard.session_state["dataset_path"] = str(case.data)
    dashboard.run()
    assert not dashboard.exception, [e.message for e in dashboard.exception]
    assert not (tmp_path / "MARKER").exists()
    errors = [e.value for e in dashboard.error]
    warnings = [w.value for w in dashboard.warning]
    if case.outcome == "error":
        assert len(errors) == 1 and case.name in errors[0], errors
        assert not scores_dir.exists() or not any(scores_dir.iterdir()), "a refused input leaves no cache"
        return
    assert not errors, errors
    metrics = {m.label: m.value for m in dashboard.metric}
    if case.outcome == "skip":
        assert any(f"skipped {case.count} file(s)" in w and case.name in w for w in warnings), warnings
    elif case.outcome == "ok":
        assert metrics["Samples"] == str(case.count)
        assert not warnings
    elif case.outcome == "oov":
        assert metrics["OOV labels"].startswith(str(case.count)), metrics
    assert not [p for p in scores_dir.iterdir() if p.name.startswith(".")], "no temp file left behind"
