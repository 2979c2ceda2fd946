"""Inference throughput of each architecture: preprocessing plus forward passes, median of several runs.

    python bench/model_throughput.py [--threads 2] [--batch-sizes 32,64,256] [--crops 1024] [--repeats 3]
                                     [--device cpu] [--archs small,crnn_shi] [--forms served,stored]

Each architecture is timed as the scorer serves it (batch norms folded into the convolutions,
channels_last on CUDA) and as stored in its checkpoint (not folded), at each batch size, on random
uint8 RGB crops at its own input size, turned into its input by ``ocr_core.preprocess.to_model_input``
(grey or colour, its normalization) inside the timed loop, as the scorer does. Output layers are sized
for the plates vocabulary (CTC) or the arch's positions (fixed heads). The default CPU inference batch
(``ocr_core.device.default_batch_size``) was chosen from this table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from ocr_core.device import pick_device
from ocr_core.heads import CTCHead, FixedHead
from ocr_core.models import ARCHITECTURES, arch_spec, build_model, fuse_conv_batchnorm
from ocr_core.preprocess import InputSpec, to_model_input
from ocr_core.vocab import Vocab


def output_classes(arch: str) -> int | tuple[int, ...]:
    """The output layer sizes the bench builds ``arch`` with: the plates vocabulary, or its fixed positions."""
    spec = arch_spec(arch)
    chars = Vocab.preset("plates").chars
    if spec.head == "ctc":
        return CTCHead(chars).output_classes
    ascii_chars = "".join(c for c in chars if c.isascii())
    first = "".join(c for c in chars if not c.isascii()) if spec.separate_first else ""
    return FixedHead(ascii_chars, spec.positions or 7, first).output_classes


def images_per_second(model: torch.nn.Module, crops: torch.Tensor, spec: InputSpec, batch_size: int,
                      device: torch.device, repeats: int) -> tuple[float, float]:
    """Median img/s over ``repeats`` passes through ``crops`` (uint8 NHWC) in batches of ``batch_size``.

    Returns (images per wall-clock second, images per second of this process's CPU time). On a machine
    shared with other work the second is the steadier: other processes' load stretches the wall clock,
    not the CPU time this process spends. With one thread it is what an idle core would give.
    """
    batches = [crops[i:i + batch_size] for i in range(0, len(crops), batch_size)]
    channels_last = device.type == "cuda"
    rates, cpu_rates = [], []
    with torch.inference_mode():
        model(to_model_input(batches[0], spec, channels_last=channels_last))  # warm-up: allocator, kernel choice
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            for batch in batches:
                model(to_model_input(batch, spec, channels_last=channels_last))
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(len(crops) / (time.perf_counter() - start))
            cpu_rates.append(len(crops) / (time.process_time() - cpu_start))
    return statistics.median(rates), statistics.median(cpu_rates)


def main() -> None:
    """Print one table row per architecture, model form and batch size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,64,256", help="comma-separated (default: 32,64,256)")
    parser.add_argument("--crops", type=int, default=1024, help="random crops per pass (default 1024)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated (default: all)")
    parser.add_argument("--forms", default="served,stored", help="served (folded), stored, or both")
    args = parser.parse_args()
    archs = [a for a in args.archs.split(",") if a]
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        parser.error(f"unknown architectures {unknown}; choose from {', '.join(ARCHITECTURES)}")
    forms = [f for f in args.forms.split(",") if f]
    if not forms or set(forms) - {"served", "stored"}:
        parser.error(f"--forms must list served and/or stored, not {args.forms!r}")
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes must be comma-separated integers, not {args.batch_sizes!r}")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device={device} threads={args.threads} crops={args.crops} repeats={args.repeats} (median)")
    print(f"{'arch':<15} {'params':>11} {'input':<9} {'model':<8} {'batch':>6} {'img/s':>8} {'img/cpu-s':>10}")
    for arch in archs:
        spec = arch_spec(arch).input
        torch.manual_seed(0)
        crops = torch.randint(0, 256, (args.crops, spec.height, spec.width, 3), dtype=torch.uint8, device=device)
        stored = build_model(arch, output_classes(arch)).to(device).eval()
        params = sum(p.numel() for p in stored.parameters())
        models = {"stored": stored}
        if "served" in forms:
            models["served"] = fuse_conv_batchnorm(copy.deepcopy(stored))
        size = f"{spec.channels}x{spec.height}x{spec.width}"
        for form in forms:
            for batch_size in batch_sizes:
                rate, cpu_rate = images_per_second(models[form], crops, spec, batch_size, device, args.repeats)
                print(f"{arch:<15} {params:>11,} {size:<9} {form:<8} {batch_size:>6} {rate:>8.0f} {cpu_rate:>10.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
