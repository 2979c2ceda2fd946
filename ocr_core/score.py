"""Batched scoring: a model and a dataset in, a score frame (one row per sample) out.

Columns of the score frame:
    ``sample`` (row id), ``path``, ``label``, ``pred``, ``correct``, ``cer``, ``edit_distance``,
    ``confidence``, ``loss``, ``label_issue``, ``oov``, ``label_len``, ``pred_len``, ``province`` (first label character),
    then the dataset's attributes (``source``, ``height``, ``width``, CCPD ``brightness``/``blur`` ...).

``confidence`` and ``loss`` are defined by the model's head (``ocr_core.heads``) and mean the same for
every head: the probability of the returned reading, and the negative log-likelihood of the label
(characters outside the vocabulary dropped; NaN where the head cannot represent the label). A
confidence of 1.0 means every step or position was certain; it drops wherever two readings compete,
which is what makes "confident but wrong" a good label-error signal. ``label_issue`` is the sharper one:
the loss of the label minus the loss of the reading (both negative log-likelihoods under the same
outputs, so it is log p(reading) - log p(label)): 0 when they agree, above 0 by how many nats the model
prefers its reading to the label (a wrong label the model reads confidently scores high), below 0 where
the label is more likely than the returned reading (greedy decoding is not the most probable text).
``oov`` marks labels with characters outside the model's vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ocr_core.atomic import atomic_path, write_json_atomic
from ocr_core.checkpoint import LoadedModel
from ocr_core.data.dataset import PlateDataset, decode_listing, skipped_summary
from ocr_core.data.sources import SourceListing
from ocr_core.device import default_batch_size, uses_amp
from ocr_core.errors import InputError
from ocr_core.formats import compile_format
from ocr_core.frame import SCHEMA_VERSION, build_frame, concat_frames, upgrade_frame
from ocr_core.heads import Head
from ocr_core.preprocess import InputSpec, to_model_input
from ocr_core.vocab import Vocab

ProgressFn = Callable[[int, int], None]


@dataclass
class BatchOutput:
    """Readings of a batch with their confidence and, when labels were given, per-sample losses and
    label-issue scores (NaN otherwise)."""

    preds: list[str]
    confidence: np.ndarray
    loss: np.ndarray
    label_issue: np.ndarray


# Test-time augmentation: the crop box moved sideways by these fractions of the input width (at 128 px:
# 1 and 2 px either way). Real crops are read near a decision boundary that such moves cross
# (bench/province_stability.py); the views' votes settle it. README "Test-time augmentation".
TTA_SHIFTS: tuple[float, ...] = (-0.016, -0.008, 0.008, 0.016)


def shift_columns(images: np.ndarray, pixels: int) -> np.ndarray:
    """Crops (N, H, W, C) moved ``pixels`` columns right (negative: left), the edge column repeated."""
    if pixels == 0:
        return images
    out = np.empty_like(images)
    if pixels > 0:
        out[:, :, pixels:] = images[:, :, :-pixels]
        out[:, :, :pixels] = images[:, :, :1]
    else:
        out[:, :, :pixels] = images[:, :, -pixels:]
        out[:, :, pixels:] = images[:, :, -1:]
    return out


def tta_views(images: np.ndarray, shifts: Sequence[float] = TTA_SHIFTS) -> list[np.ndarray]:
    """The crops as they are, then moved sideways by each of ``shifts`` (fractions of their width).

    Every shift moves at least one pixel; shifts that round to the same pixel count are kept once.
    """
    width = images.shape[2]
    pixels: list[int] = []
    for fraction in shifts:
        k = round(fraction * width) or (1 if fraction > 0 else -1)
        if fraction != 0 and k not in pixels:
            pixels.append(k)
    return [images] + [shift_columns(images, k) for k in pixels]


def decode_readings(head: Head, log_probs: torch.Tensor, text_format: str | None = None,
                    ) -> tuple[list[str], np.ndarray]:
    """Readings and confidences of ``log_probs``: greedy, or following ``text_format`` when one is given
    (a name of ``ocr_core.formats.FORMATS`` or a regular expression; ``head.decode_constrained``)."""
    if text_format:
        return head.decode_constrained(log_probs, compile_format(text_format))
    return head.decode(log_probs)


def vote_readings(head: Head, views_log_probs: Sequence[torch.Tensor], text_format: str | None = None,
                  proposals: Sequence[tuple[list[str], np.ndarray]] | None = None,
                  ) -> tuple[list[str], np.ndarray]:
    """One reading per sample from several views of it: the views' readings, rescored under every view.

    Each view's decoding proposes a reading; the one with the lowest negative log-likelihood summed over
    all views wins (their product of probabilities), which needs no alignment between views and works for
    every head. The confidence is the winner's geometric-mean probability over the views. A sample none
    of whose readings any view can represent keeps the first view's reading and confidence. ``proposals``
    are the views' ``decode_readings`` when the caller has them already (they are decoded otherwise).
    """
    if proposals is None:
        proposals = [decode_readings(head, lp, text_format) for lp in views_log_probs]
    first_preds, first_confidence = proposals[0]
    # Every (sample, candidate) pair once, scored under every view in one call per view.
    pairs = [(i, text) for i in range(len(first_preds)) for text in sorted({preds[i] for preds, _ in proposals})]
    rows = torch.as_tensor([i for i, _ in pairs], dtype=torch.long, device=views_log_probs[0].device)
    texts = [text for _, text in pairs]
    summed = np.sum([head.sample_losses(lp[rows], texts) for lp in views_log_probs], axis=0)
    best: dict[int, tuple[float, str]] = {}
    for (i, text), loss in zip(pairs, summed):
        if np.isfinite(loss) and (i not in best or loss < best[i][0]):
            best[i] = (float(loss), text)
    preds = list(first_preds)
    confidence = np.asarray(first_confidence, np.float64).copy()
    for i, (loss, text) in best.items():
        preds[i] = text
        confidence[i] = float(np.exp(-loss / len(views_log_probs)))
    return preds, confidence


@torch.inference_mode()
def run_batch(model: nn.Module, head: Head, spec: InputSpec, images: np.ndarray, device: torch.device,
              labels: Sequence[str] | None = None, text_format: str | None = None,
              tta: bool = False) -> BatchOutput:
    """Read one batch of uint8 crops (N, H, W, 3) at the model's input size.

    With ``text_format`` (a name of ``ocr_core.formats.FORMATS`` or a regular expression) every reading
    follows it where the model gives such a reading any probability (``head.decode_constrained``).
    With ``tta`` the crops are also read moved sideways (``tta_views``) and the views vote
    (``vote_readings``); ``loss`` and ``label_issue`` stay those of the crops as they are.
    """
    views_log_probs = []
    for view in (tta_views(images) if tta else [images]):
        batch = to_model_input(view, spec, device, channels_last=uses_amp(device))
        with torch.autocast(device.type, enabled=uses_amp(device)):
            logits = model(batch)
        views_log_probs.append(head.log_probs(logits))
    log_probs = views_log_probs[0]
    if tta:
        preds, confidence = vote_readings(head, views_log_probs, text_format)
    else:
        preds, confidence = decode_readings(head, log_probs, text_format)
    if labels is None:
        unknown = np.full(len(preds), np.nan, np.float32)
        return BatchOutput(preds, confidence, unknown, unknown.copy())
    loss = head.sample_losses(log_probs, labels)
    return BatchOutput(preds, confidence, loss, label_issue(head, log_probs, labels, preds, loss))


def label_issue(head: Head, log_probs: torch.Tensor, labels: Sequence[str], preds: Sequence[str],
                loss: np.ndarray | None = None) -> np.ndarray:
    """Per-sample label-issue score: loss of the label minus loss of the reading under ``log_probs``.

    Both losses come from ``head.sample_losses`` on the same outputs, so the score is the log of how many
    times more probable the model finds its reading than the label: 0 where they are the same text, high
    where the label looks wrong. The readings may come from any decoder (greedy, constrained, beam): the
    score is taken for the text returned. NaN where either loss is unknown (a label or reading the head
    cannot represent) and for labels with characters outside the head's vocabulary (their loss is that of
    the label without them). ``loss`` is the labels' loss when already computed.
    """
    label_loss = head.sample_losses(log_probs, labels) if loss is None else np.asarray(loss, np.float32)
    same = np.array([a == b for a, b in zip(labels, preds)], bool)
    pred_loss = np.zeros(len(preds), np.float32)
    if (~same).any():
        pick = np.flatnonzero(~same)
        pred_loss[pick] = head.sample_losses(log_probs[torch.as_tensor(pick, device=log_probs.device)],
                                             [preds[i] for i in pick])
    score = (label_loss - pred_loss).astype(np.float32)
    # The same text has the same loss: exactly 0, also where the head cannot represent it (then NaN).
    score[same] = np.where(np.isnan(label_loss[same]), np.nan, 0.0)
    vocab = head.vocab
    score[[bool(vocab.unknown_chars(t)) for t in labels]] = np.nan
    return score


def predict_images(loaded: LoadedModel, images: np.ndarray, device: torch.device | None = None,
                   batch_size: int | None = None) -> tuple[list[str], np.ndarray]:
    """Readings and confidences for uint8 crops already at the model's input size."""
    device = device or next(loaded.model.parameters()).device
    batch_size = batch_size or default_batch_size(device, inference=True)
    preds: list[str] = []
    confs: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        out = run_batch(loaded.model, loaded.head, loaded.input, images[start:start + batch_size], device)
        preds += out.preds
        confs.append(out.confidence)
    return preds, (np.concatenate(confs) if confs else np.zeros(0, np.float64))


def score_dataset(
    loaded: LoadedModel,
    dataset: PlateDataset,
    device: torch.device | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    text_format: str | None = None,
    tta: bool = False,
) -> pd.DataFrame:
    """Score every sample of ``dataset`` in batches and return the score frame (see module doc).

    ``text_format`` constrains the readings and ``tta`` reads shifted views too (see ``run_batch``).
    """
    device = device or next(loaded.model.parameters()).device
    batch_size = batch_size or default_batch_size(device, inference=True)
    labels = dataset.labels
    n = len(dataset)
    preds: list[str] = []
    confidence = np.zeros(n, np.float64)
    loss = np.zeros(n, np.float32)
    issue = np.zeros(n, np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out = run_batch(loaded.model, loaded.head, loaded.input, dataset.images[start:stop], device,
                        labels[start:stop], text_format, tta)
        preds += out.preds
        confidence[start:stop] = out.confidence
        loss[start:stop] = out.loss
        issue[start:stop] = out.label_issue
        if progress is not None:
            progress(stop, n)
    return build_score_frame(dataset, preds, confidence, loss, loaded.vocab, issue)


STREAM_CHUNK = 4096  # crops decoded and scored at a time: 48 MiB of 32x128 RGB crops


@dataclass
class StreamedScore:
    """The frame of a streamed score run, the files it skipped, and how many chunks came from a resume."""

    frame: pd.DataFrame
    skipped: list[tuple[str, str]]
    resumed_chunks: int


def score_listing(
    loaded: LoadedModel,
    listing: SourceListing,
    device: torch.device | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    text_format: str | None = None,
    strict: bool = False,
    chunk_size: int = STREAM_CHUNK,
    parts: Path | None = None,
    tta: bool = False,
) -> StreamedScore:
    """Score a listing chunk by chunk: decode a chunk, score it, keep its rows, release its crops.

    Peak memory holds one chunk of crops and the frame's rows, never the whole decoded dataset. With
    ``parts`` every scored chunk is also written there (atomically), keyed by the checkpoint, the listing
    and the settings; a run over the same inputs then skips the chunks an interrupted run finished. The
    frame equals ``score_dataset`` on the whole decoded listing, row for row.

    Raises:
        InputError: ``strict`` and an undecodable file, or no decodable image at all.
    """
    n = len(listing.samples)
    if parts is not None:
        settings = [SCHEMA_VERSION, loaded.path, file_fingerprint(loaded.path), listing.spec,
                    [(s.path, s.label) for s in listing.samples], chunk_size, text_format, loaded.input.to_dict()]
        if tta:  # appended only when on, so parts an earlier version wrote without it stay resumable
            settings.append(list(TTA_SHIFTS))
        key = hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:16]
        _claim_parts(parts, key)
    frames: list[pd.DataFrame] = []
    skipped = list(listing.skipped)
    resumed, done = 0, 0
    for index, start in enumerate(range(0, n, chunk_size)):
        samples = listing.samples[start:start + chunk_size]
        part = parts / f"chunk-{index:06d}.parquet" if parts is not None else None
        cached = read_cached_frame(part) if part is not None else None
        if cached is not None and part is not None:
            frame = cached
            failed = json.loads(part.with_suffix(".json").read_text(encoding="utf-8"))["skipped"]
            resumed += 1
        else:
            data = decode_listing(SourceListing(listing.spec, listing.kind, samples, []), loaded.input_size,
                                  strict=strict, part=True, upscale=loaded.input.upscale)
            failed = [list(pair) for pair in data.skipped]
            frame = (score_dataset(loaded, data, device, batch_size, text_format=text_format, tta=tta)
                     if len(data) else None)
            if part is not None:
                write_frame_atomic(frame if frame is not None else _empty_frame(), part,
                                   meta={"skipped": failed})
        frames += [frame] if frame is not None and len(frame) else []
        skipped += [(str(p), str(why)) for p, why in failed]
        done += len(samples)
        if progress is not None:
            progress(done, n)
    if not frames:
        raise InputError(f"dataset {listing.spec} has no decodable image; {skipped_summary(skipped)}")
    merged = pd.concat(frames, ignore_index=True)
    merged["sample"] = np.arange(len(merged), dtype=np.int32)
    return StreamedScore(merged, skipped, resumed)


def _claim_parts(parts: Path, key: str) -> None:
    # Chunks of another checkpoint, listing or setting are not this run's to resume: start again.
    marker = parts / "run.json"
    if parts.is_dir():
        try:
            same = json.loads(marker.read_text(encoding="utf-8")).get("key") == key
        except (OSError, ValueError):
            same = False
        if not same:
            for old in parts.glob("chunk-*"):
                old.unlink()
    parts.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"key": key})


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"sample": pd.Series(dtype="int32")})


def build_score_frame(dataset: PlateDataset, preds: Sequence[str], confidence: np.ndarray,
                      loss: np.ndarray, vocab: Vocab, label_issue: np.ndarray | None = None) -> pd.DataFrame:
    """The score frame of a model's readings of ``dataset`` (through ``ocr_core.frame.build_frame``);
    ``label_issue`` NaN when not given."""
    table = dataset.attributes()
    table.insert(2, "pred", list(preds))
    table.insert(3, "confidence", np.asarray(confidence, np.float64))
    table.insert(4, "loss", np.asarray(loss, np.float32))
    if label_issue is not None:
        table.insert(5, "label_issue", np.asarray(label_issue, np.float32))
    return build_frame(table, vocab)


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


def summarize(frame: pd.DataFrame) -> Summary:
    """n, exact-plate accuracy, corpus CER (total edits / total label characters), mean confidence and OOV
    count of a frame."""
    n = len(frame)
    if n == 0:
        return Summary(0, float("nan"), float("nan"), float("nan"), 0)
    return Summary(
        n=n,
        accuracy=float(frame["correct"].mean()),
        # The frame's own edit distances: the same figure as corpus_cer (tested), without re-aligning
        # every row in Python (torchmetrics took 14.8 s at 100,000 rows).
        cer=float(frame["edit_distance"].sum()) / max(int(frame["label_len"].sum()), 1),
        mean_confidence=float(frame["confidence"].mean()),
        oov=int(frame["oov"].sum()),
    )


@torch.inference_mode()
def sample_probabilities(loaded: LoadedModel, image: np.ndarray) -> np.ndarray:
    """One uint8 crop's output probabilities (steps or positions, classes); ``head.glyph_matrix`` names them."""
    device = next(loaded.model.parameters()).device
    logits = loaded.model(to_model_input(image[None], loaded.input, device))
    return loaded.head.log_probs(logits).exp()[0].cpu().numpy()


def telling_columns(probs: np.ndarray, glyphs: Sequence[str], must: str = "", threshold: float = 0.05) -> list[int]:
    """Columns of a probability matrix worth drawing: any that passes ``threshold`` somewhere, and the
    glyphs of ``must`` (the label and the reading), ordered by peak probability.

    Most of a CTC matrix is near zero (the blank and a handful of characters carry the mass), so drawing
    every column hides the few that decide the reading.
    """
    wanted = set(np.flatnonzero(probs.max(axis=0) >= threshold).tolist())
    index = {g: i for i, g in enumerate(glyphs)}
    wanted |= {index[c] for c in must if c in index}
    return sorted(wanted, key=lambda c: -float(probs[:, c].max()))


# ---- on-disk cache of score frames -------------------------------------------------------------------

def file_fingerprint(path: str | Path) -> str:
    """Identity of a file for caching: resolved path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def score_cache_key(checkpoint_path: str | Path, dataset: PlateDataset, tta: bool = False) -> str:
    """Cache key of a (checkpoint, dataset) pair: changes when either file set, any label or the score
    frame's schema (``ocr_core.frame.SCHEMA_VERSION``) changes, and with test-time augmentation (``tta``)."""
    digest = hashlib.sha1(f"schema {SCHEMA_VERSION};".encode())
    if tta:  # only when on, so the keys of frames scored without it stay as they were
        digest.update(f"tta {list(TTA_SHIFTS)};".encode())
    digest.update(file_fingerprint(checkpoint_path).encode())
    # Each sample by its label and the file itself (device, inode, size, mtime: os.stat follows links), not by
    # the path string that reached it: one folder seen through a symlink, or a relative and an absolute path,
    # is the same data and finds the same cache entry.
    for sample in dataset.samples:
        stat = os.stat(sample.path)
        digest.update(f"{sample.label}\t{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def write_frame_atomic(frame: pd.DataFrame, path: Path, meta: dict | None = None) -> None:
    """Write a frame as Parquet through a temp file and ``os.replace``; an optional JSON sidecar first."""
    if meta is not None:
        write_json_atomic(path.with_suffix(".json"), meta)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


PART_PATTERN = "part-{rank:05d}-of-{size:05d}.parquet"
MERGED_NAME = "scores.parquet"


def part_path(folder: Path, rank: int, size: int) -> Path:
    """Where process ``rank`` of ``size`` writes its share of a sharded score run."""
    return Path(folder) / PART_PATTERN.format(rank=rank, size=size)


def merge_score_parts(folder: str | Path) -> pd.DataFrame:
    """The score frame of a sharded run: its parts in rank order, ``sample`` numbered again from 0.

    Shards are contiguous runs of the dataset's listing, so the merged frame has the rows, order and ids
    of a one-process run of the same dataset.

    Raises:
        InputError: no parts, parts of runs with different process counts, or missing or unreadable parts.
    """
    folder = Path(folder)
    parts = sorted(folder.glob("part-*-of-*.parquet"))
    if not parts:
        raise InputError(f"{folder} holds no score parts (part-NNNNN-of-NNNNN.parquet); run a sharded score there")
    sizes = {p.stem.rsplit("-of-", 1)[1] for p in parts}
    if len(sizes) != 1:
        raise InputError(f"{folder} holds parts of runs with {len(sizes)} different process counts; "
                         "delete the old parts and score again")
    size = int(sizes.pop())
    missing = [r for r in range(size) if not part_path(folder, r, size).is_file()]
    if missing:
        raise InputError(f"{folder} lacks the parts of rank(s) {missing[:5]} of {size}; "
                         "those processes did not finish: score again")
    frames = [read_cached_frame(part_path(folder, r, size)) for r in range(size)]
    broken = [r for r, f in enumerate(frames) if f is None]
    if broken:
        raise InputError(f"the part of rank {broken[0]} in {folder} is unreadable; score again")
    return concat_frames(frames)


def read_cached_frame(path: Path) -> pd.DataFrame | None:
    """A cached score frame, or None when it is absent or unreadable (then it is rescored).

    A frame written under an older schema gets the columns added since, unknown (``upgrade_frame``).
    """
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - any damage to a cache file just means "score again"
        return None
    return upgrade_frame(frame) if "sample" in frame.columns and "loss" in frame.columns else frame
