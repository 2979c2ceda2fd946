"""Cached loading for the pages: checkpoint and dataset choices, models, decoded datasets, score frames.

The chain is model -> dataset -> score frame -> edit table. Models live in ``st.cache_resource`` (keyed
by path and mtime, eval mode, shared by every session, never trained). Datasets are listings whose crops
are decoded by path when a page reads them (never the whole set: 12 KiB a crop, 12 GiB per million); they
live in a small bounded store, also shared. Scoring streams the listing chunk by chunk. Score frames are cached on disk (Parquet under the workspace, keyed by
checkpoint and dataset) and shared in ``st.cache_resource``, so a second launch skips scoring.

Work that takes a while (generating the embedded test set, decoding, scoring) runs outside any cached
function, so its progress bar is drawn while it happens and never replayed from the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import streamlit as st
import torch

from ocr_core import workspace
from ocr_core.analysis import edit_table
from ocr_core.augment import describe_replay
from ocr_core.checkpoint import LoadedModel, freeze_for_inference, store_uploaded_checkpoint
from ocr_core.data.dataset import PlateDataset, skipped_summary
from ocr_core.data.image_io import resize_to_input
from ocr_core.data.sources import Sample, SourceListing, list_source, load_crop, sample_from_filename
from ocr_core.device import describe_device, pick_device
from ocr_core.errors import InputError
from ocr_core.frame import SCHEMA_VERSION
from ocr_core.predictions import PREDICTION_SUFFIXES, ImportedPredictions, import_predictions
from ocr_core.onnx_io import load_any_model
from ocr_core.preprocess import InputSpec, preview
from ocr_core.roots import confine, confine_listing
from ocr_core.score import (
    predict_images,
    read_cached_frame,
    score_cache_key,
    score_listing,
    sample_probabilities,
    write_frame_atomic,
)

from augment_spec import distinct_draws, format_draw
from choices import (  # noqa: F401 - re-exported: the pages reach the sidebar's choices through loaders
    EMBEDDED, EMBEDDED_CAPTCHA, EMBEDDED_HARD, OTHER, Selection, checkpoint_options, current_selection,
    dataset_label, dataset_options, upload_limit_mb,
)

ProgressFn = Callable[[int, int], None]


@dataclass
class Scored:
    """A score frame with everything the pages draw from it, and the model behind it when there is one.

    ``loaded`` and ``dataset`` are None for a predictions file of another OCR system: the analysis needs
    only the frame (images are read by path); the heatmap, alternative readings, augmented draws and
    re-scoring need the model, and the pages say so instead of stopping.
    """

    checkpoint: str
    loaded: LoadedModel | None
    dataset: PlateDataset | None
    frame: pd.DataFrame
    edits: pd.DataFrame
    key: str
    missing: tuple[str, ...] = ()  # rows of a predictions file whose image does not exist
    scoring: dict[str, Any] | None = None  # a PlateLens score frame's record of how it was read


def is_predictions_file(path: str) -> bool:
    """Whether a path the sidebar got names a predictions file rather than a model."""
    return Path(path).suffix.lower() in PREDICTION_SUFFIXES


def store_upload(name: str, data: bytes) -> Path:
    """Check an uploaded checkpoint and keep it in the workspace's uploads folder.

    Raises:
        InputError: too large, or not a loadable PlateLens checkpoint (nothing is kept then).
    """
    return store_uploaded_checkpoint(data, name, workspace.uploads_dir(), workspace.max_upload_bytes())


# ---- progress ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[ProgressFn]:
    """A progress callback that draws a bar on its first call and removes it afterwards.

    Nothing is drawn when the work turns out to be cached, so a warm page shows no flicker.
    """
    holder = st.empty()
    bar: list[Any] = []
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        fraction = min(1.0, done / total) if total else 1.0
        text = f"{label}: {done:,} of {total:,} ({time.perf_counter() - started:.1f} s)"
        if not bar:
            bar.append(holder.progress(fraction, text=text))
        else:
            bar[0].progress(fraction, text=text)

    try:
        yield report
    finally:
        holder.empty()


@st.cache_resource
def _locks() -> dict[str, threading.Lock]:
    return {}


def _lock(name: str) -> threading.Lock:
    # Two sessions asking for the same slow work wait for one another instead of doing it twice.
    return _locks().setdefault(name, threading.Lock())


# ---- models --------------------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def current_device() -> torch.device:
    """The device every model of this server runs on."""
    return pick_device("auto")


def device_name() -> str:
    """The GPU name, or CPU with its thread count."""
    return describe_device(current_device())


@st.cache_resource(max_entries=6, show_spinner="Loading checkpoint…")
def _load_model(path: str, mtime_ns: int) -> LoadedModel:  # noqa: ARG001 - mtime is part of the cache key
    loaded = load_any_model(path)
    loaded.model.to(current_device())
    freeze_for_inference(loaded.model)
    return loaded


def model(path: str) -> LoadedModel:
    """The checkpoint's model in eval mode (cached by path and modification time; shared, never trained).

    Raises:
        InputError: the file is outside the data roots, missing, or not a PlateLens checkpoint.
    """
    resolved = confine(path, "checkpoint")
    if resolved.is_dir():
        raise InputError(f"checkpoint {resolved} is a folder; give the path of a .pt file (a run's best.pt)")
    if not resolved.is_file():
        raise InputError(f"checkpoint {resolved} does not exist; pick another or give the path of a .pt file")
    return _load_model(str(resolved.resolve()), resolved.stat().st_mtime_ns)


# ---- datasets ------------------------------------------------------------------------------------------

class _BoundedStore:
    """A thread-safe LRU dict: decoded datasets are large, so only a few are kept."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


@st.cache_resource
def _dataset_store() -> _BoundedStore:
    return _BoundedStore(max_entries=4)


def resolve_dataset(spec: str) -> str:
    """The folder or manifest of a dataset spec; an embedded set is generated on first use, with progress."""
    embedded = {EMBEDDED: (workspace.EMBEDDED_TESTSET, workspace.ensure_embedded_testset, "synthetic test set"),
                EMBEDDED_CAPTCHA: (workspace.EMBEDDED_CAPTCHA_TESTSET, workspace.ensure_embedded_captcha_set,
                                   "captcha test set"),
                EMBEDDED_HARD: (workspace.EMBEDDED_HARD_TESTSET, workspace.ensure_embedded_hard_set, "hard set")}
    if spec not in embedded:
        return spec
    name, ensure, what = embedded[spec]
    target = workspace.datasets_dir() / name
    if (target / ".complete").exists():
        return str(target / "manifest.csv") if spec == EMBEDDED_HARD else str(target)
    with _lock(f"embedded:{name}"), progress_bar(f"Generating the embedded {what} (first use only)") as report:
        return str(ensure(report))


class CropsByPath:
    """The model-input crops of a list of samples, decoded by path when indexed (an int, a slice or an
    array of rows), so the server holds only the crops a page draws, never a whole decoded dataset.

    The last few hundred single crops are kept (a rerun draws the same ones again). A file that broke
    after scoring reads as a grey crop rather than failing the page.
    """

    KEPT = 256

    def __init__(self, samples: list[Sample], input_size: tuple[int, int], upscale: str = "linear") -> None:
        self.samples = samples
        self.input_size = tuple(input_size)
        self.upscale = upscale  # the model's InputSpec.upscale
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, H, W, 3), like the array of a decoded dataset."""
        return (len(self.samples), *self.input_size, 3)

    def _one(self, row: int) -> np.ndarray:
        with self._lock:
            if row in self._kept:
                self._kept.move_to_end(row)
                return self._kept[row]
        height, width = self.input_size
        try:
            crop = resize_to_input(load_crop(self.samples[row]), height, width, self.upscale)
        except InputError:
            crop = np.full((height, width, 3), 200, np.uint8)
        with self._lock:
            self._kept[row] = crop
            while len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        return crop

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._one(int(index) % len(self.samples))
        rows = np.arange(len(self.samples))[index]
        if not len(rows):
            return np.zeros((0, *self.input_size, 3), np.uint8)
        return np.stack([self._one(int(i)) for i in rows])


def _lazy_dataset(listing: SourceListing, input_spec: InputSpec) -> PlateDataset:
    # original_sizes is unknown until a crop is decoded; the score frame carries each crop's height and width.
    return PlateDataset(listing.spec, listing.kind, listing.samples,
                        CropsByPath(listing.samples, input_spec.size, input_spec.upscale),  # type: ignore[arg-type]
                        np.zeros((len(listing.samples), 2), np.int32), list(listing.skipped))


def dataset(spec: str, input_spec: InputSpec) -> PlateDataset:
    """A dataset's listing with its crops read by path on demand, sized and enlarged as ``input_spec`` (a
    model's input settings) says (shared by sessions; a changed folder or manifest is listed again).

    Raises:
        InputError: the path is outside the data roots, missing, of an unknown kind, or lists no labelled
            image.
    """
    path = confine(resolve_dataset(spec), "dataset path")
    if not path.exists():
        raise InputError(
            f"dataset path {path} does not exist; give a folder of images or a .json/.csv manifest"
        )
    key = (str(path.resolve()), path.stat().st_mtime_ns, input_spec.size, input_spec.upscale)
    store = _dataset_store()
    found = store.get(key)
    if found is None:
        with _lock(f"dataset:{key}"):
            found = store.get(key) or _lazy_dataset(confine_listing(list_source(path)), input_spec)
        store.put(key, found)
    return found


# ---- score frames --------------------------------------------------------------------------------------

# Shared, not copied per hit: st.cache_data pickles a frame on every read (1.5 s at 1,000,000 rows).
# Pages therefore never change a frame in place (they use .assign, .loc reads, filters).
@st.cache_resource(max_entries=8, show_spinner=False)
def _read_frame(path: str, mtime_ns: int) -> pd.DataFrame | None:  # noqa: ARG001 - mtime keys the cache
    return read_cached_frame(Path(path))


@st.cache_resource(max_entries=32, show_spinner=False)
def _score_key(
    checkpoint: str, checkpoint_mtime: int, _dataset: PlateDataset, fingerprint: str, tta: bool  # noqa: ARG001
) -> str:
    # score_cache_key stats every file; memoised per checkpoint version and dataset content.
    return score_cache_key(checkpoint, _dataset, tta)


def _own_paths(frame: pd.DataFrame, data: PlateDataset) -> pd.DataFrame:
    # The disk cache is keyed by the files, not by the path that reached them (a symlink, a relative path),
    # so a cached frame may spell its paths another way; Compare joins frames on them: use this dataset's.
    if len(frame) and frame["path"].iat[0] != data.samples[int(frame["sample"].iat[0])].path:
        frame = frame.assign(path=[data.samples[int(i)].path for i in frame["sample"]])
    return frame


@st.cache_resource(max_entries=8, show_spinner=False)
def _aligned(key: str, _data: PlateDataset, _paths: tuple[str, ...] | None) -> PlateDataset:  # noqa: ARG001
    # Files that could not be decoded have no row; the frame numbers its rows 0..n-1 over the rest.
    kept = {p: i for i, p in enumerate(_paths or ())}
    rows = [i for i, s in enumerate(_data.samples) if s.path in kept]
    samples = [_data.samples[i] for i in rows]
    skipped = list(_data.skipped) + [(s.path, "not a decodable image") for s in _data.samples if s.path not in kept]
    input_size = getattr(_data.images, "input_size", _data.images.shape[1:3])
    upscale = getattr(_data.images, "upscale", "linear")
    return PlateDataset(_data.spec, _data.kind, samples, CropsByPath(samples, input_size, upscale),  # type: ignore[arg-type]
                        _data.original_sizes[rows], skipped)


def _matching(key: str, frame: pd.DataFrame, data: PlateDataset) -> PlateDataset:
    # The dataset whose rows are the frame's: the listing itself unless scoring skipped files.
    if len(frame) == len(data):
        return data
    return _aligned(key, data, tuple(frame["path"].astype(str)))


def score_frame(checkpoint: str, loaded: LoadedModel, data: PlateDataset, tta: bool = False
                ) -> tuple[str, pd.DataFrame, PlateDataset]:
    """The cache key, score frame and matching dataset (without the files that could not be decoded) of a
    checkpoint on a dataset: read from disk, or scored with progress, a chunk of crops at a time; with
    ``tta`` every crop is read with test-time augmentation (``ocr_core.score.run_batch``)."""
    stat = Path(checkpoint).stat()
    key = _score_key(str(Path(checkpoint).resolve()), stat.st_mtime_ns, data, data.fingerprint(), tta)
    path = workspace.scores_dir() / f"{key}.parquet"
    frame = _read_frame(str(path), path.stat().st_mtime_ns) if path.is_file() else None
    if frame is None:
        with _lock(f"score:{key}"):
            if not path.is_file():
                listing = SourceListing(data.spec, data.kind, data.samples, [])
                how = " and test-time augmentation" if tta else ""
                with progress_bar(f"Scoring {len(data):,} plates with {Path(checkpoint).name}{how}") as report:
                    with torch.inference_mode():
                        streamed = score_listing(loaded, listing, device=current_device(), progress=report,
                                                 tta=tta)
                meta = {"checkpoint": str(checkpoint), "dataset": data.spec, "n": len(streamed.frame), "tta": tta}
                write_frame_atomic(streamed.frame, path, meta=meta)
        frame = _read_frame(str(path), path.stat().st_mtime_ns)
        if frame is None:
            raise InputError(f"the score cache {path} could not be read back; delete it and reload the page")
    data = _matching(key, frame, data)
    return key, _own_paths(frame, data), data


@st.cache_data(max_entries=128, show_spinner=False)
def memo(key: str, what: str, _compute: Callable[[], Any]) -> Any:  # noqa: ARG001 - key and what are the cache key
    """``_compute()``, cached under a score frame's key and a name for what it computes.

    The pages' summaries and slices are pure functions of a score frame; on a 100,000-row frame they take
    seconds, so each is computed once per frame instead of on every rerun. ``what`` must name everything
    the computation depends on besides the frame (e.g. the column it slices by).
    """
    return _compute()


@st.cache_resource(max_entries=4, show_spinner=False)
def shared(key: str, what: str, _compute: Callable[[], Any]) -> Any:  # noqa: ARG001 - key and what are the cache key
    """:func:`memo` for results as large as a frame (Compare's join of two 1,000,000-row frames): kept once
    and shared by every session instead of pickled per hit, so callers never change them in place."""
    return _compute()


@st.cache_resource(max_entries=8, show_spinner=False)
def edits(key: str, _frame: pd.DataFrame) -> pd.DataFrame:
    """The edit table of the score frame cached under ``key``."""
    return edit_table(_frame)


@st.cache_resource(max_entries=8, show_spinner="Reading the predictions file…")
def _imported(path: str, mtime_ns: int, dataset_spec: str | None) -> ImportedPredictions:  # noqa: ARG001
    return import_predictions(path, dataset_spec)


def scoring_note(scoring: dict[str, Any] | None) -> str:
    """One sentence on how a PlateLens score frame opened as a predictions file was read, or ""."""
    if not scoring or not scoring.get("checkpoint"):
        return ""
    how = [f"with `{Path(str(scoring['checkpoint'])).name}`"]
    if scoring.get("tta"):
        how.append("test-time augmentation (five views voted)")
    if scoring.get("format"):
        how.append(f"readings constrained to the format `{scoring['format']}`")
    return "Scored by PlateLens " + ", ".join(how) + "."


def predictions(path: str, dataset_spec: str | None) -> Scored:
    """The score frame of another OCR system's predictions file (labels from it, or from the dataset).

    Raises:
        InputError: the file is outside the data roots, missing or malformed.
    """
    resolved = confine(path, "predictions file")
    if not resolved.is_file():
        raise InputError(f"predictions file {resolved} does not exist; check the path")
    data = str(confine(resolve_dataset(dataset_spec), "dataset path")) if dataset_spec else None
    mtime = resolved.stat().st_mtime_ns
    imported = _imported(str(resolved.resolve()), mtime, data)
    key = "predictions-" + hashlib.sha1(f"{SCHEMA_VERSION};{resolved.resolve()};{mtime};{data}".encode()).hexdigest()[:16]
    return Scored(str(resolved), None, None, imported.frame, edits(key, imported.frame), key,
                  tuple(imported.missing + imported.unlabelled), imported.scoring)


def scored(checkpoint: str, dataset_spec: str, tta: bool = False) -> Scored:
    """Model, dataset, score frame and edit table for a checkpoint on a dataset, or the frame of a
    predictions file (see :func:`predictions`; ``tta`` applies to a model only).

    Raises:
        InputError: a bad checkpoint, predictions file or dataset.
    """
    if is_predictions_file(checkpoint):
        return predictions(checkpoint, dataset_spec)
    loaded = model(checkpoint)
    data = dataset(dataset_spec, loaded.input)
    key, frame, data = score_frame(checkpoint, loaded, data, tta)
    return Scored(checkpoint, loaded, data, frame, edits(key, frame), key)


def scored_like(checkpoint: str, a: Scored, dataset_spec: str | None, tta: bool = False) -> Scored:
    """``checkpoint`` (a model or a predictions file) on the images of ``a``, for Compare.

    A model compared with a predictions file reads that file's images (decoded at its input size, once);
    otherwise both sides use the sidebar's dataset.

    Raises:
        InputError: a bad checkpoint, predictions file or dataset.
    """
    if a.dataset is not None or is_predictions_file(checkpoint):
        return scored(checkpoint, dataset_spec or "", tta)
    loaded = model(checkpoint)
    listing = SourceListing(a.key, "predictions", [Sample(str(p), str(t), "predictions")
                                                   for p, t in zip(a.frame["path"], a.frame["label"])])
    store = _dataset_store()
    store_key = (a.key, loaded.input.size, loaded.input.upscale)
    data = store.get(store_key)
    if data is None:
        data = _lazy_dataset(confine_listing(listing), loaded.input)
        store.put(store_key, data)
    key, frame, data = score_frame(checkpoint, loaded, data, tta)
    return Scored(checkpoint, loaded, data, frame, edits(key, frame), key)


def scored_or_stop(checkpoint: str | None = None, dataset_spec: str | None = None) -> Scored:
    """:func:`scored` for a choice (default: the sidebar's); bad input stops the page with a message."""
    selection = current_selection()
    checkpoint = checkpoint or selection.checkpoint
    dataset_spec = dataset_spec or selection.dataset
    if not checkpoint:
        st.info("Enter a checkpoint path in the sidebar.")
        st.stop()
    if not dataset_spec and not is_predictions_file(checkpoint):
        st.info("Enter a dataset folder or manifest path in the sidebar.")
        st.stop()
    try:
        result = scored(checkpoint, dataset_spec, selection.tta)
    except InputError as exc:
        st.error(str(exc))
        st.stop()
    if result.dataset is not None and result.dataset.skipped:
        st.warning(f"{dataset_label(dataset_spec or '')}: {skipped_summary(result.dataset.skipped)}")
    if result.missing:
        st.warning(f"{Path(checkpoint).name}: left out {len(result.missing):,} row(s) whose image does not exist "
                   f"or that the dataset does not label, first {result.missing[0]}")
    if result.loaded is not None:
        if selection.tta:
            st.caption("Readings with test-time augmentation: each crop read five times, moved sideways by up to "
                       "2% of its width (sidebar). Heatmaps and alternative readings show the crop as it is.")
        oov_ui(result)
        for warning in result.loaded.meta.get("warnings") or []:  # e.g. NaN weights (checkpoint_checks)
            st.warning(warning)
    return result


def needs_model(scored: Scored, what: str) -> bool:
    """True (after saying so on the page) when ``scored`` has no model for ``what``."""
    if scored.loaded is not None:
        return False
    st.info(f"Load a checkpoint to see {what}: a predictions file holds readings only.")
    return True


def _unknown_chars(key: str, scored: Scored) -> tuple[int, str]:
    def compute() -> tuple[int, str]:
        frame = scored.frame
        labels = frame.loc[frame["oov"].astype(bool), "label"].astype(str)
        unknown = {c for text in labels for c in scored.loaded.vocab.unknown_chars(text)}
        return len(labels), "".join(sorted(unknown))
    return memo(key, "unknown characters", compute)


def oov_ui(scored: Scored) -> None:
    """A banner when labels hold characters the checkpoint cannot read: they are all errors, and why."""
    count, chars = _unknown_chars(scored.key, scored)
    if not count:
        return
    n = len(scored.frame)
    shown = " ".join(chars[:20]) + (f" and {len(chars) - 20} more" if len(chars) > 20 else "")
    effect = ("so almost every plate is an error and the charts have little else to show"
              if count > n / 2 else "so each of them is an error")
    st.warning(f"{count:,} of {n:,} labels hold characters this checkpoint cannot read ({shown}), {effect}. "
               "Pick a checkpoint trained on this alphabet, or fine-tune this one on the data on the Train page "
               "(its vocabulary grows to take the new characters).")


# ---- images --------------------------------------------------------------------------------------------

def upscale(image: np.ndarray, width: int) -> np.ndarray:
    """Resize an RGB image to ``width`` pixels wide, keeping its aspect (cubic when enlarging)."""
    height = max(1, round(image.shape[0] * width / max(1, image.shape[1])))
    interpolation = cv2.INTER_CUBIC if width > image.shape[1] else cv2.INTER_AREA
    return cv2.resize(image, (width, height), interpolation=interpolation)


@st.cache_data(max_entries=1024, show_spinner=False)
def _display_crop(path: str, quad: tuple[tuple[float, float], ...] | None, width: int) -> np.ndarray:
    try:
        crop = load_crop(Sample(path, "", "", quad))
    except InputError:
        # The file vanished or broke after scoring: show a grey tile rather than failing the gallery.
        crop = np.full((24, 94, 3), 200, np.uint8)
    return upscale(crop, width)


def display_crop(path: str, width: int = 240) -> np.ndarray:
    """The crop of the image at ``path`` (a raw CCPD photo's plate is warped out by its name's corners),
    resized to ``width`` pixels; read on demand, so no gallery needs a decoded dataset."""
    return _display_crop(path, sample_from_filename(Path(path)).quad, width)


def input_crop(data: PlateDataset, sample_id: int) -> np.ndarray:
    """The model-input crop (H, W, 3) of a sample, as the model sees it."""
    return data.images[int(sample_id)]


# ---- per-sample model outputs (cached: a filter change must not rerun the network on the same sample) --

@st.cache_data(max_entries=512, show_spinner=False)
def sample_probs(key: str, sample_id: int, _scored: Scored) -> np.ndarray:  # noqa: ARG001
    """The model's output probabilities of one sample (cached per score key)."""
    with torch.inference_mode():
        return sample_probabilities(_scored.loaded, input_crop(_scored.dataset, sample_id))


@dataclass(frozen=True)
class Draws:
    """Augmented draws of one sample and the model's reading of each."""

    images: list[np.ndarray]
    preds: list[str]
    confidences: list[float]
    params: list[list[str]]


@st.cache_data(max_entries=512, show_spinner=False)
def augmented_draws(key: str, sample_id: int, settings_json: str, draws: int,  # noqa: ARG001
                    _scored: Scored, _pipeline: Any) -> Draws:
    """``draws`` different replays of the pipeline on a sample (seeded by the sample id) with predictions.

    Cached by score key, sample and the pipeline's settings (``settings_json``), which fully define
    ``_pipeline``: the same settings always give the same draws.
    """
    image = input_crop(_scored.dataset, sample_id)
    results = distinct_draws(_pipeline, image, draws, seed=int(sample_id))
    with torch.inference_mode():
        preds, confs = predict_images(_scored.loaded, np.stack([r["image"] for r in results]))
    return Draws([preview(r["image"], _scored.loaded.input) for r in results], list(preds), [float(c) for c in confs],
                 [format_draw(describe_replay(r["replay"])) for r in results])



# ---- train/test leakage (Overview, Compare) ------------------------------------------------------------

LEAKAGE_AUTO_LIMIT = 20_000  # crops (training + test) hashed without asking: about 20 s on one core


def _source_stamps(sources: dict) -> tuple[int, ...]:
    # A folder's mtime changes when files are added or removed, a manifest's when it is edited.
    specs = [sources.get("data"), *(sources.get("extra_data") or []), sources.get("corrections")]
    stamps = []
    for spec in specs:
        try:
            stamps.append(Path(str(spec)).stat().st_mtime_ns if spec else 0)
        except OSError:
            stamps.append(-1)
    return tuple(stamps)


@st.cache_data(max_entries=16, show_spinner="Listing the checkpoint's training crops…")
def _training_paths(sources_json: str, stamps: tuple[int, ...]) -> tuple[list[str], tuple[str, ...]]:  # noqa: ARG001
    from ocr_core.near_duplicates import training_paths
    from ocr_core.roots import data_roots

    return training_paths(json.loads(sources_json), roots=data_roots())


@st.cache_data(max_entries=16, show_spinner="Comparing the test crops with the training crops (dHash)…")
def _leakage(sources_json: str, stamps: tuple[int, ...], test_fingerprint: str,  # noqa: ARG001
             _test_paths: tuple[str, ...]) -> Any:
    from ocr_core.near_duplicates import leakage

    train, unread = _training_paths(sources_json, stamps)
    return leakage(train, _test_paths, unread=unread)


def leakage_ui(scored: Scored, who: str = "this checkpoint", key: str = "leakage") -> None:
    """Warn when the test crops are the checkpoint's own training data, or (near-)duplicates of its training
    crops (checkpoints saved by ``train`` record their sources), with the pairs one click away."""
    if scored.loaded is None:
        return
    subject = who[:1].upper() + who[1:]
    meta = scored.loaded.meta
    trained_on = meta.get("data_fingerprint") or ""
    if scored.dataset is not None and trained_on and trained_on == scored.dataset.fingerprint():
        st.warning(f"{subject} was evaluated on its own training data: this dataset is the one it was trained on "
                   "(same fingerprint), so these metrics say nothing about plates it has not seen.")
        return
    sources = meta.get("training_sources")
    if not isinstance(sources, dict) or not sources.get("data"):
        return
    sources_json = json.dumps(sources, sort_keys=True, ensure_ascii=False)
    stamps = _source_stamps(sources)
    train, unread = _training_paths(sources_json, stamps)
    test_paths = tuple(str(p) for p in scored.frame["path"])
    fingerprint = scored.dataset.fingerprint() if scored.dataset is not None else scored.key
    if not train:
        if unread:
            st.caption(f"{subject} was trained on {', '.join(unread)}, which is gone or outside the data roots: the "
                       "test crops could not be checked against its training crops.")
        return
    asked = st.session_state.get(f"{key}:asked") == fingerprint
    if len(train) + len(test_paths) > LEAKAGE_AUTO_LIMIT and not asked:
        if st.button(f"Check the {len(test_paths):,} test crops against the {len(train):,} training crops of "
                     f"{who} for duplicates", key=f"{key}:check"):
            st.session_state[f"{key}:asked"] = fingerprint
        else:
            return
    found = _leakage(sources_json, stamps, fingerprint, test_paths)
    if not found.leaked:
        return
    st.warning(f"{found.leaked:,} of the {found.test_total:,} test crops are (near-)duplicates of training crops of "
               f"{who} ({found.exact:,} exact copies): its metrics "
               "here overstate how it reads plates it has not seen.")
    with st.expander(f"See the {len(found.pairs):,} test/training pairs"):
        pairs = found.pairs.rename(columns={"a": "test crop", "b": "training crop", "distance": "dHash bits apart"})
        st.dataframe(pairs, hide_index=True, height=min(300, 38 + 35 * len(pairs)), key=f"{key}:pairs")
        for row in found.pairs.head(4).itertuples():
            left, right = st.columns(2)
            left.image(display_crop(str(row.a), 240), caption=f"test: {Path(str(row.a)).name}")
            right.image(display_crop(str(row.b), 240),
                        caption=f"training: {Path(str(row.b)).name} ({'exact copy' if row.exact else f'{row.distance} bits apart'})")


# ---- robustness curves (Robustness page, the report) ----------------------------------------------------

def kept_robustness(scored: Scored) -> pd.DataFrame | None:
    """The newest robustness curves kept for this checkpoint (as it is now) on this dataset, or None."""
    if scored.loaded is None or scored.dataset is None:
        return None
    from ocr_core.robustness import cached_curves

    found = cached_curves(scored.checkpoint, scored.dataset.fingerprint())
    return found[0][1] if found else None


# ---- label corrections applied to a score frame (Overview) ----------------------------------------------

def decision_counts(scored: Scored, decisions: dict[str, Any], stamp: str) -> dict[str, int]:
    """How many of this frame's samples each kind of decision is about (``relabel``, ``invalid``, ``unsure``,
    ``keep``); cached per frame and corrections-file version ``stamp``."""
    from ocr_core.corrections import decision_of

    def compute() -> dict[str, int]:
        counts = {"relabel": 0, "invalid": 0, "unsure": 0, "keep": 0}
        for path in scored.frame["path"]:
            decision = decision_of(decisions, path)
            if decision is not None:
                counts[decision.action] = counts.get(decision.action, 0) + 1
        return counts

    return memo(scored.key, f"decision counts {stamp}", compute)


def with_corrections(scored: Scored, decisions: dict[str, Any], stamp: str) -> Scored:
    """``scored`` with its corrections applied (corrected labels, samples marked not valid dropped), under a
    key of its own, so every cached summary of the corrected frame is computed once per file version."""
    key = f"{scored.key}+corrections-{stamp}"
    frame = _corrected_frame(key, scored.frame, decisions)
    return Scored(scored.checkpoint, scored.loaded, scored.dataset, frame, edits(key, frame), key, scored.missing,
                  scored.scoring)


@st.cache_resource(max_entries=4, show_spinner=False)
def _corrected_frame(key: str, _frame: pd.DataFrame, _decisions: dict[str, Any]) -> pd.DataFrame:  # noqa: ARG001
    # Shared like the score frames (st.cache_data would copy a large frame on every read).
    from ocr_core.corrections import apply_to_frame

    return apply_to_frame(_frame, _decisions)
