"""ONNX out and in: export with metadata and a parity check, score an exported model like its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from ocr_core.checkpoint import load_model, make_checkpoint, save_checkpoint
from ocr_core.cli import main
from ocr_core.data.dataset import load_dataset
from ocr_core.errors import InputError
from ocr_core.heads import head_for_labels
from ocr_core.models import arch_config, arch_spec, build_model
from ocr_core.onnx_io import METADATA_KEY, export_onnx, load_onnx
from ocr_core.score import score_dataset

LABELS = ["皖AY339S", "沪C8GK31", "京A12345", "豫B0000A", "皖AD12345", "苏E7Q1X2", "浙K88888"]

pytestmark = pytest.mark.slow  # each export runs torch's dynamo exporter (5-15 s)


def _checkpoint(arch: str, path, labels=LABELS):
    torch.manual_seed(0)
    spec = arch_spec(arch)
    head = head_for_labels(spec.head, labels, None, spec.positions, spec.separate_first)
    config = arch_config(arch)
    model = build_model(arch, head.output_classes, config).eval()
    save_checkpoint(make_checkpoint(model, arch, config, head, spec.input, metrics={"val_accuracy": 0.5}), path)
    return path


@pytest.mark.parametrize("arch", ["small", "fcnn_bilstm", "cnn_lstm_fixed"])
def test_export_keeps_logits_readings_and_metadata_at_every_batch_size(tmp_path, make_images, arch):
    checkpoint = _checkpoint(arch, tmp_path / "m.pt")
    loaded = load_model(checkpoint)
    make_images(tmp_path / "d", LABELS)
    data = load_dataset(tmp_path / "d", loaded.input_size)
    report = export_onnx(checkpoint, tmp_path / "m.onnx", data.images)
    assert report.same_readings and report.max_logit_difference <= 1e-4
    meta = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}[METADATA_KEY])
    assert meta["head"] == loaded.head.to_dict() and meta["input"] == loaded.input.to_dict()
    exported = load_onnx(tmp_path / "m.onnx")
    assert exported.head == loaded.head and exported.input == loaded.input
    # Scoring through onnxruntime gives the checkpoint's frame (a dynamic batch axis: 3 rows, then 4).
    frame_pt = score_dataset(loaded, data, batch_size=3)
    frame_onnx = score_dataset(exported, data, batch_size=3)
    pd.testing.assert_series_equal(frame_onnx["pred"], frame_pt["pred"])
    assert np.allclose(frame_onnx["confidence"], frame_pt["confidence"], rtol=1e-3, atol=1e-6)


def test_export_and_score_through_the_cli(tmp_path, make_images, capsys):
    checkpoint = _checkpoint("small", tmp_path / "m.pt")
    make_images(tmp_path / "d", LABELS)
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "d")]) == 0
    assert "same readings" in capsys.readouterr().out
    assert main(["score", "--checkpoint", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "d")]) == 0
    onnx_line = capsys.readouterr().out
    assert main(["score", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out == onnx_line
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "m.pt2")]) == 2
    assert ".onnx" in capsys.readouterr().err


def test_onnx_files_without_platelens_metadata_or_damaged_are_refused(tmp_path):
    checkpoint = _checkpoint("small", tmp_path / "m.pt")
    crops = np.random.default_rng(0).integers(0, 255, (4, 32, 128, 3), dtype=np.uint8)
    export_onnx(checkpoint, tmp_path / "m.onnx", crops)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(InputError, match="no PlateLens metadata"):
        load_onnx(tmp_path / "bare.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable ONNX"):
        load_onnx(tmp_path / "bad.onnx")


def test_score_backend_onnxruntime_exports_once_into_the_workspace(tmp_path, make_images, capsys, monkeypatch):
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "ws"))
    checkpoint = _checkpoint("small", tmp_path / "m.pt")
    make_images(tmp_path / "d", LABELS)
    args = ["score", "--checkpoint", str(checkpoint), "--data", str(tmp_path / "d")]
    assert main(args) == 0
    torch_line = capsys.readouterr().out
    assert main([*args, "--backend", "onnxruntime"]) == 0
    assert capsys.readouterr().out == torch_line
    (exported,) = (tmp_path / "ws" / "onnx").glob("*.onnx")
    stamp = exported.stat().st_mtime_ns
    assert main([*args, "--backend", "onnxruntime"]) == 0
    assert exported.stat().st_mtime_ns == stamp, "the export is reused"
