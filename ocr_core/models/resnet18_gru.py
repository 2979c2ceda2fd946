"""``resnet18_gru``: seed notebook 002's CRNN (a ResNet-18 trunk, a 1x1-conv projection over width, a GRU).

The notebook built its trunk as ``Sequential(*list(torchvision.models.resnet18().children())[:-2])``, so
its ``state_dict`` keys are positional (``features_extractor.cnn.0.weight`` is ResNet's ``conv1``,
``cnn.4`` ... ``cnn.7`` are ``layer1`` ... ``layer4``) while the blocks inside keep torchvision's names
(``conv1, bn1, conv2, bn2, downsample.0/.1``). The trunk below is written out by hand in that same
layout (torchvision does not import beside PlateLens' torch), so the notebook's weights load unchanged.
Nothing is ever downloaded: weights start random or come from a checkpoint.

The notebook read its crops with ``cv2.imread`` (BGR) and scaled them by 1/255 without mean/std;
``ocr_core.seed_import`` reverses the input channels of ``cnn.0`` so the model takes RGB like every other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class ResNet18GRUConfig:
    """The notebook's ``CRNN`` arguments: input size, output steps and the GRU's shape."""

    cnn_input_size: tuple[int, int] = (64, 320)  # (height, width): sizes the pool and the projection
    cnn_output_len: int = 20
    rnn_hidden_size: int = 128
    rnn_num_layers: int = 2
    rnn_dropout: float = 0.3
    rnn_bidirectional: bool = False
    in_channels: int = 3


class BasicBlock(nn.Module):
    """ResNet's two-conv residual block, with torchvision's attribute names."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1: nn.Module = nn.BatchNorm2d(planes)  # nn.Identity once folded (fuse_batchnorm)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(planes)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def fuse_batchnorm(self) -> None:
        """Fold the eval-mode batch norms into their convs (``ocr_core.models.fuse_conv_batchnorm`` calls this)."""
        for conv, norm in (("conv1", "bn1"), ("conv2", "bn2")):
            if isinstance(getattr(self, norm), nn.BatchNorm2d):
                setattr(self, conv, fuse_conv_bn_eval(getattr(self, conv), getattr(self, norm)))
                setattr(self, norm, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def resnet18_trunk(in_channels: int = 3) -> nn.Sequential:
    """ResNet-18 without its pooling and fully connected layer: stride 32, 512 output channels.

    Positional children (0 conv1, 1 bn1, 2 relu, 3 maxpool, 4-7 layer1-4), as the notebook's slice of
    torchvision's model has them.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inplanes = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
        inplanes = planes
    trunk = nn.Sequential(*layers)
    # torchvision's ResNet starts from He-normal convolutions (fan out) and identity batch norms.
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return trunk


class FeatureExtractor(nn.Module):
    """Trunk, average pool over the remaining height, then a 1x1 conv that maps W/32 columns to ``output_len``."""

    def __init__(self, input_size: tuple[int, int] = (64, 320), output_len: int = 20, in_channels: int = 3) -> None:
        super().__init__()
        h, w = input_size
        self.cnn = resnet18_trunk(in_channels)
        self.pool = nn.AvgPool2d(kernel_size=(h // 32, 1))
        self.proj = nn.Conv2d(w // 32, output_len, kernel_size=1)
        self.num_output_features = 512

    def apply_projection(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 1, W) -> (N, 1, C, output_len): the columns become the conv's channels."""
        x = x.permute(0, 3, 2, 1)  # N, W, 1, C
        x = self.proj(x)  # N, output_len, 1, C
        return x.permute(0, 2, 3, 1)  # N, 1, C, output_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, 1, 512, output_len) of preprocessed images."""
        features = self.cnn(x)
        rows = self.pool.kernel_size[0] if isinstance(self.pool.kernel_size, tuple) else self.pool.kernel_size
        if features.shape[2] // rows != 1 or features.shape[3] != self.proj.in_channels:
            # The pool and the projection are sized for one input size (cnn_input_size), as in the notebook.
            raise ValueError(f"resnet18_gru was built for {32 * self.proj.in_channels} px wide inputs "
                             f"{32 * rows} px high (cnn_input_size), not {x.shape[2]}x{x.shape[3]}")
        return self.apply_projection(self.pool(features))


class SequencePredictor(nn.Module):
    """A (time-major) GRU over the projected columns, then a linear layer per step."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, num_classes: int, dropout: float = 0.3,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.rnn = nn.GRU(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                          dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        self.fc = nn.Linear(2 * hidden_size if bidirectional else hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (T, N, classes) for features (N, 1, C, T); the hidden state starts at zero as in the notebook."""
        x = x.squeeze(1).permute(2, 0, 1)  # T, N, C
        x, _ = self.rnn(x)
        return self.fc(x)


class ResNet18GRU(nn.Module):
    """Seed 002's ``CRNN``: (N, 3, 64, 320) -> logits (N, cnn_output_len, classes)."""

    def __init__(self, config: ResNet18GRUConfig, num_classes: int) -> None:
        super().__init__()
        if not isinstance(num_classes, int):
            raise TypeError("resnet18_gru is a CTC model; it needs an int number of output classes")
        height, width = config.cnn_input_size
        self.features_extractor = FeatureExtractor((height, width), config.cnn_output_len, config.in_channels)
        self.sequence_predictor = SequencePredictor(self.features_extractor.num_output_features,
                                                    config.rnn_hidden_size, config.rnn_num_layers, num_classes,
                                                    config.rnn_dropout, config.rnn_bidirectional)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, T, classes); the notebook returned (T, N, classes)."""
        return self.sequence_predictor(self.features_extractor(images)).transpose(0, 1)
