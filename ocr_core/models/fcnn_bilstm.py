"""``fcnn_bilstm``: the FCNN + 2xBiLSTM model of seed notebook 000, with its module names kept.

The attribute names (``cnn.conv1`` ... ``cnn.fc``, ``rnn.0.rnn``, ``rnn.1.linear``) match the notebook's
``Model`` so that its ``state_dict`` loads unchanged (see ``ocr_core.checkpoint.import_seed000``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FcnnBiLSTMConfig:
    """Sequence length (FCNN output width) and LSTM hidden size (the notebook's pixels / 256 is the input spec)."""

    sequence_length: int = 16
    lstm_hidden: int = 256


class BiLSTM(nn.Module):
    """A bidirectional LSTM followed by a linear projection."""

    def __init__(self, n_channels: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_channels, n_hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(n_hidden * 2, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project the recurrent features of (N, T, C) input."""
        recurrent, _ = self.rnn(x)
        return self.linear(recurrent)


class FCNN(nn.Module):
    """Five conv stages from 3x32x128 down to 512x1x32, then Linear(32->256), ReLU, Linear(256->n_out) over width."""

    def __init__(self, n_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)))
        self.conv2 = nn.Sequential(nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2))
        self.conv3 = nn.Sequential(
            nn.Conv2d(128, 256, 3, 1, 1), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),
        )
        self.conv4 = nn.Sequential(
            nn.Conv2d(256, 512, 3, 1, 1), nn.BatchNorm2d(512), nn.ReLU(True),
            nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
        )
        self.conv5 = nn.Sequential(
            nn.Conv2d(512, 512, 3, 1, 1), nn.BatchNorm2d(512), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),
        )
        self.fc = nn.Sequential(nn.Flatten(2), nn.Linear(32, 256), nn.ReLU(True), nn.Linear(256, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, 512, n_out) for images (N, 3, 32, 128)."""
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        return self.fc(x)


class FcnnBiLSTM(nn.Module):
    """The seed-000 ``Model``: FCNN features over ``sequence_length`` steps, then two BiLSTMs."""

    def __init__(self, config: FcnnBiLSTMConfig, num_classes: int) -> None:
        super().__init__()
        self.alphabet_length = num_classes
        self.sequence_length = config.sequence_length
        self.cnn = FCNN(config.sequence_length)
        self.rnn = nn.Sequential(
            BiLSTM(512, config.lstm_hidden, config.lstm_hidden),
            BiLSTM(config.lstm_hidden, config.lstm_hidden, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, sequence_length, classes) for preprocessed images (N, 3, 32, 128)."""
        x = self.cnn(images).permute(0, 2, 1)
        return self.rnn(x)
