"""What the sidebar offers, kept free of heavy imports (no torch, albumentations or plotly).

``app/main.py`` draws the sidebar from this module before it imports anything that loads a model, so the
sidebar and the page's title appear within a second or two of opening the page, even on a fresh server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from ocr_core import workspace
from ocr_core.runs import list_runs

EMBEDDED = "embedded:" + workspace.EMBEDDED_TESTSET
EMBEDDED_CAPTCHA = "embedded:" + workspace.EMBEDDED_CAPTCHA_TESTSET
EMBEDDED_HARD = "embedded:" + workspace.EMBEDDED_HARD_TESTSET
# What the sidebar's domain switch picks: (checkpoint, dataset) of each shipped demo.
DOMAINS = {"plates": "Licence plates", "captcha": "Captchas"}


def domain_defaults(domain: str) -> tuple[str, str]:
    """The shipped demo checkpoint and embedded test set of a domain."""
    if domain == "captcha":
        return str(workspace.CAPTCHA_DEMO_CHECKPOINT), EMBEDDED_CAPTCHA
    return str(workspace.DEMO_CHECKPOINT), EMBEDDED


def domains() -> list[str]:
    """The domains with a shipped demo checkpoint (captchas only when its checkpoint is there)."""
    return [d for d in DOMAINS if Path(domain_defaults(d)[0]).is_file()]
OTHER = "__other__"


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked: a checkpoint path and a dataset spec (None until the user gives one), and
    whether the model reads every crop with test-time augmentation."""

    checkpoint: str | None
    dataset: str | None
    tta: bool = False


def baseline_checkpoint() -> Path:
    """The shipped weaker baseline beside the demo checkpoint: Compare's default B when A is the demo."""
    return workspace.DEMO_CHECKPOINT.parent / "baseline.pt"


def checkpoint_options() -> dict[str, str]:
    """Checkpoint picker entries, value (a path, or OTHER) -> label: the demo (and its baseline), every run
    with a best.pt, uploads."""
    options = {str(workspace.DEMO_CHECKPOINT): "Demo checkpoint (demo.pt)"}
    if baseline_checkpoint().is_file():
        options[str(baseline_checkpoint())] = "Baseline (baseline.pt: the demo fine-tuned on 皖-heavy plates)"
    if "captcha" in domains():
        options[str(workspace.CAPTCHA_DEMO_CHECKPOINT)] = "Captcha demo checkpoint (captcha-demo.pt)"
    for row in list_runs(workspace.runs_dir()).itertuples(index=False):
        if row.best_checkpoint:
            accuracy = "" if pd.isna(row.best_val_accuracy) else f", val acc {row.best_val_accuracy:.3f}"
            options[str(row.best_checkpoint)] = f"Run {row.run} ({row.state}{accuracy})"
    for path in sorted(workspace.uploads_dir().glob("*.pt")):
        options[str(path)] = f"Uploaded: {path.name}"
    options[OTHER] = "Other checkpoint, ONNX model or predictions file…"
    return options


def upload_limit_mb() -> float:
    """The checkpoint upload limit in megabytes."""
    return workspace.max_upload_bytes() / 2**20


def _set_size(folder: Path) -> str:
    marker = (folder / ".complete").read_text(encoding="utf-8", errors="replace")
    for token in marker.split():
        if token.startswith("count="):
            return f" ({token[6:]} plates)"
    return ""


def dataset_options() -> dict[str, str]:
    """Dataset picker entries, value (EMBEDDED, a folder, or OTHER) -> label."""
    options = {EMBEDDED: "Embedded synthetic test set",
               EMBEDDED_HARD: "Embedded hard set (night, glare, blur, tilt, dirt)"}
    if "captcha" in domains():
        options[EMBEDDED_CAPTCHA] = "Embedded synthetic captchas"
    for folder in workspace.synthetic_sets():
        if folder.name not in (workspace.EMBEDDED_TESTSET, workspace.EMBEDDED_CAPTCHA_TESTSET,
                               workspace.EMBEDDED_HARD_TESTSET):
            options[str(folder)] = f"Synthetic: {folder.name}{_set_size(folder)}"
    options[OTHER] = "Other folder or manifest…"
    return options


def dataset_label(spec: str) -> str:
    """A short name of a dataset spec for headings."""
    if spec == EMBEDDED:
        return "embedded synthetic test set"
    if spec == EMBEDDED_HARD:
        return "embedded hard set"
    if spec == EMBEDDED_CAPTCHA:
        return "embedded synthetic captchas"
    return Path(spec).name or spec


def current_selection() -> Selection:
    """The sidebar's selection (set by app/main.py on every run)."""
    selection = st.session_state.get("selection")
    if isinstance(selection, Selection):
        return selection
    return Selection(str(workspace.DEMO_CHECKPOINT), EMBEDDED)


def path_picker(label: str, options: dict[str, str], key: str, placeholder: str = "", help: str | None = None,
                where: DeltaGenerator | None = None, choose: str | None = None,
                default: str | None = None) -> str | None:
    """A selectbox over ``options`` (value -> label) whose ``OTHER`` entry opens a path box.

    Returns the chosen value, the typed path, or None while nothing is chosen or the path box is empty.
    It starts on ``default`` when that is an option; otherwise, with ``choose``, it starts empty, showing
    that text, so nothing is loaded until the user picks. The path box's key is ``{key}_path``.
    """
    where = where or st.container()
    values = list(options)
    index = values.index(default) if default in options else (None if choose else 0)
    value = where.selectbox(label, values, format_func=lambda v: options.get(v, v), key=key, help=help,
                            index=index, placeholder=choose)
    if value is None:
        return None
    if value != OTHER:
        return value
    return where.text_input(f"{label} path", key=f"{key}_path", placeholder=placeholder).strip() or None
