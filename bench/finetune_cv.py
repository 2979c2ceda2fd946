"""Cross-validate a real-crop fine-tune recipe on the train half only, so a recipe is chosen without the
validation half.

    python bench/finetune_cv.py [--folds 3] [--seed 0] [--name NAME] [-- TRAIN ARGS...]

The train half of bench/real_accuracy.py's split (202 crops) is cut into ``--folds`` folds by a hash of
each file name (another salt than the half split). For each fold, ``python -m ocr_core train`` fine-tunes
on the other folds with the README's recipe (``--init ocr_core/assets/demo.pt --augment
ocr_core/assets/demo-augment.json --synth-mix 2000 --epochs 20 --lr 2.5e-4 --batch-size 32``); arguments
after ``--`` are appended and override it (argparse keeps the last). Each run's ``last.pt`` then reads its
held-out fold, plainly and with ``--format cn --tta``. Prints one row per fold and the pooled held-out
figures (every train-half crop read once, by a model that never saw it). The validation half is never
read. About 4 min a fold on 2 cores. Runs go to workspace/cv/NAME/fold-K (--root); a rerun with the same
arguments only reads them again. The pooled held-out readings are written as score frames,
ROOT/NAME/held-out.parquet and held-out-cn-tta.parquet, which the dashboard opens as a predictions file
(Worst predictions, Confusions; Compare for two recipes); the crops misread with cn + TTA are printed
under the table. Exits 0 with a note when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from real_accuracy import province_accuracy
from real_plates import REAL_PLATES, VAL_FRACTION, skipped_line

from ocr_core.checkpoint import load_model
from ocr_core.corrections import export_manifest
from ocr_core.data.dataset import decode_listing
from ocr_core.data.sources import Sample, SourceListing, list_source, split_by_hash
from ocr_core.errors import InputError
from ocr_core.frame import concat_frames
from ocr_core.score import score_dataset, write_frame_atomic
from ocr_core.workspace import DEMO_CHECKPOINT

DEMO_AUGMENT = DEMO_CHECKPOINT.with_name("demo-augment.json")
RECIPE = ["--init", str(DEMO_CHECKPOINT), "--augment", str(DEMO_AUGMENT), "--synth-mix", "2000", "--epochs", "20",
          "--lr", "2.5e-4", "--batch-size", "32"]


def fold_of(sample: Sample, folds: int) -> int:
    """The fold a crop belongs to, from a hash of its file name (salted apart from the half split)."""
    digest = hashlib.sha1(f"platelens-cv:{Path(sample.path).name}".encode()).digest()
    return int(int.from_bytes(digest[:8], "big") * folds // 2**64)


def held_out_frames(checkpoint: Path, held_out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The score frames of ``checkpoint`` on the held-out manifest: plain, and with --format cn --tta."""
    loaded = load_model(checkpoint)
    listing = list_source(held_out)
    dataset = decode_listing(listing, loaded.input_size, upscale=loaded.input.upscale)
    return score_dataset(loaded, dataset), score_dataset(loaded, dataset, text_format="cn", tta=True)


def row(name: str, plain: pd.DataFrame, mended: pd.DataFrame) -> dict[str, object]:
    """One table row: held-out crops, exact plate / province / CER plainly, and exact with cn + TTA."""
    return {"held out": name, "crops": len(plain), "exact": plain["correct"].mean(),
            "province": province_accuracy(plain), "CER": plain["cer"].mean(),
            "exact cn+tta": mended["correct"].mean(), "province cn+tta": province_accuracy(mended)}


def main() -> int:
    """Train one fine-tune per fold, read each held-out fold, print the table."""
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=3, help="folds of the train half (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="train --seed of every fold (default 0)")
    parser.add_argument("--name", default="recipe", help="runs go to ROOT/NAME (default recipe)")
    parser.add_argument("--root", default="workspace/cv", help="folder of the recipes' runs (default workspace/cv)")
    args = parser.parse_args(own)
    if args.folds < 2:
        parser.error(f"--folds needs 2 or more, got {args.folds}")
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    listing = list_source(REAL_PLATES)
    train_idx, _ = split_by_hash(listing.samples, VAL_FRACTION)
    train_half = [listing.samples[i] for i in train_idx]
    root = Path(args.root) / args.name
    print(f"train half: {len(train_half)} crops in {args.folds} folds; recipe: {' '.join(RECIPE + extra)}")
    rows: list[dict[str, object]] = []
    plains: list[pd.DataFrame] = []
    mendeds: list[pd.DataFrame] = []
    for k in range(args.folds):
        folder = root / f"fold-{k}"
        fit = [s for s in train_half if fold_of(s, args.folds) != k]
        held = [s for s in train_half if fold_of(s, args.folds) == k]
        folder.mkdir(parents=True, exist_ok=True)
        export_manifest(SourceListing(str(REAL_PLATES), "folder", fit), folder / "train.json")
        export_manifest(SourceListing(str(REAL_PLATES), "folder", held), folder / "held-out.json")
        run = folder / "run"
        command = ["-m", "ocr_core", "train", "--data", str(folder / "train.json"), "--val",
                   str(folder / "held-out.json"), *RECIPE, "--seed", str(args.seed), *extra, "--out", str(run)]
        done = folder / "done.txt"  # the command of a finished run: rerunning the same recipe only reads
        if not done.is_file() or done.read_text(encoding="utf-8") != " ".join(command):
            shutil.rmtree(run, ignore_errors=True)
            print(f"fold {k}: fine-tune on {len(fit)}, hold out {len(held)} (log: {folder / 'train.log'})",
                  flush=True)
            with (folder / "train.log").open("w", encoding="utf-8") as log:
                if subprocess.run([sys.executable, *command], stdout=log, stderr=subprocess.STDOUT,
                                  check=False).returncode:
                    print(f"error: fold {k}'s fine-tune failed; see {folder / 'train.log'}", file=sys.stderr)
                    return 2
            done.write_text(" ".join(command), encoding="utf-8")
        try:
            plain, mended = held_out_frames(run / "last.pt", folder / "held-out.json")
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        plains.append(plain)
        mendeds.append(mended)
        rows.append(row(f"fold {k}", plain, mended))
    plain, mended = concat_frames(plains), concat_frames(mendeds)
    rows.append(row("pooled", plain, mended))
    write_frame_atomic(plain, root / "held-out.parquet")
    write_frame_atomic(mended, root / "held-out-cn-tta.parquet")
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(pd.DataFrame(rows).to_string(index=False))
    wrong = mended[~mended["correct"]]
    print(f"misread with cn+tta ({len(wrong)}): "
          + ", ".join(f"{label}→{pred}" for label, pred in zip(wrong["label"], wrong["pred"])))
    print(f"frames: {root / 'held-out.parquet'}, {root / 'held-out-cn-tta.parquet'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
