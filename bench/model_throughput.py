"""Inference throughput of each architecture: forward pass on uint8 batches, median of several runs.

    python bench/model_throughput.py [--threads 2] [--batch-size 256] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ocr_core.device import pick_device
from ocr_core.models import ARCHITECTURES, build_model
from ocr_core.vocab import Vocab


def images_per_second(arch: str, device: torch.device, batch_size: int, repeats: int) -> tuple[float, int]:
    """Median img/s of the forward pass and the parameter count."""
    model = build_model(arch, Vocab.preset("plates").num_classes).to(device).eval()
    batch = torch.randint(0, 256, (batch_size, 3, 32, 128), dtype=torch.uint8, device=device)
    rates = []
    with torch.inference_mode():
        model(batch)  # warm-up: allocator and oneDNN kernel selection
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(batch_size / (time.perf_counter() - start))
    return statistics.median(rates), sum(p.numel() for p in model.parameters())


def main() -> None:
    """Print one table row per architecture."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device={device} threads={args.threads} batch={args.batch_size} repeats={args.repeats}")
    print(f"{'arch':<12} {'params':>10} {'img/s':>10}")
    for arch in ARCHITECTURES:
        rate, params = images_per_second(arch, device, args.batch_size, args.repeats)
        print(f"{arch:<12} {params:>10,} {rate:>10.0f}")


if __name__ == "__main__":
    main()
