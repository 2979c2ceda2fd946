"""Training throughput: the bare optimizer step against the real training loop, side by side.

    python bench/train_throughput.py [--count 4000] [--batch-size 128] [--workers 0,1,2] [--device cpu]

A: preprocessing + forward + backward + AdamW step on uint8 crops already in memory.
B: ``ocr_core.train`` for one epoch: cached decoded crops, the default augmentation in DataLoader
   workers, the head's loss, the LR schedule; samples/s of the epoch's training phase (from history.jsonl).
   One row per worker count, so the best default can be read off.
Goal: B >= 0.75 x A.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ocr_core.data import synth
from ocr_core.device import pick_device
from ocr_core.heads import CTCHead
from ocr_core.models import arch_spec, build_model
from ocr_core.preprocess import to_model_input
from ocr_core.runs import read_history
from ocr_core.train import TrainOptions, train
from ocr_core.vocab import Vocab


def bare_steps(device: torch.device, batch_size: int, steps: int) -> float:
    """Samples/s of preprocessing + forward + backward + optimizer step on in-memory crops."""
    head = CTCHead(Vocab.preset("plates").chars)
    spec = arch_spec("small").input
    model = build_model("small", head.output_classes).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    crops = torch.randint(0, 256, (batch_size, 32, 128, 3), dtype=torch.uint8, device=device)
    generator = torch.Generator().manual_seed(0)
    labels = ["".join(head.chars[i] for i in torch.randint(0, len(head.chars), (7,), generator=generator))
              for _ in range(batch_size)]

    def step() -> None:
        loss = head.training_loss(model(to_model_input(crops, spec)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def real_loop(folder: Path, out: Path, device: str, batch_size: int, workers: int) -> float:
    """Training-phase samples/s of one real epoch with the default augmentation."""
    train(TrainOptions(data=str(folder), out=str(out), val_split=0.05, epochs=1, batch_size=batch_size,
                       device=device, workers=workers, augment="default"))
    return float(read_history(out)["samples_per_second"].iloc[-1])


def main() -> None:
    """Time A once and B per worker count; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", default="0,1,2", help="comma list of DataLoader worker counts for B")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    steps = max(2, args.count // args.batch_size)
    rows = [("A forward+backward+step, in memory", bare_steps(device, args.batch_size, steps))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "crops"
        synth.generate(folder, args.count, seed=555, styles=("ccpd", "ccpd-green"))
        for workers in (int(w) for w in args.workers.split(",")):
            rate = real_loop(folder, Path(tmp) / f"run-w{workers}", args.device, args.batch_size, workers)
            rows.append((f"B real loop, {workers} worker(s)", rate))
    a = rows[0][1]
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch_size} n={args.count}")
    print(f"{'way':<40} {'samples/s':>10} {'vs A':>6}")
    for name, rate in rows:
        print(f"{name:<40} {rate:>10.0f} {rate / a:>6.2f}")
    print("goal: B >= 0.75 x A")


if __name__ == "__main__":
    main()
