"""Accuracy on the 297 real plate crops: the synthetic-only demo checkpoint against a fine-tuned one.

    python bench/real_accuracy.py [--finetuned workspace/runs/real-finetune/best.pt] [--format none|cn]
                                  [--tta] [--upscale checkpoint|linear|cubic] [--device auto]

Prints exact-plate accuracy and CER on all 297 crops, on the train and validation halves of the split
(the fine-tune trains on the first and never on the second), on 皖 and non-皖 crops, and on crops lit warm
or dark and the others (real_plates.is_warm_or_dark: street lamps, tungsten light, night). Per slice it
gives the province-glyph accuracy overall and per glyph group (province_皖: crops labelled 皖,
province_other: every other province; "-" where the slice has none) and the share of crops whose other
6-7 characters are all right (rest_acc). --format constrains the readings (README "Plate formats"), --tta
reads every crop moved sideways too (README "Test-time augmentation"). The 94x24 crops are enlarged to
each model's input as its checkpoint says (``InputSpec.upscale``); --upscale linear or cubic overrides that,
to compare both on one checkpoint.
Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
from real_plates import VAL_FRACTION, is_warm_or_dark, real_listing, skipped_line

from ocr_core.checkpoint import load_model
from ocr_core.data.dataset import decode_listing
from ocr_core.data.image_io import read_rgb
from ocr_core.device import pick_device
from ocr_core.errors import InputError
from ocr_core.preprocess import UPSCALE_MODES
from ocr_core.score import score_dataset, summarize
from ocr_core.workspace import DEMO_CHECKPOINT


def province_accuracy(frame: pd.DataFrame) -> float:
    """Share of rows whose first predicted character is the label's province glyph."""
    if frame.empty:
        return float("nan")
    return float((frame["pred"].str[:1] == frame["label"].str[:1]).mean())


def rest_accuracy(frame: pd.DataFrame) -> float:
    """Share of rows whose characters after the province glyph are all right."""
    if frame.empty:
        return float("nan")
    return float((frame["pred"].str[1:] == frame["label"].str[1:]).mean())


def report_rows(name: str, frame: pd.DataFrame, val_paths: set[str],
                dim_paths: set[str] | None = None) -> list[dict[str, object]]:
    """Table rows for one checkpoint: all crops, both split halves, the 皖 / non-皖 breakdown and, given
    the paths of the crops lit warm or dark, those crops and the others."""
    rows = []
    in_val = frame["path"].isin(val_paths)
    first = frame["label"].str[:1]
    slices = {
        "all 297": frame,
        "train split": frame[~in_val],
        "val split": frame[in_val],
        "皖 crops": frame[first == "皖"],
        "non-皖 crops": frame[first != "皖"],
    }
    if dim_paths is not None:
        dim = frame["path"].isin(dim_paths)
        slices |= {"warm or dark": frame[dim], "other light": frame[~dim]}
    for slice_name, part in slices.items():
        summary = summarize(part)
        part_first = part["label"].str[:1]
        rows.append({
            "checkpoint": name, "slice": slice_name, "n": summary.n, "accuracy": summary.accuracy,
            "cer": summary.cer, "province_acc": province_accuracy(part),
            "province_皖": province_accuracy(part[part_first == "皖"]),
            "province_other": province_accuracy(part[part_first != "皖"]),
            "n_other": int((part_first != "皖").sum()),
            "rest_acc": rest_accuracy(part),
        })
    return rows


def main() -> int:
    """Score each available checkpoint on the real crops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", default=str(DEMO_CHECKPOINT), help="synthetic-only checkpoint")
    parser.add_argument("--finetuned", default="workspace/runs/real-finetune/best.pt",
                        help="checkpoint fine-tuned on the training split (skipped if missing)")
    parser.add_argument("--format", default="none",
                        help="constrain readings to a plate format: none (default), cn, or another known format")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (ocr_core.score.tta_views)")
    parser.add_argument("--upscale", choices=("checkpoint", *UPSCALE_MODES), default="checkpoint",
                        help="how the crops are enlarged to the input: each checkpoint's own setting (default), "
                             "or linear or cubic for both")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    device = pick_device(args.device)
    listing, val_paths = real_listing()
    print(f"real crops: {len(listing.samples)}; validation split: {len(val_paths)} (split_by_hash, fraction "
          f"{VAL_FRACTION})")
    dim_paths = {s.path for s in listing.samples if is_warm_or_dark(read_rgb(s.path))}
    print(f"lit warm or dark: {len(dim_paths)} crops")
    rows: list[dict[str, object]] = []
    for name, path in (("synthetic-only", args.demo), ("fine-tuned", args.finetuned)):
        if not Path(path).is_file():
            print(f"note: {name} checkpoint {path} not found; run the README's fine-tune recipe first")
            continue
        try:
            loaded = load_model(path)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        loaded.model.to(device)
        if args.upscale != "checkpoint":
            loaded.input = replace(loaded.input, upscale=args.upscale)
        print(f"{name}: crops enlarged with upscale={loaded.input.upscale}")
        dataset = decode_listing(listing, loaded.input_size, upscale=loaded.input.upscale)
        fmt = None if args.format == "none" else args.format
        try:
            frame = score_dataset(loaded, dataset, device=device, text_format=fmt, tta=args.tta)
        except (InputError, ValueError) as exc:
            print(f"error: --format {args.format}: {exc}", file=sys.stderr)
            return 2
        rows += report_rows(name, frame, val_paths, dim_paths)
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(table.to_string(index=False, na_rep="-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
