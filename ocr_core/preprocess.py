"""Input settings that travel with a model, and the one function that applies them.

Datasets keep crops as RGB uint8 at the model's height and width (decoding is the slow part, so it is
done once). ``to_model_input`` turns a batch of such crops into what the model was trained on: grey or
colour, then ``(pixel * scale - mean) / std`` per channel. Training, scoring, the augmentation lab and
the heatmap all go through it, so no model divides by 255 inside ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

RESIZE_MODES = ("stretch",)
# How a crop smaller than the input is enlarged (shrinking is always area averaging). "cubic" sharpens a little:
# the demo, trained on crops sharper than real ones, reads the 297 real CCPD crops better with it (README
# "Real plates: the province glyph"); every checkpoint so far, the demo too, was trained with "linear".
UPSCALE_MODES = ("linear", "cubic")
# ITU-R 601 luma in Pillow's fixed point (convert("L")): (r*19595 + g*38470 + b*7471 + 32768) >> 16, equal
# to Pillow on all 16.7M colours. Grey models of the seeds read 0-255 unscaled, where one level moves the logits.
_LUMA_FIXED = (19595, 38470, 7471)
MIN_SIDE, MAX_SIDE = 8, 1024


@dataclass(frozen=True)
class InputSpec:
    """Channels (1 grey, 3 RGB), size, resize mode, per-channel normalization and the interpolation that
    enlarges small crops (``upscale``) of a model's input."""

    channels: int = 3
    height: int = 32
    width: int = 128
    resize: str = "stretch"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    upscale: str = "linear"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"input channels must be 1 or 3, not {self.channels!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIDE <= value <= MAX_SIDE:
                raise ValueError(f"input {name} must be an integer from {MIN_SIDE} to {MAX_SIDE}, not {value!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; choose one of {', '.join(RESIZE_MODES)}")
        if self.upscale not in UPSCALE_MODES:
            raise ValueError(f"unknown upscale mode {self.upscale!r}; choose one of {', '.join(UPSCALE_MODES)}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"input scale must be a positive number, not {self.scale!r}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels) or not all(
                    isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ValueError(f"input {name} must be 1 or {self.channels} finite numbers, not {values!r}")
        if any(v <= 0 for v in self.std):
            raise ValueError(f"input std must be positive, not {self.std!r}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), the size datasets are decoded to."""
        return self.height, self.width

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint metadata (lists, not tuples, so that it stays a plain weights-only dict)."""
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """The spec stored by ``to_dict``.

        Raises:
            ValueError: a missing, unknown or out-of-range field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"input settings must be a dict, not {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"input settings have unknown keys {sorted(unknown)}")
        values = dict(data)
        for name in ("mean", "std"):
            if name in values:
                if not isinstance(values[name], (list, tuple)):
                    raise ValueError(f"input {name} must be a list of numbers")
                values[name] = tuple(float(v) for v in values[name])
        return cls(**values)

    def with_size(self, height: int, width: int) -> InputSpec:
        """The same settings at another size."""
        return replace(self, height=height, width=width)


def to_model_input(images: np.ndarray | torch.Tensor, spec: InputSpec, device: torch.device | None = None,
                   channels_last: bool = False) -> torch.Tensor:
    """Float (N, C, H, W) model input for uint8 crops (N, H, W, 3) already at ``spec.size``."""
    batch = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if device is not None and device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    elif device is not None:
        batch = batch.to(device)
    if spec.channels == 1:
        weights = torch.tensor(_LUMA_FIXED, dtype=torch.int32, device=batch.device)
        grey = ((batch.to(torch.int32) * weights).sum(dim=-1, keepdim=True) + 32768) >> 16
        # (N, H, W, 1) -> (N, 1, H, W) with plain strides: a permuted view has the same shape, but oneDNN
        # then picks other convolution kernels, whose rounding differs by 2e-4 on 0-255 inputs.
        x = grey.squeeze(-1).unsqueeze(1).float()
    else:
        x = batch.permute(0, 3, 1, 2).float()
    x = x * spec.scale
    if any(spec.mean) or any(s != 1.0 for s in spec.std):
        x = (x - _per_channel(spec.mean, x)) / _per_channel(spec.std, x)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _per_channel(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def preview(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An RGB uint8 crop as the model sees it, for display: grey models get grey previews."""
    if spec.channels == 3:
        return image
    grey = ((image.astype(np.int32) @ np.asarray(_LUMA_FIXED, np.int32) + 32768) >> 16).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
