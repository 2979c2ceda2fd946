"""Architectures by name. A model maps uint8-valued images (N, 3, H, W) to logits (N, T, classes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from torch import nn

from ocr_core.models.crnn_small import SmallCRNN, SmallCRNNConfig
from ocr_core.models.fcnn_bilstm import FcnnBiLSTM, FcnnBiLSTMConfig

DEFAULT_ARCH = "small"

ARCHITECTURES: dict[str, tuple[type, Callable[[Any, int], nn.Module]]] = {
    "small": (SmallCRNNConfig, SmallCRNN),
    "fcnn_bilstm": (FcnnBiLSTMConfig, FcnnBiLSTM),
}


def arch_config(arch: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full config dict of an architecture: its defaults updated by ``overrides``.

    Raises:
        ValueError: unknown architecture or config key.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    config_cls, _ = ARCHITECTURES[arch]
    known = {f.name for f in fields(config_cls)}
    unknown = set(overrides or {}) - known
    if unknown:
        raise ValueError(f"architecture {arch!r} has no config keys {sorted(unknown)}")
    config = config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()})
    return asdict(config)


def build_model(arch: str, num_classes: int, config: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate architecture ``arch`` with ``num_classes`` outputs (CTC blank included)."""
    full = arch_config(arch, config)
    config_cls, factory = ARCHITECTURES[arch]
    return factory(config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in full.items()}), num_classes)
