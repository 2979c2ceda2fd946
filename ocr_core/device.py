"""Device choice: CUDA, then Apple MPS, then CPU, and the settings that go with each."""

from __future__ import annotations

import torch

from ocr_core.errors import InputError


def pick_device(preference: str = "auto") -> torch.device:
    """The device for ``preference`` (``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``).

    Raises:
        InputError: the requested device is not available here.
    """
    preference = (preference or "auto").lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise InputError(f"unknown device {preference!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {preference} was requested but this torch build sees no CUDA GPU; use --device auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {preference} was requested but MPS is not available; use --device auto")
    return device


def describe_device(device: torch.device) -> str:
    """A short human name: the GPU model, or ``CPU (N threads)``."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def default_batch_size(device: torch.device, inference: bool) -> int:
    """A batch size that keeps the device busy: larger on GPUs; for CPU inference, the size measured fastest."""
    if device.type == "cuda":
        return 1024 if inference else 256
    if device.type == "cpu" and inference:
        # On 2 cores a batch of 64 runs the small CRNN 1.2-1.4x faster than 256 (bench/model_throughput.py),
        # likely because its activations stay in cache: after the first conv, 256 crops take 100 MB.
        return 64
    return 256 if inference else 128


def uses_amp(device: torch.device) -> bool:
    """Mixed precision and channels_last pay off on CUDA only."""
    return device.type == "cuda"
