"""Streamed scoring: chunk by chunk, the same frame as decoding everything, and resumable."""

from __future__ import annotations

import pandas as pd
import pytest

from ocr_core import score as score_module
from ocr_core.checkpoint import load_model
from ocr_core.cli import main
from ocr_core.data.dataset import load_dataset
from ocr_core.data.sources import list_source
from ocr_core.score import score_dataset, score_listing

LABELS = ["皖AY339S", "沪C8GK31", "ABC123", "京A00001", "AAA111", "苏E12345", "浙K88888"]


@pytest.fixture
def folder(tmp_path, make_images):
    make_images(tmp_path / "d", LABELS, naming="id")
    (tmp_path / "d" / "000003-BROKEN1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # undecodable, mid-listing
    return tmp_path / "d"


def test_chunks_give_the_frame_of_the_whole_decoded_dataset(folder, tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    whole = score_dataset(loaded, load_dataset(folder))
    calls = []
    streamed = score_listing(loaded, list_source(folder), chunk_size=3, progress=lambda d, n: calls.append((d, n)))
    pd.testing.assert_frame_equal(streamed.frame, whole, rtol=1e-5)
    assert [path.endswith("BROKEN1.png") for path, _ in streamed.skipped] == [True]
    assert calls == [(3, 8), (6, 8), (8, 8)] and streamed.resumed_chunks == 0


def test_an_interrupted_run_resumes_from_its_chunks(folder, tiny_checkpoint, tmp_path, monkeypatch):
    loaded = load_model(tiny_checkpoint)
    parts = tmp_path / "out.parquet.parts"
    first = score_listing(loaded, list_source(folder), chunk_size=2, parts=parts).frame
    (parts / "chunk-000003.parquet").unlink()  # as if the run had stopped before its last chunk
    decoded = []
    real = score_module.decode_listing
    monkeypatch.setattr(score_module, "decode_listing", lambda listing, *a, **k: decoded.append(
        len(listing.samples)) or real(listing, *a, **k))
    again = score_listing(loaded, list_source(folder), chunk_size=2, parts=parts)
    assert decoded == [2] and again.resumed_chunks == 3
    pd.testing.assert_frame_equal(again.frame, first)
    # Another listing (a label changed) is not this run's: every chunk is scored again.
    (folder / "000006-浙K88888.png").rename(folder / "000006-浙K88889.png")
    decoded.clear()
    other = score_listing(loaded, list_source(folder), chunk_size=2, parts=parts)
    assert len(decoded) == 4 and other.resumed_chunks == 0


def test_score_cli_cleans_up_its_chunks(folder, tiny_checkpoint, tmp_path, caplog):
    out = tmp_path / "s.parquet"
    assert main(["score", "--checkpoint", str(tiny_checkpoint), "--data", str(folder), "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "s.parquet.parts").exists()
    assert "BROKEN1.png" in caplog.text, "the skipped file is named"
