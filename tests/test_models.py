"""Architectures and the inference-time fusion of batch norms into convolutions."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ocr_core.checkpoint import load_model, make_checkpoint, save_checkpoint
from ocr_core.models import ARCHITECTURES, arch_config, build_model, fuse_conv_batchnorm
from ocr_core.vocab import Vocab


def _trained_looking(arch: str, num_classes: int) -> nn.Module:
    """A model whose batch norms have non-trivial statistics, as after training (fresh ones are identities)."""
    torch.manual_seed(0)
    spec = ARCHITECTURES[arch]
    # Fixed heads take one class count per position (any equal counts fit every fixed arch).
    model = build_model(arch, num_classes if spec.head == "ctc" else (num_classes,) * spec.positions)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.3, 0.3)
    return model.eval()


# Seed 004's CRNNs put batch norms after a ReLU; those cannot be folded into the conv before them.
UNFOLDABLE_NORMS = {"crnn_shi": 2, "crnn_compact": 3, "crnn_fixed": 2}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_fusion_removes_every_batch_norm_and_keeps_the_logits(arch):
    model = _trained_looking(arch, 12)
    fused = fuse_conv_batchnorm(copy.deepcopy(model))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == UNFOLDABLE_NORMS.get(arch, 0)
    spec = ARCHITECTURES[arch].input
    images = torch.rand(4, spec.channels, spec.height, spec.width)
    with torch.inference_mode():
        expected, got = model(images), fused(images)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_fusion_refuses_a_model_in_training_mode():
    model = build_model("small", 12).train()
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_batchnorm(model)


def test_load_model_serves_the_fused_model_and_can_keep_the_stored_one(tmp_path):
    vocab = Vocab("0123456789AB")
    model = _trained_looking("small", vocab.num_classes)
    path = tmp_path / "m.pt"
    save_checkpoint(make_checkpoint(model, "small", arch_config("small"), vocab, (32, 128)), path)
    served, stored = load_model(path), load_model(path, fuse=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in served.model.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in stored.model.modules()) == 5
    images = torch.rand(3, 3, 32, 128)
    with torch.inference_mode():
        assert torch.allclose(served.model(images), stored.model(images), atol=1e-4, rtol=1e-4)
