"""Batched scoring: a model and a dataset in, a score frame (one row per sample) out.

Columns of the score frame:
    ``sample`` (row id), ``path``, ``label``, ``pred``, ``correct``, ``cer``, ``edit_distance``,
    ``confidence``, ``loss``, ``oov``, ``label_len``, ``pred_len``, ``province`` (first label character),
    then the dataset's attributes (``source``, ``height``, ``width``, CCPD ``brightness``/``blur`` ...).

``confidence`` is the probability of the greedy best path: the product over time steps of the
maximum softmax probability. It is 1.0 only when every step is certain, and it drops on any step
where two readings compete, which is what makes "confident but wrong" a good label-error signal.
``loss`` is the per-sample CTC negative log-likelihood of the label (characters outside the
vocabulary dropped); ``oov`` marks labels with such characters.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein
from torch import nn
from torchmetrics.text import CharErrorRate

from ocr_core.atomic import atomic_path, write_json_atomic
from ocr_core.checkpoint import LoadedModel
from ocr_core.data.dataset import PlateDataset
from ocr_core.device import default_batch_size, uses_amp
from ocr_core.vocab import BLANK_ID, Vocab

ProgressFn = Callable[[int, int], None]
BLANK_GLYPH = "∅"


@dataclass
class BatchOutput:
    """Greedy readings of a batch with their confidence and, when labels were given, CTC losses."""

    preds: list[str]
    confidence: np.ndarray
    loss: np.ndarray


def _to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    else:
        batch = batch.to(device)
    return batch


def greedy_decode(log_probs: torch.Tensor, vocab: Vocab) -> tuple[list[str], np.ndarray]:
    """Best-path readings and their probabilities for log-probabilities (N, T, C)."""
    best, ids = log_probs.max(dim=-1)
    # float64: a product of 32 small probabilities underflows float32 and would tie unsure samples at 0.
    confidence = best.double().sum(dim=1).exp().cpu().numpy()
    ids_np = ids.cpu().numpy()
    keep = ids_np != BLANK_ID
    keep[:, 1:] &= ids_np[:, 1:] != ids_np[:, :-1]
    preds = [vocab.decode(row[mask]) for row, mask in zip(ids_np, keep)]
    return preds, confidence


def ctc_losses(log_probs: torch.Tensor, labels: Sequence[str], vocab: Vocab) -> np.ndarray:
    """Per-sample CTC negative log-likelihood of ``labels``; NaN where the label cannot be aligned."""
    encoded = [vocab.encode(text) for text in labels]
    targets = torch.tensor([i for ids in encoded for i in ids], dtype=torch.long)
    target_lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long)
    n, t, _ = log_probs.shape
    input_lengths = torch.full((n,), t, dtype=torch.long)
    losses = F.ctc_loss(
        log_probs.transpose(0, 1).float().cpu(), targets, input_lengths, target_lengths,
        blank=BLANK_ID, reduction="none", zero_infinity=False,
    )
    out = losses.numpy().astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


@torch.inference_mode()
def run_batch(model: nn.Module, images: np.ndarray, vocab: Vocab, device: torch.device,
              labels: Sequence[str] | None = None) -> BatchOutput:
    """Read one batch of uint8 crops (N, H, W, 3)."""
    batch = _to_device(images, device)
    with torch.autocast(device.type, enabled=uses_amp(device)):
        logits = model(batch)
    log_probs = logits.float().log_softmax(-1)
    preds, confidence = greedy_decode(log_probs, vocab)
    loss = ctc_losses(log_probs, labels, vocab) if labels is not None else np.full(len(preds), np.nan, np.float32)
    return BatchOutput(preds, confidence, loss)


def predict_images(loaded: LoadedModel, images: np.ndarray, device: torch.device | None = None,
                   batch_size: int | None = None) -> tuple[list[str], np.ndarray]:
    """Greedy readings and confidences for uint8 crops already at the model's input size."""
    device = device or next(loaded.model.parameters()).device
    batch_size = batch_size or default_batch_size(device, inference=True)
    preds: list[str] = []
    confs: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        out = run_batch(loaded.model, images[start:start + batch_size], loaded.vocab, device)
        preds += out.preds
        confs.append(out.confidence)
    return preds, (np.concatenate(confs) if confs else np.zeros(0, np.float64))


def score_dataset(
    loaded: LoadedModel,
    dataset: PlateDataset,
    device: torch.device | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Score every sample of ``dataset`` in batches and return the score frame (see module doc)."""
    device = device or next(loaded.model.parameters()).device
    batch_size = batch_size or default_batch_size(device, inference=True)
    labels = dataset.labels
    n = len(dataset)
    preds: list[str] = []
    confidence = np.zeros(n, np.float64)
    loss = np.zeros(n, np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out = run_batch(loaded.model, dataset.images[start:stop], loaded.vocab, device, labels[start:stop])
        preds += out.preds
        confidence[start:stop] = out.confidence
        loss[start:stop] = out.loss
        if progress is not None:
            progress(stop, n)
    return build_score_frame(dataset, preds, confidence, loss, loaded.vocab)


def build_score_frame(dataset: PlateDataset, preds: Sequence[str], confidence: np.ndarray,
                      loss: np.ndarray, vocab: Vocab) -> pd.DataFrame:
    """Assemble the score frame from a dataset's attributes and the model's readings."""
    frame = dataset.attributes()
    labels = frame["label"].tolist()
    distance = np.fromiter((Levenshtein.distance(a, b) for a, b in zip(labels, preds)), np.int32, len(labels))
    label_len = frame["label"].str.len().to_numpy(np.int32)
    frame.insert(0, "sample", np.arange(len(frame), dtype=np.int32))
    frame.insert(3, "pred", list(preds))
    frame.insert(4, "correct", frame["label"].to_numpy() == np.asarray(preds, dtype=object))
    frame.insert(5, "cer", distance / np.maximum(label_len, 1))
    frame.insert(6, "edit_distance", distance)
    frame.insert(7, "confidence", confidence.astype(np.float64))
    frame.insert(8, "loss", loss.astype(np.float32))
    frame.insert(9, "oov", [bool(vocab.unknown_chars(text)) for text in labels])
    frame.insert(10, "label_len", label_len)
    frame.insert(11, "pred_len", frame["pred"].str.len().astype(np.int32))
    frame.insert(12, "province", frame["label"].str[:1])
    return frame


@dataclass(frozen=True)
class Summary:
    """Corpus figures of a score frame."""

    n: int
    accuracy: float
    cer: float
    mean_confidence: float
    oov: int

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        return f"n={self.n} accuracy={self.accuracy:.4f} cer={self.cer:.4f}"


def corpus_cer(labels: Sequence[str], preds: Sequence[str]) -> float:
    """Corpus character error rate by torchmetrics: total edits over total label characters."""
    if not labels:
        return float("nan")
    return float(CharErrorRate()(list(preds), list(labels)))


def summarize(frame: pd.DataFrame) -> Summary:
    """n, exact-plate accuracy, corpus CER (torchmetrics), mean confidence and OOV count of a frame."""
    n = len(frame)
    if n == 0:
        return Summary(0, float("nan"), float("nan"), float("nan"), 0)
    return Summary(
        n=n,
        accuracy=float(frame["correct"].mean()),
        cer=corpus_cer(frame["label"].tolist(), frame["pred"].tolist()),
        mean_confidence=float(frame["confidence"].mean()),
        oov=int(frame["oov"].sum()),
    )


@torch.inference_mode()
def timestep_probs(loaded: LoadedModel, image: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Softmax probabilities (T, classes) for one uint8 crop at the input size, and the class glyphs."""
    device = next(loaded.model.parameters()).device
    logits = loaded.model(_to_device(image[None], device))
    probs = logits.float().softmax(-1)[0].cpu().numpy()
    return probs, [BLANK_GLYPH, *loaded.vocab.chars]


def top_classes(probs: np.ndarray, k: int = 3) -> list[int]:
    """Class indices that appear in any time step's top ``k``, ordered by their peak probability."""
    top = np.argsort(-probs, axis=1)[:, :k]
    classes = np.unique(top)
    return sorted(classes.tolist(), key=lambda c: -float(probs[:, c].max()))


def beam_readings(probs: np.ndarray, vocab: Vocab, beam_width: int = 8, n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` most probable readings by CTC prefix beam search over one sample's (T, classes) probabilities."""
    # Each beam is a prefix of ids with (p ending in blank, p ending in its last id).
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (1.0, 0.0)}
    candidates = np.argsort(-probs, axis=1)[:, :beam_width]
    for t in range(probs.shape[0]):
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_last) in beams.items():
            total = p_blank + p_last
            for c in candidates[t]:
                p = float(probs[t, c])
                if c == BLANK_ID:
                    entry = nxt.setdefault(prefix, [0.0, 0.0])
                    entry[0] += total * p
                elif prefix and prefix[-1] == c:
                    nxt.setdefault(prefix, [0.0, 0.0])[1] += p_last * p
                    nxt.setdefault(prefix + (int(c),), [0.0, 0.0])[1] += p_blank * p
                else:
                    nxt.setdefault(prefix + (int(c),), [0.0, 0.0])[1] += total * p
        ranked = sorted(nxt.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    ranked_final = sorted(beams.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:n]
    return [(vocab.decode(prefix), p_b + p_l) for prefix, (p_b, p_l) in ranked_final]


# ---- on-disk cache of score frames -------------------------------------------------------------------

def file_fingerprint(path: str | Path) -> str:
    """Identity of a file for caching: resolved path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def score_cache_key(checkpoint_path: str | Path, dataset: PlateDataset) -> str:
    """Cache key of a (checkpoint, dataset) pair: changes when either file set or any label changes."""
    digest = hashlib.sha1(file_fingerprint(checkpoint_path).encode())
    digest.update(dataset.fingerprint().encode())
    for sample in dataset.samples:
        stat = os.stat(sample.path)
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def write_frame_atomic(frame: pd.DataFrame, path: Path, meta: dict | None = None) -> None:
    """Write a frame as Parquet through a temp file and ``os.replace``; an optional JSON sidecar first."""
    if meta is not None:
        write_json_atomic(path.with_suffix(".json"), meta)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_cached_frame(path: Path) -> pd.DataFrame | None:
    """A cached score frame, or None when it is absent or unreadable (then it is rescored)."""
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - any damage to a cache file just means "score again"
        return None
