"""``resnet_bilstm``: seed notebook 001's CRNN (ResNet blocks, a 3-layer BiLSTM, a two-layer classifier).

The attribute names (``feature_extractor.start``, ``feature_extractor.blocks1`` ... ``blocks5``,
``bilstm.lstm``, ``classifier.0`` / ``classifier.3``) are the notebook's, so a ``state_dict`` saved from
its ``CRNN`` loads unchanged (``ocr_core.seed_import``). The notebook's token layout is blank 0, OOV 1,
PAD 2 and characters from 3: ``CTCHead(chars, blank=0, first=3)``.

The notebook's feature map is 1024 x 1 x 4 for a 32x128 crop; ``AdaptiveAvgPool2d((256, 256))`` applied to
the (C*H, W) view averages channels 1024 -> 256 and *repeats* the 4 columns to 256 time steps, so the
BiLSTM sees 256 steps of which each run of 64 starts from the same feature. That is kept as it is: the
weights were trained on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class ResNetBiLSTMConfig:
    """The notebook's sizes: stage widths, blocks per stage, pooled feature/step count, BiLSTM size."""

    widths: tuple[int, int, int, int, int] = (64, 128, 256, 512, 1024)
    blocks_per_stage: int = 2  # the notebook's ``num_layers``: same-width blocks after each stage's first
    time_feature_count: int = 256  # pooled features per step and number of steps (the notebook uses one number)
    lstm_hidden: int = 256
    lstm_layers: int = 3
    dropout: float = 0.15
    in_channels: int = 3


class ResNetBlock(nn.Module):
    """Conv-BN-dropout with a residual (a strided 1x1 conv where the width changes), then LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, dropout: float = 0.15) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)  # nn.Identity once folded (fuse_batchnorm)
        self.relu = nn.LeakyReLU()
        self.dropout = nn.Dropout(dropout)
        # The notebook always strides this shortcut by 2, also in the stem where it is never used;
        # it stays so that the stem's unused weights still load.
        self.downsample: nn.Conv2d | None = None
        if in_channels != out_channels:
            self.downsample = nn.Conv2d(in_channels, out_channels, 1, stride=2)

    def fuse_batchnorm(self) -> None:
        """Fold the eval-mode batch norm into the conv (``ocr_core.models.fuse_conv_batchnorm`` calls this)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = nn.Identity()

    def forward(self, x: torch.Tensor, identity: bool = True) -> torch.Tensor:
        """The block's output; ``identity=False`` (the stem) skips the residual."""
        out = self.dropout(self.bn(self.conv(x)))
        if not identity:
            return self.relu(out)
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(out + x)


class CNN(nn.Module):
    """A 7x7 stem block, a max pool and five stages of ResNet blocks (each but the first halves H and W)."""

    def __init__(self, config: ResNetBiLSTMConfig) -> None:
        super().__init__()
        w = config.widths
        if len(w) != 5 or any(a == b for a, b in pairwise(w)):
            # A stage's first block strides by 2 and only has a (strided) shortcut when its width changes.
            raise ValueError(f"resnet_bilstm needs 5 stage widths, each different from the one before, not {list(w)}")
        self.start = ResNetBlock(config.in_channels, w[0], 7, 1, 0, 0.0)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.blocks1 = nn.ModuleList([ResNetBlock(w[0], w[0], padding=1, dropout=config.dropout)
                                      for _ in range(config.blocks_per_stage)])
        for stage in range(2, 6):
            cin, cout = w[stage - 2], w[stage - 1]
            blocks = [ResNetBlock(cin, cout, padding=1, stride=2, dropout=config.dropout)]
            blocks += [ResNetBlock(cout, cout, padding=1, dropout=config.dropout)
                       for _ in range(config.blocks_per_stage)]
            setattr(self, f"blocks{stage}", nn.ModuleList(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, widths[-1], H/32, W/32) of preprocessed images."""
        out = self.maxpool(self.start(x, identity=False))
        for stage in range(1, 6):
            for block in getattr(self, f"blocks{stage}"):
                out = block(out)
        return out


class BiLSTM(nn.Module):
    """A batch-first bidirectional multi-layer LSTM that returns its output sequence."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0,
                            batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, 2 * hidden) for (N, T, input_size)."""
        out, _ = self.lstm(x)
        return out


def _notebook_init(module: nn.Module) -> None:
    # The notebook trained from Xavier-uniform weights (biases 0.01) and N(1, 0.02) batch-norm scales.
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv1d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0.01)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ResNetBiLSTM(nn.Module):
    """Seed 001's ``CRNN``: (N, C, 32, 128) -> logits (N, time_feature_count, classes)."""

    def __init__(self, config: ResNetBiLSTMConfig, num_classes: int) -> None:
        super().__init__()
        if not isinstance(num_classes, int):
            raise TypeError("resnet_bilstm is a CTC model; it needs an int number of output classes")
        t = config.time_feature_count
        self.feature_extractor = CNN(config)
        self.avg_pool = nn.AdaptiveAvgPool2d((t, t))
        self.bilstm = BiLSTM(t, config.lstm_hidden, config.lstm_layers, dropout=config.dropout)
        self.classifier = nn.Sequential(
            nn.Linear(config.lstm_hidden * 2, t),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(t, num_classes),
        )
        self.apply(_notebook_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, classes); the notebook returned their log-softmax as (T, N, classes)."""
        x = self.feature_extractor(images)
        n, c, h, w = x.shape
        # A 3-D input makes AdaptiveAvgPool2d treat N as channels and pool the (C*H, W) plane, as the notebook did.
        x = self.avg_pool(x.reshape(n, c * h, w)).transpose(1, 2)
        return self.classifier(self.bilstm(x))
