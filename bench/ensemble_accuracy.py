"""Several synthetic-only checkpoints on the 297 real plate crops, alone and read together.

    python bench/ensemble_accuracy.py A.pt B.pt [C.pt ...] [--student S.pt] [--format none|cn] [--tta]
                                      [--device auto]

Asks whether independently trained models get *different* real crops wrong: if they do, their errors
are variance, which an ensemble (and a model distilled from one) can remove, rather than a bias that
every model of this renderer shares. Prints bench/real_accuracy.py's table (all 297, both halves of its
split, 皖 and other crops; exact, CER, province glyph, the other characters) for each checkpoint and for
two ways of reading them together:

- ``frame mean``: the models' per-step probabilities averaged, then decoded by the first model's head
  (needs the same number of steps; CTC models that align a glyph one step apart blur each other here);
- ``rescored``: every model's own reading and the frame-mean reading are candidates, and the candidate
  with the lowest summed loss over all models wins (a product of experts at the level of whole readings).

It also counts how many crops' province glyph each model alone reads right, lists the crops whose province
no model reads (with each model's reading and the half of the split each is in), and with ``--student``
counts how many of the glyphs that model 1 misses and another model reads a model distilled from them
reads. ``--format`` constrains every decoding (README "Plate formats"); with ``--tta`` every model reads
each crop in ``score --tta``'s five views, each model's own reading is their vote, every view's reading is
a candidate too, and the frame mean and the rescoring take every view of every model. Each checkpoint
enlarges the crops with its own ``InputSpec.upscale``. All checkpoints must spell the same characters.
Reading K models costs K times one model's time (5K with ``--tta``), so this is a measurement, not a
shipped reader.
Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rapidfuzz.distance import Levenshtein
from real_accuracy import report_rows
from real_plates import VAL_FRACTION, real_listing, skipped_line

from ocr_core.checkpoint import load_model
from ocr_core.data.dataset import decode_listing
from ocr_core.data.sources import SourceListing
from ocr_core.device import pick_device
from ocr_core.errors import InputError
from ocr_core.formats import compile_format
from ocr_core.heads import Head
from ocr_core.preprocess import to_model_input
from ocr_core.score import decode_readings, tta_views, vote_readings


def read_model(head: Head, views: Sequence[torch.Tensor], text_format: str | None = None,
               decoded: Sequence[tuple[list[str], np.ndarray]] | None = None) -> list[str]:
    """One model's readings: of its one view, or its views' vote (``vote_readings``, as ``score --tta``).
    ``decoded`` holds each view's ``decode_readings`` where the caller has them."""
    if decoded is None:
        decoded = [decode_readings(head, lp, text_format) for lp in views]
    if len(views) == 1:
        return decoded[0][0]
    return vote_readings(head, views, text_format, proposals=decoded)[0]


def read_together(head: Head, log_probs: Sequence[torch.Tensor | Sequence[torch.Tensor]],
                  text_format: str | None = None) -> dict[str, list[str]]:
    """Each model's readings, their frame mean's, and the candidate with the lowest summed loss.

    ``log_probs`` holds, per model, its (N, steps, classes) outputs for the same N crops, all spelled by
    ``head``: one tensor, or a list of them, one per test-time view (``ocr_core.score.tta_views``). A
    model with several views reads by their vote (``vote_readings``), the frame mean averages every view
    of every model, and the rescoring sums the loss over every view of every model. ``text_format``
    constrains every decoding (``ocr_core.formats``).
    """
    views = [[lp] if isinstance(lp, torch.Tensor) else list(lp) for lp in log_probs]
    decoded = [[decode_readings(head, lp, text_format) for lp in model] for model in views]
    readings = {f"model {k + 1}": read_model(head, model, text_format, each)
                for k, (model, each) in enumerate(zip(views, decoded, strict=True))}
    every_view = [lp for model in views for lp in model]
    mean = torch.log(torch.stack([lp.exp() for lp in every_view]).mean(0))
    readings["frame mean"] = decode_readings(head, mean, text_format)[0]
    view_readings = [preds for each in decoded if len(each) > 1 for preds, _ in each]
    proposals = [*readings.values(), *view_readings]
    candidates = [sorted({r[i] for r in proposals} - {""}) for i in range(len(mean))]
    rows = [(i, text) for i, texts in enumerate(candidates) for text in texts]
    rescored = ["" for _ in candidates]
    if rows:
        index = torch.tensor([i for i, _ in rows])
        texts = [text for _, text in rows]
        loss = sum(head.sample_losses(lp[index], texts) for lp in every_view)
        best: dict[int, float] = {}
        for (i, text), value in zip(rows, np.asarray(loss), strict=True):
            if i not in best or value < best[i]:
                best[i], rescored[i] = float(value), text
    readings["rescored"] = rescored
    return readings


def student_line(right: np.ndarray, learnt: np.ndarray) -> str:
    """What a student read of the province glyphs that model 1 misses and another model reads.

    ``right`` is (models, crops), whether each model reads a crop's province glyph; ``learnt`` (crops,) the
    same for the student (a model distilled from the others, or one to compare with them).
    """
    others = right[1:].any(0)
    gain = ~right[0] & others
    nobody = ~right.any(0)
    return (f"student reads {int(learnt.sum())} province glyphs right; of the {int(gain.sum())} that model 1 "
            f"misses and another model reads, {int((learnt & gain).sum())}; it misses "
            f"{int((~learnt & right[0]).sum())} that model 1 reads, and reads {int((learnt & nobody).sum())} "
            f"of the {int(nobody.sum())} that no model reads")


def unread_lines(paths: list[str], labels: list[str], model_readings: Sequence[Sequence[str]],
                 val_paths: Sequence[str]) -> list[str]:
    """One line per crop whose province glyph no model reads: its file, half, label and every reading."""
    val = set(val_paths)
    lines = []
    for i, (path, label) in enumerate(zip(paths, labels, strict=True)):
        reads = [readings[i] for readings in model_readings]
        if all(read[:1] != label[:1] for read in reads):
            half = "val" if path in val else "train"
            lines.append(f"  {Path(path).name} ({half} half): {label} -> {', '.join(reads)}")
    return lines


def read_crops(path: str, listing: SourceListing, paths: list[str], device: torch.device,
               tta: bool = False) -> tuple[Head, list[torch.Tensor]]:
    """A checkpoint's head and its log-probabilities (on the CPU) for the real crops, enlarged its own way.

    One tensor per view: the crops as they are, then with ``tta`` each of ``tta_views``'s shifted views.

    Raises:
        InputError: the checkpoint does not load, or a crop does not decode.
    """
    loaded = load_model(path)
    dataset = decode_listing(listing, loaded.input_size, upscale=loaded.input.upscale)
    if [s.path for s in dataset.samples] != paths:
        raise InputError(f"{path}: some real crops did not decode; bench/real_accuracy.py lists them")
    loaded.model.to(device).eval()
    views = tta_views(dataset.images) if tta else [dataset.images]
    with torch.inference_mode():
        return loaded.head, [loaded.head.log_probs(loaded.model(to_model_input(view, loaded.input, device)))
                             .float().cpu() for view in views]


def frame_of(paths: list[str], labels: list[str], preds: list[str]) -> pd.DataFrame:
    """The columns of a score frame that ``report_rows`` reads."""
    frame = pd.DataFrame({"path": paths, "label": labels, "pred": preds})
    frame["correct"] = frame["pred"] == frame["label"]
    frame["edit_distance"] = [Levenshtein.distance(a, b) for a, b in zip(labels, preds, strict=True)]
    frame["label_len"] = frame["label"].str.len()
    frame["confidence"] = np.nan
    frame["oov"] = 0
    return frame


def main() -> int:
    """Read the real crops with each checkpoint and with the ensemble; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="two or more synthetic-only checkpoints")
    parser.add_argument("--student", default=None, metavar="CKPT",
                        help="also read a model distilled from the checkpoints (train --teacher), and count "
                             "which of the province glyphs that only some of them read it learnt")
    parser.add_argument("--format", default="none",
                        help="constrain every reading to a plate format: none (default), cn, or another "
                             "known format (README \"Plate formats\")")
    parser.add_argument("--tta", action="store_true",
                        help="read every crop in test-time views too (README \"Test-time augmentation\"): "
                             "each model reads by its views' vote, and the rescoring sums the loss over "
                             "every view")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints to read together")
    text_format = None if args.format == "none" else args.format
    try:
        if text_format:
            compile_format(text_format)
    except ValueError as exc:
        parser.error(str(exc))
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    device = pick_device(args.device)
    listing, val_paths = real_listing()
    paths = [s.path for s in listing.samples]
    labels = [s.label for s in listing.samples]
    outputs, heads = [], []
    try:
        for path in [*args.checkpoints, *([args.student] if args.student else [])]:
            head, log_probs = read_crops(path, listing, paths, device, args.tta)
            outputs.append(log_probs)
            heads.append(head)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if any(h.to_dict() != heads[0].to_dict() for h in heads[1:]) or len({o[0].shape for o in outputs}) > 1:
        print("error: the checkpoints spell different characters or read a different number of steps; "
              "give checkpoints of one head", file=sys.stderr)
        return 2
    student = outputs.pop() if args.student else None
    readings = read_together(heads[0], outputs, text_format)
    right = np.array([[p[:1] == t[:1] for p, t in zip(readings[f"model {k + 1}"], labels, strict=True)]
                      for k in range(len(outputs))])
    print(f"real crops: {len(paths)}; validation split: {len(val_paths)} (split_by_hash, fraction {VAL_FRACTION})")
    print(f"format: {args.format}; test-time views: {len(outputs[0])}")
    for k, path in enumerate(args.checkpoints):
        print(f"model {k + 1}: {path}")
    print(f"province glyph read right by every model: {int(right.all(0).sum())}, by some but not all: "
          f"{int((right.any(0) & ~right.all(0)).sum())}, by none: {int((~right.any(0)).sum())}")
    model_readings = [readings[f"model {k + 1}"] for k in range(len(outputs))]
    for line in unread_lines(paths, labels, model_readings, val_paths):
        print(line)
    if student is not None:
        readings["student"] = read_model(heads[0], student, text_format)
        learnt = np.array([p[:1] == t[:1] for p, t in zip(readings["student"], labels, strict=True)])
        print(f"student: {args.student}")
        print(student_line(right, learnt))
    rows: list[dict[str, object]] = []
    for name, preds in readings.items():
        rows += report_rows(name, frame_of(paths, labels, preds), val_paths)
    table = pd.DataFrame(rows).drop(columns=["n_other"])
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(table[table["slice"].isin(["all 297", "train split", "val split"])].to_string(index=False, na_rep="-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
