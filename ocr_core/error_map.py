"""An error map: every crop embedded by the model's own features, projected to 2-D.

The features are what the model's output layer reads (the input of its last ``nn.Linear``: the sequence
encoder's output for the CRNNs), averaged over time steps or positions. PCA (an SVD of the centred
features) projects them to two axes: crops the model sees alike lie together, so clusters of errors show
where it fails alike. Selections are geometric (a box or a lasso polygon) and apply to every row, also
where the drawing shows a sample of the points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ocr_core.checkpoint import LoadedModel
from ocr_core.device import default_batch_size
from ocr_core.errors import InputError
from ocr_core.preprocess import to_model_input


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError("this model has no linear output layer to read features from; the error map needs "
                         "a PlateLens checkpoint (.pt) of a registered architecture")
    return linears[-1]


@torch.inference_mode()
def features(loaded: LoadedModel, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """(N, D) float32: the input of the model's last linear layer for each crop, averaged over steps.

    Raises:
        InputError: the model has no linear layer (an ONNX file, say).
    """
    layer = _last_linear(loaded.model)
    device = next(loaded.model.parameters()).device
    batch_size = batch_size or default_batch_size(device, inference=True)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach()))
    out = []
    try:
        for start in range(0, len(images), batch_size):
            captured.clear()
            loaded.model(to_model_input(images[start:start + batch_size], loaded.input, device))
            x = captured[-1].float()
            out.append((x.mean(dim=1) if x.dim() == 3 else x).cpu().numpy())
    finally:
        hook.remove()
    return np.concatenate(out) if out else np.zeros((0, layer.in_features), np.float32)


def project(feats: np.ndarray) -> np.ndarray:
    """PCA to two axes: (N, 2) float32 (zeros when there are fewer than two crops)."""
    if len(feats) < 2:
        return np.zeros((len(feats), 2), np.float32)
    centred = feats - feats.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:2].T).astype(np.float32)


def in_box(points: np.ndarray, x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Which points lie inside the box spanned by the x and y ranges."""
    return ((points[:, 0] >= min(x)) & (points[:, 0] <= max(x)) & (points[:, 1] >= min(y)) & (points[:, 1] <= max(y)))


def in_polygon(points: np.ndarray, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Which points lie inside the polygon with vertices (xs, ys) (even-odd rule)."""
    inside = np.zeros(len(points), bool)
    px, py = points[:, 0], points[:, 1]
    n = len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        crosses = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (x2 - x1) * (py - y1) / (y2 - y1) + x1
        inside ^= crosses & (px < at)
    return inside
