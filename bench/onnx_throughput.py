"""onnxruntime against PyTorch on the CPU, side by side, for the same exported models and crops.

    python bench/onnx_throughput.py [--archs small,fcnn_bilstm] [--crops 2048] [--batch-size 64] [--repeats 3]

Per architecture: a checkpoint (the shipped demo for ``small``, a fresh model otherwise: speed does not
depend on the weights), exported by ``ocr_core.onnx_io.export_onnx`` (which checks logits and readings
first), then img/s of the forward pass on preprocessed batches: PyTorch (the served, batch-norm-folded
model) and onnxruntime, rounds alternating. The ratio says whether onnxruntime should score on CPUs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ocr_core.checkpoint import load_model, make_checkpoint, save_checkpoint
from ocr_core.heads import CTCHead
from ocr_core.models import arch_config, arch_spec, build_model
from ocr_core.onnx_io import export_onnx, load_onnx
from ocr_core.preprocess import to_model_input
from ocr_core.vocab import Vocab
from ocr_core.workspace import DEMO_CHECKPOINT


def checkpoint_for(arch: str, folder: Path) -> Path:
    """The demo for ``small``; a fresh plate-vocabulary model of ``arch`` otherwise."""
    if arch == "small":
        return DEMO_CHECKPOINT
    torch.manual_seed(0)
    head = CTCHead(Vocab.preset("plates").chars)
    model = build_model(arch, head.output_classes, arch_config(arch)).eval()
    path = folder / f"{arch}.pt"
    save_checkpoint(make_checkpoint(model, arch, arch_config(arch), head, arch_spec(arch).input), path)
    return path


def seconds(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    """Wall seconds of one pass over ``batches``."""
    with torch.inference_mode():
        start = time.perf_counter()
        for batch in batches:
            model(batch)
    return time.perf_counter() - start


def main() -> None:
    """Export each arch, then time both runtimes in alternating rounds; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="small,fcnn_bilstm")
    parser.add_argument("--crops", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs.split(","):
            checkpoint = checkpoint_for(arch, Path(tmp))
            torch_model = load_model(checkpoint)
            spec = torch_model.input
            crops = np.random.default_rng(0).integers(0, 256, (args.crops, spec.height, spec.width, 3), np.uint8)
            report = export_onnx(checkpoint, Path(tmp) / f"{arch}.onnx", crops[:32])
            onnx_model = load_onnx(Path(tmp) / f"{arch}.onnx")
            batches = [to_model_input(crops[i:i + args.batch_size], spec)
                       for i in range(0, len(crops), args.batch_size)]
            times: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}
            seconds(torch_model.model, batches[:2])
            seconds(onnx_model.model, batches[:2])  # warm-up: kernel choice, allocator
            for _ in range(args.repeats):
                times["pytorch"].append(seconds(torch_model.model, batches))
                times["onnxruntime"].append(seconds(onnx_model.model, batches))
            rate = {k: args.crops / statistics.median(v) for k, v in times.items()}
            rows.append((arch, rate["pytorch"], rate["onnxruntime"], report.max_logit_difference))
    print(f"crops={args.crops} batch={args.batch_size} threads={args.threads} median of {args.repeats} "
          "alternating rounds; forward pass on preprocessed batches")
    print(f"{'arch':<14} {'pytorch img/s':>14} {'onnxruntime img/s':>18} {'ort/pt':>7} {'max |dlogit|':>13}")
    for arch, pt, ort, diff in rows:
        print(f"{arch:<14} {pt:>14.0f} {ort:>18.0f} {ort / pt:>7.2f} {diff:>13.1e}")


if __name__ == "__main__":
    main()
