"""ONNX out and in: export a PlateLens checkpoint with its head and input settings, and serve an ONNX file.

An exported file carries everything the scorer needs in its metadata (``platelens`` key, JSON): the
architecture name, the head (``ocr_core.heads``), the input settings (``ocr_core.preprocess``) and the
vocabulary. So a model deployed as ONNX (onnxruntime, TensorRT ...) can be analysed as it runs in
production: ``load_onnx`` gives a ``LoadedModel`` whose ``model`` runs the file through onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocr_core.atomic import atomic_path
from ocr_core.checkpoint import LoadedModel, load_model
from ocr_core.errors import InputError
from ocr_core.heads import head_from_dict
from ocr_core.preprocess import InputSpec, to_model_input

METADATA_KEY = "platelens"
# Parity bounds of an export: logits as close as the fused PyTorch model is to the stored one.
LOGIT_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 5)
MAX_BATCH = 65536


@dataclass(frozen=True)
class ExportReport:
    """How an exported model compared with its checkpoint on the check crops."""

    path: Path
    crops: int
    max_logit_difference: float
    same_readings: bool


class OnnxRecognizer(nn.Module):
    """An ONNX file run by onnxruntime behind the ``nn.Module`` call the scorer and pages use."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnxruntime as ort

        self.path = str(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # No weights live in torch; this empty tensor tells callers which device to put inputs on.
        self.register_buffer("device_anchor", torch.zeros(0), persistent=False)

    def parameters(self, recurse: bool = True):  # noqa: ANN201 - same as nn.Module's
        """The device anchor, so that ``next(model.parameters()).device`` works as for torch models."""
        yield self.device_anchor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, C) of preprocessed images (N, C, H, W), computed by onnxruntime on the CPU."""
        array = images.detach().float().cpu().numpy()
        (logits,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(logits).to(images.device)


def _metadata(loaded: LoadedModel) -> dict[str, Any]:
    return {
        "format_version": 1,
        "arch": loaded.arch,
        "arch_config": loaded.meta.get("arch_config", {}),
        "head": loaded.head.to_dict(),
        "input": loaded.input.to_dict(),
        "vocab": loaded.vocab.chars,
        "text_format": loaded.meta.get("text_format"),
    }


def load_onnx(path: str | Path) -> LoadedModel:
    """An exported PlateLens ONNX file as a ``LoadedModel`` (its head and input settings from the metadata).

    Raises:
        InputError: unreadable ONNX, or no PlateLens metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model {path} does not exist; give the path of a .onnx file")
    try:
        model = OnnxRecognizer(path)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types for damaged files
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not a readable ONNX model ({first})") from None
    raw = model.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise InputError(f"{path} has no PlateLens metadata (head, input settings, vocabulary); export it with "
                         "`python -m ocr_core export CKPT --format onnx` or score its readings with "
                         "import-predictions")
    try:
        meta = json.loads(raw)
        head = head_from_dict(meta["head"])
        spec = InputSpec.from_dict(meta["input"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} has damaged PlateLens metadata ({exc}); export it again") from None
    model.eval()
    return LoadedModel(model, head, spec, str(meta.get("arch", "onnx")), {**meta, "backend": "onnxruntime"},
                       str(path))


def load_any_model(path: str | Path, fuse: bool = True) -> LoadedModel:
    """A PlateLens checkpoint (.pt) or an exported ONNX file (.onnx), ready to serve."""
    if Path(path).suffix.lower() == ".onnx":
        return load_onnx(path)
    return load_model(path, fuse=fuse)


def served_through_onnxruntime(checkpoint: str | Path, cache_dir: str | Path) -> LoadedModel:
    """A checkpoint served by onnxruntime: exported once (checked like ``export``) into ``cache_dir`` under
    a name from the checkpoint's content hash, then loaded from there.

    The first call pays the export (10-30 s on a CPU); the check uses random crops at the input size.
    """
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:20]
    target = Path(cache_dir) / f"{digest}.onnx"
    if not target.is_file():
        spec = load_model(checkpoint).input
        crops = np.random.default_rng(0).integers(0, 256, (8, spec.height, spec.width, 3), dtype=np.uint8)
        target.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(checkpoint, target, crops)
    loaded = load_onnx(target)
    loaded.path = str(checkpoint)
    return loaded


def export_onnx(checkpoint: str | Path, out: str | Path, crops: np.ndarray) -> ExportReport:
    """Export a checkpoint to ONNX with a dynamic batch axis and PlateLens metadata, checked before it is kept.

    ``crops`` (uint8, N x H x W x 3 at the model's input size; real crops where there are some) are read by
    both the PyTorch model and onnxruntime at every batch size of ``PARITY_BATCH_SIZES``; the file
    replaces ``out`` only when the logits agree to ``LOGIT_TOLERANCE`` and the decoded strings are equal.

    Raises:
        InputError: the export fails or does not match the checkpoint.
    """
    import onnx

    loaded = load_model(checkpoint)
    out = Path(out)
    sample = to_model_input(crops[:2], loaded.input)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with atomic_path(out) as tmp:
        exporter_log = logging.getLogger("torch.onnx")
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)  # it logs every skipped torchvision operator at WARNING
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(loaded.model, (sample,), dynamo=True, input_names=["images"],
                                            output_names=["logits"], dynamic_shapes=({0: batch},),
                                            verbose=False)
                program.save(str(tmp))
        except Exception as exc:  # noqa: BLE001 - the exporter fails in many ways on unsupported graphs
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InputError(f"cannot export {checkpoint} to ONNX ({first})") from None
        finally:
            exporter_log.setLevel(level)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(_metadata(loaded), ensure_ascii=False)
        onnx.save(proto, str(tmp))
        exported = load_onnx(tmp)
        worst, same = _parity(loaded, exported, crops)
        if worst > LOGIT_TOLERANCE or not same:
            raise InputError(f"the ONNX export of {checkpoint} does not match it (largest logit difference "
                             f"{worst:.2e}, same readings: {same}); it was not written")
    return ExportReport(out, len(crops), worst, same)


@torch.inference_mode()
def _parity(reference: LoadedModel, exported: LoadedModel, crops: np.ndarray) -> tuple[float, bool]:
    worst, same = 0.0, True
    for size in PARITY_BATCH_SIZES:
        for start in range(0, len(crops), size):
            x = to_model_input(crops[start:start + size], reference.input)
            expected, got = reference.model(x), exported.model(x)
            worst = max(worst, float((expected - got).abs().max()))
            a = reference.head.decode(reference.head.log_probs(expected))[0]
            b = exported.head.decode(exported.head.log_probs(got))[0]
            same &= a == b
    return worst, same
