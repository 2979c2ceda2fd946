"""Inference-time rewrites of a model that keep its outputs (up to float rounding) and make it faster."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fuse_conv_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode ``BatchNorm2d`` that follows a ``Conv2d`` in an ``nn.Sequential`` into the conv.

    Blocks that apply a batch norm to a conv's output outside a ``Sequential`` (ResNet blocks) fold their
    own pairs in a ``fuse_batchnorm()`` method, which is called too. Batch norms after an activation (seed
    004's CRNNs) stay: they cannot be folded into the conv before them.

    The model is changed in place and returned. Its logits stay the same to about 1e-4, while a CPU
    forward pass of the ``small`` CRNN gets 7-17% faster (batch 64 to 256; ``bench/model_throughput.py``
    and the C0 row of ``bench/score_throughput.py``): at a batch of 256, batch norm was its second-largest
    cost after the convolutions. The state dict changes shape (the norms become ``nn.Identity``), so only
    do this to a model that is served, never to one that is trained or saved.

    Raises:
        ValueError: the model is in training mode, where batch norm uses batch statistics.
    """
    if model.training:
        raise ValueError("fuse_conv_batchnorm needs a model in eval mode; call model.eval() first")
    for module in list(model.modules()):
        fuse = getattr(module, "fuse_batchnorm", None)
        if callable(fuse):
            fuse()
    for block in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(block) - 1):
            conv, norm = block[i], block[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                block[i] = fuse_conv_bn_eval(conv, norm)
                block[i + 1] = nn.Identity()
    return model
