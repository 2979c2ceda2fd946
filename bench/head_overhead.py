"""What the recognizer-head design costs the default model: scoring before and after, side by side.

    python bench/head_overhead.py [--count 4000] [--repeats 5] [--checkpoint demo.pt] [--data DIR]

before: the scoring step as it was in format 1 (commit 991898f): uint8 NCHW batches, the model scaling
        by 1/255 inside ``forward``, and the CTC greedy decode written into ``score.py``.
after:  ``ocr_core.score.run_batch``: ``to_model_input`` (the checkpoint's input settings), the model,
        and the head's ``log_probs`` / ``decode`` / ``sample_losses``.
Both get the same decoded crops and the same served (batch-norm-folded) model; rounds alternate so that a
busy machine slows both alike. Readings must be identical (the table says how many differ).
Goal: after no slower than before (ratio >= 0.95, the noise of this machine) and no reading changed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ocr_core.checkpoint import LoadedModel, load_model
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.device import default_batch_size, pick_device
from ocr_core.score import run_batch
from ocr_core.workspace import DEMO_CHECKPOINT


def before(loaded: LoadedModel, images: np.ndarray, labels: list[str], batch_size: int) -> list[str]:
    """Format 1's scoring step: scale inside the model, greedy collapse and CTC loss inline."""
    chars = loaded.vocab.chars
    index = {c: i + 1 for i, c in enumerate(chars)}
    preds: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2)
            log_probs = loaded.model(batch.float() / 255.0).float().log_softmax(-1)
            best, ids = log_probs.max(dim=-1)
            best.double().sum(dim=1).exp().numpy()
            ids_np = ids.numpy()
            keep = ids_np != 0
            keep[:, 1:] &= ids_np[:, 1:] != ids_np[:, :-1]
            preds += ["".join(chars[i - 1] for i in row[mask]) for row, mask in zip(ids_np, keep)]
            encoded = [[index[c] for c in t if c in index] for t in labels[start:start + batch_size]]
            n, t, _ = log_probs.shape
            F.ctc_loss(log_probs.transpose(0, 1), torch.tensor([i for e in encoded for i in e]),
                       torch.full((n,), t), torch.tensor([len(e) for e in encoded]), reduction="none")
    return preds


def after(loaded: LoadedModel, images: np.ndarray, labels: list[str], batch_size: int) -> list[str]:
    """Today's scoring step."""
    device = torch.device("cpu")
    preds: list[str] = []
    for start in range(0, len(images), batch_size):
        preds += run_batch(loaded.model, loaded.head, loaded.input, images[start:start + batch_size], device,
                           labels[start:start + batch_size]).preds
    return preds


def main() -> None:
    """Alternate rounds of both ways; print img/s, the ratio and how many readings differ."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT))
    parser.add_argument("--data", default=None, help="crops to read (default: synthetic plates)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pick_device("cpu")
    loaded = load_model(args.checkpoint)
    batch_size = default_batch_size(torch.device("cpu"), inference=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data) if args.data else Path(tmp) / "crops"
        if not args.data:
            synth.generate(folder, args.count, seed=321, styles=("ccpd", "ccpd-green"))
        data = load_dataset(folder, loaded.input_size)
    images, labels = data.images, data.labels
    times: dict[str, list[float]] = {"before": [], "after": []}
    readings: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, way in (("before", before), ("after", after)):
            start = time.perf_counter()
            readings[name] = way(loaded, images, labels, batch_size)
            times[name].append(time.perf_counter() - start)
    rate = {name: len(images) / statistics.median(seconds) for name, seconds in times.items()}
    differ = sum(a != b for a, b in zip(readings["before"], readings["after"]))
    accuracy = {name: float(np.mean([p == t for p, t in zip(r, labels)])) for name, r in readings.items()}
    print(f"checkpoint={Path(args.checkpoint).name} n={len(images)} batch={batch_size} "
          f"threads={torch.get_num_threads()} median of {args.repeats} alternating rounds")
    print(f"{'way':<8} {'img/s':>8} {'accuracy':>9}")
    for name in ("before", "after"):
        print(f"{name:<8} {rate[name]:>8.0f} {accuracy[name]:>9.4f}")
    print(f"after/before = {rate['after'] / rate['before']:.2f}; readings that differ: {differ}")


if __name__ == "__main__":
    main()
