"""Robustness curves: a model's CER against the severity of each corruption, on one dataset.

Each corruption (blur, noise, JPEG quality, perspective, darkness, occlusion) has ``LEVELS`` severities
from 0 (the crop as it is) to 1; every level is one albumentations transform with fixed parameters
(``p=1``, seeded), applied to the same crops, so two checkpoints see exactly the same corrupted images
and their curves compare.

Results are kept in a job folder per checkpoint file, dataset fingerprint and :class:`Settings`
(:func:`job_key`) under the workspace's ``robustness/``; the dashboard computes them in a background
``python -m ocr_core robustness --job-dir`` process (:func:`launch`) whose status, progress and log live in
that folder the way a training run's do (``ocr_core.runs``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import torch

from ocr_core.atomic import write_json_atomic
from ocr_core.checkpoint import LoadedModel
from ocr_core.data.dataset import PlateDataset
from ocr_core.errors import InputError
from ocr_core.runs import STATUS_FILE, read_json, run_folder_locked, run_state, write_status
from ocr_core.score import file_fingerprint, predict_images
from ocr_core.workspace import robustness_dir

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
ProgressFn = Callable[[int, int], None]


def _blur(s: float) -> A.BasicTransform:
    kernel = 1 + 2 * round(4 * s)  # 1 .. 9
    return A.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(0.3 + 2.2 * s, 0.3 + 2.2 * s), p=1)


def _noise(s: float) -> A.BasicTransform:
    return A.GaussNoise(std_range=(0.2 * s, 0.2 * s), p=1)


def _jpeg(s: float) -> A.BasicTransform:
    quality = int(round(95 - 90 * s))  # 95 .. 5
    return A.ImageCompression(quality_range=(quality, quality), p=1)


def _perspective(s: float) -> A.BasicTransform:
    return A.Perspective(scale=(0.12 * s, 0.12 * s), keep_size=True, p=1)


def _darkness(s: float) -> A.BasicTransform:
    return A.RandomBrightnessContrast(brightness_limit=(-0.6 * s, -0.6 * s), contrast_limit=(0.0, 0.0), p=1)


def _occlusion(s: float) -> A.BasicTransform:
    # A vertical bar over the whole height, up to 30% of the width: a bolt, a frame edge, a sticker.
    width = max(0.01, 0.3 * s)
    return A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(0.99, 0.99), hole_width_range=(width, width),
                           fill=0, p=1)


CORRUPTIONS: dict[str, Callable[[float], A.BasicTransform]] = {
    "blur": _blur, "noise": _noise, "jpeg": _jpeg, "perspective": _perspective, "darkness": _darkness,
    "occlusion": _occlusion,
}


# The embedded hard set's conditions: corruptions at severities that keep a plate legible to a person.
HARD_CONDITIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "night": (("darkness", 0.7), ("noise", 0.45)),
    "glare": (("glare", 0.9),),
    "blur": (("blur", 0.55),),
    "tilt": (("tilt", 0.6),),
    "dirt": (("dirt", 0.6), ("noise", 0.3)),
}


def _glare(s: float) -> A.BasicTransform:
    return A.RandomBrightnessContrast(brightness_limit=(0.5 * s, 0.5 * s), contrast_limit=(-0.5 * s, -0.5 * s), p=1)


def _tilt(s: float) -> A.BasicTransform:
    # fit_output: the whole plate stays in the crop (a kept size would cut the outer characters off).
    return A.Perspective(scale=(0.1 * s, 0.1 * s), keep_size=True, fit_output=True, p=1)


def _dirt(s: float) -> A.BasicTransform:
    # Small dark specks over the plate, not a bar over a character: the label must stay readable.
    holes = 2 + round(4 * s)
    return A.CoarseDropout(num_holes_range=(holes, holes), hole_height_range=(0.1, 0.25),
                           hole_width_range=(0.015, 0.03), fill=(70, 60, 50), p=1)


CORRUPTIONS_EXTRA = {"glare": _glare, "tilt": _tilt, "dirt": _dirt}


def harden(image: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """One crop under one of ``HARD_CONDITIONS`` (its corruptions applied in order, seeded)."""
    out = image[None]
    for step, (corruption, severity) in enumerate(HARD_CONDITIONS[condition]):
        transform = {**CORRUPTIONS, **CORRUPTIONS_EXTRA}[corruption]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = np.stack([A.Compose([transform(severity)], seed=seed * 7 + step)(image=out[0])["image"]])
    return out[0]


def corrupt(images: np.ndarray, corruption: str, severity: float, seed: int = 0) -> np.ndarray:
    """``images`` (N, H, W, 3 uint8) under one corruption at one severity (0: unchanged)."""
    if severity <= 0:
        return images
    pipeline = A.Compose([CORRUPTIONS[corruption](severity)], seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # albumentations warns about parameter ranges it clips
        return np.stack([pipeline(image=image)["image"] for image in images])


def robustness_curves(loaded: LoadedModel, data: PlateDataset, corruptions: tuple[str, ...] = tuple(CORRUPTIONS),
                      levels: tuple[float, ...] = LEVELS, limit: int | None = 1000,
                      progress: ProgressFn | None = None) -> pd.DataFrame:
    """CER and accuracy of ``loaded`` per corruption and severity on (the first ``limit``) crops of ``data``.

    Columns: ``corruption, severity, n, accuracy, cer`` (corpus CER: total edits over label characters).
    """
    from rapidfuzz.distance import Levenshtein

    images, labels = data.images[:limit], data.labels[:limit]
    total_chars = max(1, sum(len(t) for t in labels))
    rows = []
    steps = [(c, s) for c in corruptions for s in levels]
    clean: tuple[float, float] | None = None
    for done, (corruption, severity) in enumerate(steps, 1):
        if severity <= 0 and clean is not None:
            accuracy, cer = clean  # severity 0 is the clean crops for every corruption: read them once
        else:
            with torch.inference_mode():
                preds, _ = predict_images(loaded, corrupt(images, corruption, severity))
            edits = sum(Levenshtein.distance(t, p) for t, p in zip(labels, preds))
            accuracy = float(np.mean([t == p for t, p in zip(labels, preds)])) if labels else float("nan")
            cer = edits / total_chars
            if severity <= 0:
                clean = (accuracy, cer)
        rows.append({"corruption": corruption, "severity": severity, "n": len(labels), "accuracy": accuracy,
                     "cer": cer})
        if progress is not None:
            progress(done, len(steps))
    return pd.DataFrame(rows)


def save_curves(curves: pd.DataFrame, path: str | Path, meta: dict) -> None:
    """Keep curves as JSON (atomically), with what they were computed from."""
    write_json_atomic(Path(path), {"meta": meta, "rows": curves.to_dict("records")})


CURVE_COLUMNS = ("corruption", "severity", "cer")


def load_curves(path: str | Path) -> pd.DataFrame | None:
    """Curves kept by :func:`save_curves` (JSON) or written by ``robustness --out`` (CSV, one or two models),
    or None when absent, unreadable or without the columns ``corruption, severity, cer``."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path)
        else:
            table = pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError):
        return None
    return table if all(c in table.columns for c in CURVE_COLUMNS) else None


# ---- kept results and background jobs ------------------------------------------------------------------
# A job folder per (checkpoint file, dataset fingerprint, settings) under the workspace's robustness folder:
# ``curves.json`` once done, and while it runs the same ``status.json`` (state, pid, progress) and log file
# that training runs keep (``ocr_core.runs``), so a dead process reads as failed.

CURVES_FILE = "curves.json"
LOG_FILE = "robustness.log"
PHASE = "robustness"


@dataclass(frozen=True)
class Settings:
    """What a robustness run reads: the first ``limit`` crops, at ``levels``, under ``corruptions``."""

    limit: int = 1000
    levels: tuple[float, ...] = LEVELS
    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)

    def args(self) -> list[str]:
        """The ``robustness`` command-line options that ask for these settings."""
        return ["--limit", str(self.limit), "--levels", ",".join(f"{x:g}" for x in self.levels),
                "--corruptions", ",".join(self.corruptions)]


def job_key(checkpoint: str | Path, data_fingerprint: str, settings: Settings) -> str:
    """The kept result's key: the checkpoint file (path, size, mtime), the dataset's fingerprint, the settings."""
    text = (f"{file_fingerprint(checkpoint)};{data_fingerprint};{settings.limit};"
            f"{','.join(f'{x:g}' for x in settings.levels)};{','.join(settings.corruptions)}")
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def job_dir(key: str) -> Path:
    """The folder of the job (and kept curves) under ``key``."""
    return robustness_dir() / key


def job_state(folder: Path) -> str:
    """``finished`` (curves kept), ``running``, ``failed`` (a dead process, or an error), or ``none``."""
    if (folder / CURVES_FILE).is_file():
        return "finished"
    if not (folder / STATUS_FILE).is_file():
        return "none"
    state = run_state(folder)
    return state if state in ("running", "failed") else "failed"


def job_progress(folder: Path) -> tuple[int, int] | None:
    """(levels read, levels to read) of a running job, or None before its first report."""
    progress = (read_json(folder / STATUS_FILE) or {}).get("progress")
    try:
        return int(progress["done"]), int(progress["total"])
    except (KeyError, TypeError, ValueError):
        return None


def job_log_tail(folder: Path, lines: int = 12) -> str:
    """The last lines of a job's log (why it failed)."""
    try:
        text = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def launch(checkpoint: str | Path, data: str | Path, folder: Path, settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``python -m ocr_core robustness`` for one checkpoint as a detached process writing into
    ``folder`` (its status, progress and log there, then ``curves.json``); marked running at once.

    Raises:
        InputError: a job is already running in ``folder``.
    """
    if job_state(folder) == "running" or run_folder_locked(folder):
        raise InputError(f"robustness curves of {Path(checkpoint).name} are being computed already; wait for them")
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ocr_core", "robustness", str(checkpoint), "--data", str(data),
               *settings.args(), "--job-dir", str(folder)]
    with open(folder / LOG_FILE, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments as a list
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    write_status(folder, "running", pid=process.pid)
    return process


def cached_curves(checkpoint: str | Path, data_fingerprint: str) -> list[tuple[dict, pd.DataFrame]]:
    """Every kept result of ``checkpoint`` (as it is now) on the dataset of that fingerprint, newest first:
    (its meta, its curves)."""
    found = []
    identity = file_fingerprint(checkpoint)
    for path in sorted(robustness_dir().glob(f"*/{CURVES_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True):
        meta = (read_json(path) or {}).get("meta") or {}
        if meta.get("checkpoint_id") == identity and meta.get("data_fingerprint") == data_fingerprint:
            curves = load_curves(path)
            if curves is not None:
                found.append((meta, curves))
    return found
