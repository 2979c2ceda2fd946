"""Architectures by name: a config dataclass, a factory, the head family and the default input settings.

A model maps preprocessed float images (N, C, H, W) (see ``ocr_core.preprocess``) to logits (N, T, classes).
Its factory is called with the config and the head's ``output_classes``: an int (CTC: every output
column) or a tuple with one class count per position (fixed heads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import nn

from ocr_core.models.captcha_crnn import CECRNN, CaptchaCRNN, CaptchaCRNNConfig, CECRNNConfig, ModifiedCRNN
from ocr_core.models.crnn_small import SmallCRNN, SmallCRNNConfig
from ocr_core.models.fcnn_bilstm import FcnnBiLSTM, FcnnBiLSTMConfig
from ocr_core.models.numbers_ocr import LSTMNumbersOCR, NumbersOCRConfig, SimpleNumbersOCR
from ocr_core.models.resnet18_gru import ResNet18GRU, ResNet18GRUConfig
from ocr_core.models.resnet_bilstm import ResNetBiLSTM, ResNetBiLSTMConfig
from ocr_core.preprocess import InputSpec

DEFAULT_ARCH = "small"
# ImageNet statistics, which seed 003's albumentations Normalize() applies by default.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ArchSpec:
    """Everything the registry knows of an architecture."""

    config_cls: type
    factory: Callable[[Any, Any], nn.Module]
    head: str  # "ctc" or "fixed"
    input: InputSpec
    description: str
    seed: str = ""  # the seed notebook it comes from, "" for PlateLens' own
    positions: int = 0  # fixed heads: number of positions (0: from the labels)
    separate_first: bool = False  # fixed heads: position 0 has its own class set (province head)


ARCHITECTURES: dict[str, ArchSpec] = {
    "small": ArchSpec(SmallCRNNConfig, SmallCRNN, "ctc", InputSpec(3, 32, 128),
                      "PlateLens' default: a narrow VGG-style CNN and one BiLSTM; fast on a CPU"),
    "fcnn_bilstm": ArchSpec(FcnnBiLSTMConfig, FcnnBiLSTM, "ctc", InputSpec(3, 32, 128, scale=1 / 256),
                            "seed 000: five conv stages, a linear map over width, two BiLSTMs", seed="000"),
    # The seed notebooks' models; each input spec is what its notebook fed (see ocr_core.seed_import).
    "resnet_bilstm": ArchSpec(ResNetBiLSTMConfig, ResNetBiLSTM, "ctc", InputSpec(3, 32, 128, scale=1 / 255),
                              "seed 001: ResNet blocks to 1024 channels, 256 pooled steps, 3 BiLSTMs; large",
                              seed="001"),
    "resnet18_gru": ArchSpec(ResNet18GRUConfig, ResNet18GRU, "ctc", InputSpec(3, 64, 320, scale=1 / 255),
                             "seed 002: ResNet-18 trunk, 1x1 conv from 10 to 20 columns, 2-layer GRU",
                             seed="002"),
    "cnn_fixed": ArchSpec(NumbersOCRConfig, SimpleNumbersOCR, "fixed",
                          InputSpec(3, 64, 224, scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD),
                          "seed 003: four conv blocks to 7 columns, a province head and a letter/digit head",
                          seed="003", positions=7, separate_first=True),
    "cnn_lstm_fixed": ArchSpec(NumbersOCRConfig, LSTMNumbersOCR, "fixed",
                               InputSpec(3, 64, 224, scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD),
                               "seed 003: the cnn_fixed conv stack plus a 2-layer BiLSTM before the two heads",
                               seed="003", positions=7, separate_first=True),
    "crnn_shi": ArchSpec(CaptchaCRNNConfig, CaptchaCRNN, "ctc", InputSpec(1, 32, 100, scale=1.0),
                         "seed 004: Shi et al.'s CRNN on grey 0-255 pixels, 512 channels, 2 BiLSTMs",
                         seed="004"),
    "crnn_compact": ArchSpec(CaptchaCRNNConfig, ModifiedCRNN, "ctc", InputSpec(1, 32, 176, scale=1.0),
                             "seed 004: strided-conv CRNN on grey 0-255 pixels, 256 channels, 10 steps",
                             seed="004"),
    "crnn_fixed": ArchSpec(CECRNNConfig, CECRNN, "fixed", InputSpec(1, 32, 128, scale=1.0),
                           "seed 004: CRNN narrowed to 5 columns, one cross-entropy position each",
                           seed="004", positions=5),
}


def arch_spec(arch: str) -> ArchSpec:
    """The registry entry of ``arch``.

    Raises:
        ValueError: unknown architecture.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def _config(config_cls: type, values: dict[str, Any]) -> Any:
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def arch_config(arch: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full config dict of an architecture: its defaults updated by ``overrides``.

    Raises:
        ValueError: unknown architecture or config key.
    """
    config_cls = arch_spec(arch).config_cls
    known = {f.name for f in fields(config_cls)}
    unknown = set(overrides or {}) - known
    if unknown:
        raise ValueError(f"architecture {arch!r} has no config keys {sorted(unknown)}")
    return asdict(_config(config_cls, dict(overrides or {})))


def build_model(arch: str, output_classes: int | tuple[int, ...], config: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate ``arch`` for a head's ``output_classes`` (CTC: an int, blank included; fixed: per position)."""
    spec = arch_spec(arch)
    return spec.factory(_config(spec.config_cls, arch_config(arch, config)), output_classes)
