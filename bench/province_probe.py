"""A province head on a checkpoint's frozen features: does a classifier of its own read real glyphs better?

    python bench/province_probe.py [--checkpoint ocr_core/assets/demo.pt] [--count 12000] [--seed 701]

Renders --count synthetic ccpd + ccpd-green plates (uniform provinces) in memory, runs the frozen `small`
model up to its CNN output and up to its BiLSTM output, and trains a linear province classifier (31
classes, 30 epochs of AdamW) on the features of the first K of the 32 time steps, for K = 6, 8 and 10.
It then reads the province glyph of the 297 real crops with each classifier and, for comparison, with the
model's own CTC reading. Only synthetic plates are trained on; the real crops are read, never fitted.

A classifier that reads the real glyphs better than the CTC head would mean the features separate the
real glyphs and the head is what fails them (then a province head pays); one that reads them no better
means the gap is in the features, so it needs training on other plates, not another head. About 4
minutes on 2 cores. Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np
import pandas as pd
import torch
from real_plates import REAL_PLATES, VAL_FRACTION, skipped_line
from tqdm import tqdm

from ocr_core.checkpoint import load_model
from ocr_core.data import synth
from ocr_core.data.dataset import load_dataset
from ocr_core.data.sources import split_by_hash
from ocr_core.errors import InputError
from ocr_core.preprocess import InputSpec, to_model_input
from ocr_core.score import predict_images
from ocr_core.workspace import DEMO_CHECKPOINT

STEPS = (6, 8, 10)


@torch.inference_mode()
def features(model: torch.nn.Module, spec: InputSpec, images: np.ndarray) -> dict[str, torch.Tensor]:
    """The `small` model's per-time-step CNN features and BiLSTM outputs, (N, 32, D) each."""
    cnn, rnn = [], []
    for start in range(0, len(images), 256):
        x = model.cnn(to_model_input(images[start:start + 256], spec, torch.device("cpu")))
        n, c, h, w = x.shape
        steps = x.permute(0, 3, 1, 2).reshape(n, w, c * h)
        cnn.append(steps)
        rnn.append(model.rnn(steps)[0])
    return {"CNN": torch.cat(cnn), "BiLSTM": torch.cat(rnn)}


def train_probe(x: torch.Tensor, y: torch.Tensor, classes: int, seed: int) -> torch.nn.Linear:
    """A linear classifier fitted to standardised features (the standardisation folded into it)."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-5
    z = (x - mean) / std
    probe = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.AdamW(probe.parameters(), 1e-3, weight_decay=1e-2)
    for _ in range(30):
        order = torch.randperm(len(z))
        for start in range(0, len(z), 256):
            batch = order[start:start + 256]
            loss = torch.nn.functional.cross_entropy(probe(z[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        probe.weight /= std
        probe.bias -= probe.weight @ mean
    return probe


def main() -> int:
    """Print real province accuracy of the CTC head and of each probe."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEMO_CHECKPOINT),
                        help="a `small` checkpoint (default: the demo)")
    parser.add_argument("--count", type=int, default=12000,
                        help="synthetic plates to train on (default 12000)")
    parser.add_argument("--seed", type=int, default=701)
    args = parser.parse_args()
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    if args.count < 100:
        print("error: --count must be at least 100", file=sys.stderr)
        return 2
    try:
        loaded = load_model(args.checkpoint, fuse=False)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if loaded.arch != "small":
        print(f"error: {args.checkpoint} is a {loaded.arch!r} model; the probe reads `small` models",
              file=sys.stderr)
        return 2
    height, width = loaded.input.size
    labels, crops = [], []
    for index in tqdm(range(args.count), desc="render", unit="plate"):
        label, rgb = synth.render_sample(args.seed, index, ("ccpd", "ccpd-green"))
        labels.append(label)
        crops.append(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))
    real = load_dataset(REAL_PLATES, input_size=loaded.input.size)
    _, val_idx = split_by_hash(real.samples, VAL_FRACTION)
    val = np.zeros(len(real), bool)
    val[val_idx] = True
    provinces = sorted({label[0] for label in labels})
    index_of = {p: i for i, p in enumerate(provinces)}
    y = torch.tensor([index_of[label[0]] for label in labels])
    real_y = np.array([index_of.get(label[0], -1) for label in real.labels])

    ctc = np.array([p[:1] == t[:1] for p, t in zip(predict_images(loaded, real.images)[0], real.labels)])
    rows = [{"reader": "the model's CTC head", "steps": "all 32", "synthetic (train)": float("nan"),
             "real, all 297": ctc.mean(), "real, val half": ctc[val].mean()}]
    train_features = features(loaded.model, loaded.input, np.stack(crops))
    real_features = features(loaded.model, loaded.input, real.images)
    for name in train_features:
        for k in STEPS:
            x = train_features[name][:, :k].reshape(len(y), -1)
            probe = train_probe(x, y, len(provinces), args.seed)
            with torch.no_grad():
                fitted = (probe(x).argmax(1) == y).float().mean().item()
                right = probe(real_features[name][:, :k].reshape(len(real), -1)).argmax(1).numpy() == real_y
            rows.append({"reader": f"linear probe on the {name} features", "steps": f"first {k}",
                         "synthetic (train)": fitted, "real, all 297": right.mean(),
                         "real, val half": right[val].mean()})
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(f"{args.checkpoint}: province-glyph accuracy, probes trained on {args.count} synthetic plates")
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
