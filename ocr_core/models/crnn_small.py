"""``small``: the default CPU-friendly CRNN (a narrow VGG-style CNN, then one BiLSTM, then CTC logits)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SmallCRNNConfig:
    """Channel widths of the four conv stages and the BiLSTM hidden size."""

    channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    rnn_hidden: int = 128
    dropout: float = 0.1


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCRNN(nn.Module):
    """32x128 input -> 32 time steps. Pooling halves the width only twice, so CTC has 4 steps per character."""

    def __init__(self, config: SmallCRNNConfig, num_classes: int) -> None:
        super().__init__()
        c1, c2, c3, c4 = config.channels
        self.cnn = nn.Sequential(
            *_conv_bn(3, c1),
            nn.MaxPool2d(2, 2),  # 16 x 64
            *_conv_bn(c1, c2),
            nn.MaxPool2d(2, 2),  # 8 x 32
            *_conv_bn(c2, c3),
            *_conv_bn(c3, c3),
            nn.MaxPool2d((2, 1), (2, 1)),  # 4 x 32
            *_conv_bn(c3, c4),
            nn.MaxPool2d((2, 1), (2, 1)),  # 2 x 32
        )
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.LSTM(c4 * 2, config.rnn_hidden, bidirectional=True, batch_first=True)
        self.head = nn.Linear(config.rnn_hidden * 2, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, classes) for preprocessed images (N, 3, H, W) (``ocr_core.preprocess``)."""
        x = self.cnn(images)
        n, c, h, w = x.shape
        x = x.permute(0, 3, 1, 2).reshape(n, w, c * h)
        x, _ = self.rnn(self.dropout(x))
        return self.head(self.dropout(x))
