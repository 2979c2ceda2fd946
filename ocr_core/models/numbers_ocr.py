"""``cnn_fixed`` and ``cnn_lstm_fixed``: seed notebook 003's fixed-length readers with a province head.

A conv stack maps a 64x224 crop to 256 x 1 x 7: one feature column per plate character. Position 0
goes through ``hieroglyphs_cls`` (31 provinces), positions 1-6 through ``other_cls`` (35 letters and
digits); ``LSTMNumbersOCR`` puts a 2-layer BiLSTM(128) between the two. The attribute names
(``cnn_layers.N``, ``lstm``, ``hieroglyphs_cls``, ``other_cls``) are the notebook's Lightning modules',
so ``torch.save(model.state_dict(), 'lstm_model.pth')`` loads unchanged.

The notebook returned the two heads' logits separately; here they are stacked into one (N, 7, C_max)
tensor, the province row zero-padded to the wider head (``ocr_core.heads.FixedHead`` masks the padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NumbersOCRConfig:
    """Dropout of the conv stack (and between the LSTM layers) and the BiLSTM's size (LSTM variant only)."""

    dropout_p: float = 0.2
    lstm_hidden: int = 128
    lstm_layers: int = 2
    in_channels: int = 3


def _cnn_layers(in_channels: int, dropout_p: float) -> nn.Sequential:
    # Sizes for a 64x224 input in the comments; every pooling halves both sides, W/32 = 7 columns remain.
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Dropout2d(dropout_p),
        nn.MaxPool2d(2, 2),  # 32 x 112
        nn.Conv2d(32, 64, 3, padding=1, stride=(2, 1)), nn.BatchNorm2d(64), nn.ReLU(), nn.Dropout2d(dropout_p),
        nn.MaxPool2d(2, 2),  # 8 x 56
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.Dropout2d(dropout_p),
        nn.MaxPool2d(2, 2),  # 4 x 28
        nn.Conv2d(128, 256, 3, padding=1, stride=2), nn.ReLU(),  # 2 x 14
        nn.MaxPool2d(2, 2),  # 1 x 7
    )


def _head_sizes(output_classes: tuple[int, ...] | int) -> tuple[int, int, int]:
    """(positions, classes of position 0, classes of the others) of a fixed head's ``output_classes``."""
    if isinstance(output_classes, int) or len(output_classes) < 2:
        raise ValueError("seed 003's models read a fixed number of positions; give one class count per position")
    first, rest = int(output_classes[0]), {int(c) for c in output_classes[1:]}
    if len(rest) != 1:
        raise ValueError(f"positions 1.. share one head and need one class count, not {sorted(rest)}")
    return len(output_classes), first, rest.pop()


def _stack(first: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    width = max(first.shape[-1], tail.shape[-1])
    return torch.cat([F.pad(first, (0, width - first.shape[-1])), F.pad(tail, (0, width - tail.shape[-1]))], dim=1)


class SimpleNumbersOCR(nn.Module):
    """Seed 003's ``SimpleNumbersOCR``: (N, 3, 64, 224) -> logits (N, 7, max(first, other) classes)."""

    def __init__(self, config: NumbersOCRConfig, output_classes: tuple[int, ...]) -> None:
        super().__init__()
        self.positions, first, other = _head_sizes(output_classes)
        self.cnn_layers = _cnn_layers(config.in_channels, config.dropout_p)
        features = self._features(config)
        self.hieroglyphs_cls = nn.Linear(features, first)
        self.other_cls = nn.Linear(features, other)

    def _features(self, config: NumbersOCRConfig) -> int:  # the LSTM variant reads the config
        return 256

    def _sequence(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, positions, classes): row 0 from the province head, zero-padded to the wider head."""
        out = self.cnn_layers(images).squeeze(2).permute(0, 2, 1)
        if out.shape[1] != self.positions:
            raise ValueError(f"the conv stack gives {out.shape[1]} columns for this input width, "
                             f"the head reads {self.positions} positions (input width must be 32 x positions)")
        out = self._sequence(out)
        return _stack(self.hieroglyphs_cls(out[:, :1]), self.other_cls(out[:, 1:]))


class LSTMNumbersOCR(SimpleNumbersOCR):
    """Seed 003's ``LSTMNumbersOCR``: the same conv stack and heads with a BiLSTM over the 7 columns."""

    def __init__(self, config: NumbersOCRConfig, output_classes: tuple[int, ...]) -> None:
        super().__init__(config, output_classes)
        self.lstm = nn.LSTM(256, config.lstm_hidden, num_layers=config.lstm_layers, batch_first=True,
                            dropout=config.dropout_p if config.lstm_layers > 1 else 0.0, bidirectional=True)

    def _features(self, config: NumbersOCRConfig) -> int:
        return 2 * config.lstm_hidden

    def _sequence(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out
