"""Label corrections: decisions about samples whose label looks wrong, kept beside the dataset, applied on read.

A corrections file is JSON Lines, one decision per line, appended (never rewritten), the last decision
for a file winning: ``{"file": PATH, "action": "relabel", "text": "皖A12345"}``, ``{"file": ..., "action":
"invalid"}`` (a sign, a mirrored or unreadable crop: the sample drops out) or ``{"file": ..., "action":
"unsure"}`` (noted, nothing changes). ``apply_to_listing`` changes what ``score`` and ``train`` read, so the
dataset fingerprint changes with it; ``apply_to_frame`` re-labels a score frame without re-scoring (the
readings do not depend on the label).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ocr_core.atomic import atomic_path
from ocr_core.data.sources import SourceListing
from ocr_core.errors import InputError
from ocr_core.frame import INPUT_COLUMNS, COLUMNS, build_frame

ACTIONS = ("relabel", "invalid", "unsure")


@dataclass(frozen=True)
class Correction:
    """One decision about one image file."""

    file: str
    action: str
    text: str = ""


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def append_correction(path: str | Path, correction: Correction) -> None:
    """Append one decision (one ``write`` of one line in append mode: concurrent writers never interleave
    within a line).

    Raises:
        InputError: an unknown action, or a relabel without text.
    """
    if correction.action not in ACTIONS:
        raise InputError(f"unknown correction {correction.action!r}; choose one of {', '.join(ACTIONS)}")
    if correction.action == "relabel" and not correction.text.strip():
        raise InputError(f"a corrected label for {correction.file} needs its text")
    line = json.dumps({"file": _key(correction.file), "action": correction.action,
                       "text": correction.text.strip()}, ensure_ascii=False) + "\n"
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
                             '({"file": ..., "action": "relabel|invalid|unsure", "text": ...}); fix or remove it'
                             ) from None
        if correction.action not in ACTIONS:
            raise InputError(f"corrections file {path}, line {number}: unknown action {correction.action!r}")
        decisions[_key(correction.file)] = correction
    return decisions


def apply_to_listing(listing: SourceListing, decisions: dict[str, Correction]) -> SourceListing:
    """The listing with corrected labels, and without the samples marked invalid (they are listed as skipped)."""
    if not decisions:
        return listing
    samples, skipped = [], list(listing.skipped)
    for sample in listing.samples:
        decision = decisions.get(_key(sample.path))
        if decision is None or decision.action == "unsure":
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
    # The loss was the old label's; the new one's is known only by scoring again.
    loss = frame["loss"].where(~pd.Series(changed, index=frame.index))
    table = frame.assign(label=labels, loss=loss)[keep]
    extra = [c for c in table.columns if c not in COLUMNS or c in INPUT_COLUMNS or c in ("confidence", "loss")]
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
