"""``crnn_shi``, ``crnn_compact`` and ``crnn_fixed``: seed notebook 004's three captcha readers.

- ``CRNN`` (``crnn_shi``): after Shi et al.'s CRNN, 512 channels, a 2-layer BiLSTM(256); 32x100 -> 24 steps.
- ``ModifiedCRNN`` (``crnn_compact``): strided convs instead of late max pools, 256 channels; 32x176 -> 10 steps.
- ``CECRNN`` (``crnn_fixed``): (3, 5) kernels that leave exactly 5 columns of a 32x128 crop, one per
  captcha character, trained with cross-entropy.

All three take grey crops with pixel values 0-255 as they are (the notebook never scaled them) and keep
the notebook's ``conv_layers.N``, ``rec_layers`` and ``clf_layer`` names, so its ``state_dict`` loads
unchanged. The notebook numbered characters from 1 (``enumerate(CHARS, start=1)``) for both losses, so
output 0 is the CTC blank of the first two and a class that cross-entropy never targets in ``CECRNN``;
``CECRNN`` keeps that column (``reserved_first_class``) so the weights load, and drops it from its logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CaptchaCRNNConfig:
    """Input channels and the BiLSTM's hidden size (the conv stacks are the notebook's, fixed)."""

    in_channels: int = 1
    rnn_hidden_size: int = 256


@dataclass(frozen=True)
class CECRNNConfig:
    """Like :class:`CaptchaCRNNConfig`, plus the notebook's unused output 0 and its LSTM dropout."""

    in_channels: int = 1
    rnn_hidden_size: int = 256
    rnn_dropout: float = 0.2
    reserved_first_class: bool = True  # output 0 exists but is never read (labels started at 1)


def _conv(cin: int, cout: int, kernel: int | tuple[int, int] = 3, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding)


class _SequenceReader(nn.Module):
    """Conv stack to (N, C, 1, T), a time-major 2-layer BiLSTM, a linear layer per step."""

    conv_layers: nn.Sequential

    def _recurrent(self, channels: int, hidden: int, classes: int, dropout: float = 0.0) -> None:
        self.rec_layers = nn.LSTM(channels, hidden, bidirectional=True, num_layers=2, dropout=dropout)
        self.clf_layer = nn.Linear(2 * hidden, classes)

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv_layers(images)
        n, c, h, w = x.shape
        # The notebook concatenated channels and rows per column; its LSTM input size assumes one row.
        x = x.reshape(n, c * h, w).permute(2, 0, 1)
        x, _ = self.rec_layers(x)
        return self.clf_layer(x).transpose(0, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, classes) for grey images (N, 1, 32, W); the notebook returned (T, N, classes)."""
        return self._logits(images)


def _ctc_classes(num_classes: int | tuple[int, ...], name: str) -> int:
    if not isinstance(num_classes, int):
        raise TypeError(f"{name} is a CTC model; it needs an int number of output classes")
    return num_classes


class CaptchaCRNN(_SequenceReader):
    """Seed 004's ``CRNN``: 32xW -> W/4 - 1 steps (24 for the notebook's 100)."""

    def __init__(self, config: CaptchaCRNNConfig, num_classes: int) -> None:
        super().__init__()
        classes = _ctc_classes(num_classes, "crnn_shi")
        self.conv_layers = nn.Sequential(
            _conv(config.in_channels, 64), nn.MaxPool2d(2, 2), nn.ReLU(),  # 16 x W/2
            _conv(64, 128), nn.MaxPool2d(2, 2), nn.ReLU(),  # 8 x W/4
            _conv(128, 256), nn.ReLU(),
            _conv(256, 256), nn.MaxPool2d(kernel_size=(2, 1)), nn.ReLU(),  # 4 x W/4
            _conv(256, 512), nn.ReLU(),
            nn.BatchNorm2d(512),
            _conv(512, 512), nn.ReLU(),
            nn.BatchNorm2d(512),
            nn.MaxPool2d(kernel_size=(2, 1)),  # 2 x W/4
            _conv(512, 512, kernel=2, padding=0),  # 1 x W/4 - 1
        )
        self._recurrent(512, config.rnn_hidden_size, classes)


class ModifiedCRNN(_SequenceReader):
    """Seed 004's ``ModifiedCRNN``: 32xW -> W/16 - 1 steps (10 for the notebook's 176)."""

    def __init__(self, config: CaptchaCRNNConfig, num_classes: int) -> None:
        super().__init__()
        classes = _ctc_classes(num_classes, "crnn_compact")
        self.conv_layers = nn.Sequential(
            _conv(config.in_channels, 64), nn.MaxPool2d(2, 2), nn.ReLU(),  # 16 x 88
            _conv(64, 128, stride=2), nn.ReLU(),  # 8 x 44
            nn.BatchNorm2d(128),
            _conv(128, 256, stride=2), nn.ReLU(),  # 4 x 22
            nn.BatchNorm2d(256),
            _conv(256, 256, stride=2), nn.ReLU(),  # 2 x 11
            nn.BatchNorm2d(256),
            _conv(256, 256, kernel=2, padding=0),  # 1 x 10
        )
        self._recurrent(256, config.rnn_hidden_size, classes)


class CECRNN(_SequenceReader):
    """Seed 004's ``CECRNN``: 32x128 -> 5 positions, one class distribution each."""

    def __init__(self, config: CECRNNConfig, output_classes: tuple[int, ...]) -> None:
        super().__init__()
        if isinstance(output_classes, int) or len(set(output_classes)) != 1:
            raise ValueError("crnn_fixed reads every position from one head; give one equal class count per position")
        self.positions = len(output_classes)
        self.reserved = int(config.reserved_first_class)
        self.conv_layers = nn.Sequential(
            _conv(config.in_channels, 64), nn.MaxPool2d(2, 2), nn.ReLU(),  # 16 x 64
            _conv(64, 128), nn.MaxPool2d(2, 2), nn.ReLU(),  # 8 x 32
            _conv(128, 256), nn.MaxPool2d(kernel_size=2), nn.ReLU(),  # 4 x 16
            _conv(256, 512, kernel=(3, 5)), nn.ReLU(),  # 4 x 14
            nn.BatchNorm2d(512),
            _conv(512, 512, kernel=(3, 5)), nn.ReLU(),  # 4 x 12
            nn.BatchNorm2d(512),
            nn.MaxPool2d(kernel_size=2),  # 2 x 6
            _conv(512, 512, kernel=2, padding=0),  # 1 x 5
        )
        self._recurrent(512, config.rnn_hidden_size, output_classes[0] + self.reserved, config.rnn_dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 5, classes) without the never-targeted output 0."""
        logits = self._logits(images)
        if logits.shape[1] != self.positions:
            raise ValueError(f"the conv stack gives {logits.shape[1]} columns for this input width, "
                             f"the head reads {self.positions} positions")
        return logits[..., self.reserved:]
