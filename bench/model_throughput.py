"""Inference throughput of each architecture: forward passes on uint8 batches, median of several runs.

    python bench/model_throughput.py [--threads 2] [--batch-sizes 32,64,256] [--crops 1024] [--repeats 3] [--device cpu]

Each architecture is timed as the scorer serves it (batch norms folded into the convolutions, crops fed as
an NHWC view, channels_last on CUDA) and as stored in its checkpoint (not folded), at each batch size, on
the same random crops. The default CPU inference batch (``ocr_core.device.default_batch_size``) was
chosen from this table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from ocr_core.device import pick_device
from ocr_core.models import ARCHITECTURES, build_model, fuse_conv_batchnorm
from ocr_core.vocab import Vocab


def images_per_second(model: torch.nn.Module, crops: torch.Tensor, batch_size: int, device: torch.device,
                      repeats: int) -> float:
    """Median img/s over ``repeats`` passes through ``crops`` in batches of ``batch_size``."""
    batches = [crops[i:i + batch_size].permute(0, 3, 1, 2) for i in range(0, len(crops), batch_size)]
    if device.type == "cuda":
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    rates = []
    with torch.inference_mode():
        model(batches[0])  # warm-up: allocator and oneDNN kernel selection
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in batches:
                model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(len(crops) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    """Print one table row per architecture, model form and batch size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,64,256", help="comma-separated (default: 32,64,256)")
    parser.add_argument("--crops", type=int, default=1024, help="random crops per pass (default 1024)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes must be comma-separated integers, not {args.batch_sizes!r}")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(0)
    crops = torch.randint(0, 256, (args.crops, 32, 128, 3), dtype=torch.uint8, device=device)
    print(f"device={device} threads={args.threads} crops={args.crops} repeats={args.repeats} (median)")
    print(f"{'arch':<12} {'params':>10} {'model':<8} {'batch':>6} {'img/s':>8}")
    for arch in ARCHITECTURES:
        stored = build_model(arch, Vocab.preset("plates").num_classes).to(device).eval()
        params = sum(p.numel() for p in stored.parameters())
        served = fuse_conv_batchnorm(copy.deepcopy(stored))
        for form, model in (("served", served), ("stored", stored)):
            for batch_size in batch_sizes:
                rate = images_per_second(model, crops, batch_size, device, args.repeats)
                print(f"{arch:<12} {params:>10,} {form:<8} {batch_size:>6} {rate:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
