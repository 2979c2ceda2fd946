"""Command line: ``python -m ocr_core {synth,train,score,import-seed000,info}``.

Bad input ends with one line on stderr naming the file and exit code 2, never a traceback.
Each subcommand imports what it needs when it runs, so ``--help`` answers without loading torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from ocr_core.atomic import atomic_path
from ocr_core.errors import InputError

EXIT_INPUT_ERROR = 2


def _tqdm_progress(desc: str, unit: str = "img") -> tuple[tqdm, Callable[[int, int], None]]:
    bar = tqdm(total=0, desc=desc, unit=unit, dynamic_ncols=True, disable=None)  # bars on terminals only

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic plate set."""
    from ocr_core.data import synth

    styles = [s.strip() for s in args.style.split(",") if s.strip()]
    unknown = [s for s in styles if s not in synth.STYLES]
    if unknown or not styles:
        raise InputError(f"unknown style {','.join(unknown) or args.style!r}; choose from {', '.join(synth.STYLES)}")
    if args.count <= 0:
        raise InputError(f"--count must be positive, got {args.count}")
    out = Path(args.out)
    bar, progress = _tqdm_progress("synth", "plate")
    started = time.perf_counter()
    with bar:
        paths = synth.generate(out, args.count, args.seed, styles=styles, province_skew=args.provinces,
                               progress=progress)
    (out / ".complete").write_text(f"seed={args.seed} count={args.count} styles={','.join(styles)}\n",
                                   encoding="utf-8")
    print(f"wrote {len(paths)} plates to {out} in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train or fine-tune a model, or resume a run."""
    from ocr_core.train import TrainOptions, train

    if args.resume:
        opts = TrainOptions(data="", out=args.resume, epochs=args.epochs or 0)
        result = train(opts, resume=args.resume)
    else:
        if not args.data or not args.out:
            raise InputError("train needs --data SRC and --out RUN_DIR (or --resume RUN_DIR)")
        extra_data = list(args.extra_data or [])
        if args.synth_mix:
            if args.synth_mix < 0:
                raise InputError(f"--synth-mix needs a plate count of 1 or more, got {args.synth_mix}")
            from ocr_core.workspace import ensure_synthetic_mix

            bar, progress = _tqdm_progress("synth-mix", "plate")
            with bar:
                extra_data.append(str(ensure_synthetic_mix(args.synth_mix, progress=progress)))
        opts = TrainOptions(
            data=args.data, out=args.out, val=args.val, val_split=args.val_split, arch=args.arch,
            epochs=args.epochs or 10, batch_size=args.batch_size, lr=args.lr, augment=args.augment or "default",
            init=args.init, device=args.device, seed=args.seed, workers=args.workers, strict=args.strict,
            vocab=args.vocab, extra_data=extra_data,
        )
        result = train(opts)
    state = "stopped" if result.get("stopped") else "finished"
    best = float(result.get("best_accuracy", float("nan")))
    # The trainer starts from best = -1; a run stopped before its first validation has no best yet.
    best_text = f"{best:.4f}" if best >= 0 else "none (no epoch was validated)"  # NaN >= 0 is False
    print(f"{state}: best val_accuracy={best_text}; "
          f"checkpoints in {opts.out if not args.resume else args.resume}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score a dataset with a checkpoint and print the one-line summary."""
    import torch

    from ocr_core.checkpoint import load_model
    from ocr_core.data.dataset import load_dataset
    from ocr_core.device import pick_device
    from ocr_core.score import score_dataset, summarize, write_frame_atomic

    device = pick_device(args.device)
    loaded = load_model(args.checkpoint)
    loaded.model.to(device)
    bar, progress = _tqdm_progress("decode")
    with bar:
        dataset = load_dataset(args.data, loaded.input_size, strict=args.strict, progress=progress)
    bar, progress = _tqdm_progress("score")
    with bar, torch.inference_mode():
        frame = score_dataset(loaded, dataset, device=device, batch_size=args.batch_size, progress=progress)
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() == ".csv":
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as tmp:
                frame.to_csv(tmp, index=False)
        else:
            write_frame_atomic(frame, out)
    print(summarize(frame).line())
    return 0


def cmd_import_seed000(args: argparse.Namespace) -> int:
    """Convert a seed-000 notebook checkpoint to a PlateLens checkpoint."""
    from ocr_core.checkpoint import import_seed000, save_checkpoint

    checkpoint = import_seed000(args.path)
    save_checkpoint(checkpoint, args.out)
    print(f"wrote {args.out}: fcnn_bilstm, vocabulary {checkpoint['vocab']!r}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print a checkpoint's metadata as JSON."""
    from ocr_core.checkpoint import read_checkpoint

    data = read_checkpoint(args.checkpoint)
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "train_state", "augment")}
    meta["parameters"] = int(sum(t.numel() for t in data["state_dict"].values()))
    print(json.dumps(meta, ensure_ascii=False, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m ocr_core", description="PlateLens engine: plate OCR data, "
                                     "training, scoring and error analysis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate synthetic plates as NNNNNN-LABEL.png files",
                       description="Generate synthetic plates as NNNNNN-LABEL.png files.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--count", type=int, default=1000, help="number of plates (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    p.add_argument("--style", default="ccpd", help="ccpd, ccpd-green, ru, or a comma list (default ccpd)")
    p.add_argument("--provinces", choices=("uniform", "ccpd"), default="uniform",
                   help="province distribution: near uniform, or CCPD-like skew to 皖 (default uniform)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train, fine-tune (--init) or resume (--resume) a model",
                       description="Train a CTC model; writes best.pt, last.pt and history.jsonl to --out.")
    p.add_argument("--data", help="training source: folder, .json or .csv manifest")
    p.add_argument("--extra-data", action="append", help="another training source to mix in (repeatable)")
    p.add_argument("--synth-mix", type=int, default=0, metavar="N",
                   help="mix in N synthetic ccpd + ccpd-green plates with uniform provinces (generated once "
                        "into the workspace), so a fine-tune on one province's plates keeps the others")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--val", help="validation source")
    group.add_argument("--val-split", type=float, default=0.1,
                       help="fraction of --data held out by file-name hash when --val is not given (default 0.1)")
    p.add_argument("--arch", default="small", help="architecture: small (default) or fcnn_bilstm")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 10; with --resume, the total)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 128 on CPU, 256 on CUDA)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of the one-cycle schedule (default 3e-3, or 2.5e-4 with --init)")
    p.add_argument("--augment", default=None,
                   help="augmentation: default (seed 000's pipeline), none, or an A.to_dict JSON file")
    p.add_argument("--init", help="checkpoint to fine-tune from (its vocabulary is extended as needed)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    p.add_argument("--vocab", help="start from a preset vocabulary: plates, ccpd, ccpd-green or ru")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda or mps")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default min(2, cores))")
    p.add_argument("--strict", action="store_true", help="fail on unreadable dataset files instead of skipping")
    p.add_argument("--out", help="run folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score a dataset and print n, accuracy and CER",
                       description="Score a dataset with a checkpoint; optionally save the score frame.")
    p.add_argument("--checkpoint", required=True, help="PlateLens .pt checkpoint")
    p.add_argument("--data", required=True, help="folder, .json or .csv manifest")
    p.add_argument("--out", help="write the score frame to this .parquet (or .csv) file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--batch-size", type=int, default=None,
                   help="inference batch size (default 64 on CPU, 1024 on CUDA)")
    p.add_argument("--strict", action="store_true", help="fail on unreadable dataset files instead of skipping")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("import-seed000", help="convert a seed-000 notebook checkpoint",
                       description="Convert a checkpoint saved by seed notebook 000's OCR.state_dict().")
    p.add_argument("path", help="the notebook's .pt file")
    p.add_argument("--out", required=True, help="where to write the PlateLens checkpoint")
    p.set_defaults(func=cmd_import_seed000)

    p = sub.add_parser("info", help="print a checkpoint's metadata", description="Print a checkpoint's metadata.")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
