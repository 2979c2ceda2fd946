"""Scoring throughput, three ways side by side on the same synthetic crops and the default model.

    python bench/score_throughput.py [--count 5000] [--device cpu] [--threads 2] [--checkpoint demo.pt]

A: seed notebook 000's ``get_test_scores``: per image, decode the file and transform it, run the model on
   that one image, greedy-decode, then torchmetrics CER on that single sample.
B: ``ocr_core`` end to end: files -> decoded dataset -> batched scoring -> the full score frame.
C: the forward pass alone, on pre-loaded tensors, in batches (the scorer's layout: an NHWC view on the CPU,
   channels_last on CUDA).
Goals: B/A >= 30x and B >= 0.8 x C.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torchmetrics.text import CharErrorRate
from tqdm import tqdm

from ocr_core.checkpoint import load_model
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.data.sources import list_source
from ocr_core.device import default_batch_size, pick_device
from ocr_core.score import score_dataset
from ocr_core.workspace import DEMO_CHECKPOINT


def notebook_way(loaded, paths: list[str], labels: list[str], device: torch.device) -> float:
    """Seconds for seed 000's per-sample loop, as its ``get_test_scores`` runs it.

    Per sample: ``MyDataset.__getitem__`` (cv2 decode, BGR->RGB, ``A.Compose([Resize, ToTensorV2])``),
    ``predict`` on a batch of one, the label encoder's numpy ``groupby`` decode, then torchmetrics
    ``CharErrorRate`` on that one sample, under a tqdm bar. The seed divides by 256 for its own model;
    the uint8 tensor goes to ours, which normalizes inside.
    """
    transform = A.Compose([A.Resize(*loaded.input_size), ToTensorV2()])
    decode_dict = {i + 1: c for i, c in enumerate(loaded.vocab.chars)}
    metric = CharErrorRate()
    start = time.perf_counter()
    scores = []
    with torch.no_grad(), open(os.devnull, "w") as sink:
        for path, label in tqdm(list(zip(paths, labels)), file=sink):
            image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            x = transform(image=image)["image"].to(device)
            outputs = loaded.model(x.unsqueeze(0))
            ids = torch.argmax(outputs, 2).flatten()
            chars = np.array([decode_dict.get(i.item(), "") for i in ids])
            pred = "".join(c[0] for c in itertools.groupby(chars) if c[0])
            scores.append(metric(np.array([pred]).tolist(), [label]).item())
    return time.perf_counter() - start


def platelens_way(loaded, folder: Path, device: torch.device) -> tuple[float, float]:
    """Seconds for ocr_core from files to the full score frame: (decode, score)."""
    start = time.perf_counter()
    dataset = load_dataset(folder, loaded.input_size)
    decoded = time.perf_counter()
    with torch.inference_mode():
        score_dataset(loaded, dataset, device=device)
    return decoded - start, time.perf_counter() - decoded


def forward_only(loaded, images: np.ndarray, device: torch.device) -> float:
    """Seconds for batched forward passes on tensors already in memory, in the layout the scorer feeds."""
    batch_size = default_batch_size(device, inference=True)
    batches = [torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).to(device)
               for i in range(0, len(images), batch_size)]
    if device.type == "cuda":
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            loaded.model(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    """Generate the crops, time A, B and C, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    loaded = load_model(args.checkpoint)
    loaded.model.to(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "crops"
        synth.generate(folder, args.count, seed=777, styles=("ccpd", "ccpd-green"))
        listing = list_source(folder)
        paths = [s.path for s in listing.samples]
        labels = [s.label for s in listing.samples]
        platelens_way(loaded, folder, device)  # warm the page cache and oneDNN kernels for every contender
        t_decode, t_score = platelens_way(loaded, folder, device)
        t_b = t_decode + t_score
        t_a = notebook_way(loaded, paths, labels, device)
        images = load_dataset(folder, loaded.input_size).images
        t_c = forward_only(loaded, images, device)
    n = args.count
    print(f"device={device} threads={args.threads} n={n} checkpoint={args.checkpoint}")
    print(f"{'way':<40} {'seconds':>8} {'img/s':>8}")
    for name, seconds in (("A notebook get_test_scores", t_a), ("B ocr_core files -> score frame", t_b),
                          ("  B1 decode files (threads)", t_decode), ("  B2 batched scoring + frame", t_score),
                          ("C forward only, pre-loaded tensors", t_c)):
        print(f"{name:<40} {seconds:>8.2f} {n / seconds:>8.0f}")
    print(f"B/A = {t_a / t_b:.1f}x (goal >= 30x)   B/C = {t_c / t_b:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
