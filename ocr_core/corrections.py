"""Label corrections: decisions about samples whose label looks wrong, kept beside the dataset, applied on read.

A corrections file is JSON Lines, one decision per line, appended (never rewritten), the last decision
for a file winning: ``{"file": PATH, "action": "relabel", "text": "皖A12345"}``, ``{"file": ..., "action":
"invalid"}`` (a sign, a mirrored or unreadable crop: the sample drops out), ``{"file": ..., "action":
"unsure"}`` (noted, nothing changes) or ``{"file": ..., "action": "keep"}`` (reviewed: the label is right,
nothing changes). ``apply_to_listing`` changes what ``score`` and ``train`` read, so the
dataset fingerprint changes with it; ``apply_to_frame`` re-labels a score frame without re-scoring (the
readings do not depend on the label).

The dashboard keeps one corrections file per dataset in the workspace (``corrections_path``) and walks
the samples most likely mislabelled first (``review_queue``: by label-issue score, then confidence).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ocr_core.atomic import atomic_path
from ocr_core.data.sources import SourceListing
from ocr_core.errors import InputError
from ocr_core.frame import COLUMNS, INPUT_COLUMNS, OPTIONAL_INPUTS, build_frame

ACTIONS = ("relabel", "invalid", "unsure", "keep")
MAX_LABEL_CHARS = 64


@dataclass(frozen=True)
class Correction:
    """One decision about one image file."""

    file: str
    action: str
    text: str = ""


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def file_keys(paths: Iterable[str]) -> list[str]:
    """The keys decisions are stored under (resolved paths) of image paths; resolving touches the disk, so
    callers that ask often keep them."""
    return [_key(p) for p in paths]


def append_correction(path: str | Path, correction: Correction) -> None:
    """Append one decision (one ``write`` of one line in append mode: concurrent writers never interleave
    within a line).

    Raises:
        InputError: an unknown action, or a relabel without text.
    """
    if correction.action not in ACTIONS:
        raise InputError(f"unknown correction {correction.action!r}; choose one of {', '.join(ACTIONS)}")
    text = clean_label(correction.text, Path(correction.file).name) if correction.action == "relabel" else ""
    line = json.dumps({"file": _key(correction.file), "action": correction.action,
                       "text": text}, ensure_ascii=False) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def load_corrections(path: str | Path) -> dict[str, Correction]:
    """The current decision per file (the last line about it wins); {} when there is no file.

    Raises:
        InputError: a line that is not a decision (its number is named).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    decisions: dict[str, Correction] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            correction = Correction(str(entry["file"]), str(entry["action"]), str(entry.get("text", "")))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"corrections file {path}, line {number}, is not a decision "
                             '({"file": ..., "action": "relabel|invalid|unsure|keep", "text": ...}); fix or remove it'
                             ) from None
        if correction.action not in ACTIONS:
            raise InputError(f"corrections file {path}, line {number}: unknown action {correction.action!r}")
        decisions[_key(correction.file)] = correction
    return decisions


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_label(text: str, what: str = "the sample") -> str:
    """A corrected label as it is stored: trimmed, Unicode NFC (a glyph typed two ways is one label).

    Raises:
        InputError: empty, longer than ``MAX_LABEL_CHARS``, or holding a line break or control character.
    """
    cleaned = unicodedata.normalize("NFC", str(text).strip())
    if not cleaned:
        raise InputError(f"a corrected label for {what} needs its text; type the text the image shows")
    if _CONTROL.search(cleaned):
        raise InputError(f"the corrected label for {what} holds a line break or control character; "
                         "type the text on one line")
    if len(cleaned) > MAX_LABEL_CHARS:
        raise InputError(f"the corrected label for {what} has {len(cleaned)} characters; "
                         f"a label has at most {MAX_LABEL_CHARS}")
    return cleaned


def corrections_path(dataset: str | Path, root: Path | None = None) -> Path:
    """The corrections file of a dataset (folder, manifest or predictions file) in the workspace.

    One file per dataset, named by the dataset and a hash of its resolved path, in ``corrections/`` of the
    workspace (``root``, default ``ocr_core.workspace.workspace_dir()``) beside ``scores/``: the decisions
    are about the images, so every checkpoint scored on the dataset shares them.
    """
    if root is None:
        from ocr_core.workspace import workspace_dir

        root = workspace_dir()
    resolved = Path(dataset).expanduser().resolve()
    name = re.sub(r"[^\w.-]+", "_", resolved.stem or "dataset")[:40]
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    return root / "corrections" / f"{name}-{digest}.jsonl"


def decision_of(decisions: dict[str, Correction], path: str | Path) -> Correction | None:
    """The current decision about the image at ``path``, or None."""
    return decisions.get(_key(path))


def review_queue(frame: pd.DataFrame) -> pd.DataFrame:
    """The wrong samples of a score frame, the most likely mislabelled first.

    Ordered by label-issue score (highest first; unknown scores last), then by confidence (a confident
    wrong reading is the next best sign of a wrong label), then by sample id.
    """
    return rank_by_label_issue(frame.loc[~frame["correct"].astype(bool)])


def rank_by_label_issue(frame: pd.DataFrame, minimum: float | None = None) -> pd.DataFrame:
    """Rows ordered by label-issue score, highest first (unknown last; ties: most confident first), keeping
    only those scoring at least ``minimum`` when it is given."""
    issue = frame["label_issue"].astype("float64")
    if minimum is not None:
        frame, issue = frame.loc[issue >= minimum], issue[issue >= minimum]
    order = pd.DataFrame({"unknown": issue.isna(), "issue": -issue.fillna(0.0),
                          "confidence": -frame["confidence"].astype("float64").fillna(-1.0),
                          "sample": frame["sample"]}, index=frame.index)
    return frame.loc[order.sort_values(["unknown", "issue", "confidence", "sample"], kind="stable").index]


def reviewed_paths(queue: pd.DataFrame, decisions: dict[str, Correction], keys: Sequence[str] | None = None
                   ) -> list[bool]:
    """Per row of ``queue``: whether its image already has a decision (``keys``: its ``file_keys``, if known)."""
    return [k in decisions for k in (keys if keys is not None else file_keys(queue["path"]))]


def apply_to_listing(listing: SourceListing, decisions: dict[str, Correction]) -> SourceListing:
    """The listing with corrected labels, and without the samples marked invalid (they are listed as skipped)."""
    if not decisions:
        return listing
    samples, skipped = [], list(listing.skipped)
    for sample in listing.samples:
        decision = decisions.get(_key(sample.path))
        if decision is None or decision.action in ("unsure", "keep"):
            samples.append(sample)
        elif decision.action == "relabel":
            samples.append(replace(sample, label=decision.text))
        else:
            skipped.append((sample.path, "marked not a valid sample in the corrections"))
    return SourceListing(listing.spec, listing.kind, samples, skipped)


def apply_to_frame(frame: pd.DataFrame, decisions: dict[str, Correction]) -> pd.DataFrame:
    """A score frame re-labelled by the decisions (invalid samples dropped), every derived column recomputed."""
    if not decisions or frame.empty:
        return frame
    resolved = [_key(p) for p in frame["path"]]
    labels, keep, changed = [], [], []
    for path, label in zip(resolved, frame["label"]):
        decision = decisions.get(path)
        keep.append(decision is None or decision.action != "invalid")
        relabel = decision is not None and decision.action == "relabel"
        labels.append(decision.text if relabel else label)
        changed.append(relabel)
    # The loss and the label-issue score were the old label's; the new one's are known only by scoring again.
    unchanged = ~pd.Series(changed, index=frame.index)
    table = frame.assign(label=labels, **{c: frame[c].where(unchanged) for c in ("loss", "label_issue")
                                          if c in frame.columns})[keep]
    extra = [c for c in table.columns if c not in COLUMNS or c in INPUT_COLUMNS or c in OPTIONAL_INPUTS]
    rebuilt = build_frame(table[extra].reset_index(drop=True))
    # oov is the model's verdict on the original label; a corrected one is judged again only by re-scoring.
    rebuilt["oov"] = table["oov"].to_numpy()
    return rebuilt


def export_manifest(listing: SourceListing, out: str | Path) -> Path:
    """The (corrected) listing as a JSON manifest ``[{file, text}]``, written atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps([{"file": s.path, "text": s.label} for s in listing.samples], ensure_ascii=False,
                                  indent=1), encoding="utf-8")
    return out
