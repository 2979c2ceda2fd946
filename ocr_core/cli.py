"""Command line: ``python -m ocr_core {synth,train,score,average,info,...}``.

Bad input ends with one line on stderr naming the file and exit code 2, never a traceback. Every
option is checked by the parser (its ``type=`` function): counts and sizes, rates, existing inputs,
outputs that are regular files with a supported suffix, known architectures, presets and styles.
Each subcommand imports what it needs when it runs, so ``--help`` answers without loading torch.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from ocr_core.atomic import atomic_path, check_output_folder, check_output_path
from ocr_core.errors import InputError

EXIT_INPUT_ERROR = 2
SCORE_SUFFIXES = (".parquet", ".csv")
CHECKPOINT_SUFFIXES = (".pt",)
MAX_COUNT = 10_000_000  # plates one synth call or --synth-mix may ask for
MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_BATCH = 65_536
MAX_WORKERS = 256
MAX_EPOCHS = 100_000
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line (exit code 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        """Print one sentence naming the command and exit with code 2."""
        self.exit(EXIT_INPUT_ERROR, f"error: {self.prog}: {message}; see {self.prog} --help\n")


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; {what} must be {low:,} to {high:,}") \
                from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; {what} must be {low:,} to {high:,}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


epochs_int = _int_in(1, MAX_EPOCHS, "epochs")
batch_int = _int_in(1, MAX_BATCH, "the batch size")
workers_int = _int_in(0, MAX_WORKERS, "workers")
seed_int = _int_in(0, MAX_SEED, "the seed")
count_int = _int_in(1, MAX_COUNT, "the plate count")
mix_int = _int_in(0, MAX_COUNT, "the plate count")
position_int = _int_in(0, 999, "the character position")


def positive_float(text: str) -> float:
    """A finite number above zero (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


def fraction(text: str) -> float:
    """A finite number from 0 (inclusive) to 1 (exclusive)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"{text} must be a fraction from 0 up to (not including) 1")
    return value


def existing_file(text: str) -> str:
    """The path of an existing regular file (links to one included)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a regular file")
    return str(path)


def existing_source(text: str) -> str:
    """The path of an existing folder or manifest file (its content is checked when it is read)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist; give a folder of images or a .json/.csv manifest")
    if not (path.is_dir() or path.is_file()):
        raise argparse.ArgumentTypeError(f"{text} is neither a folder nor a manifest file")
    return str(path)


def _input_error_type(check: Callable[[str], Any]) -> Callable[[str], str]:
    """Turn a checker raising InputError into an argparse type function."""
    def parse(text: str) -> str:
        try:
            check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = getattr(check, "__name__", "path")
    return parse


score_out = _input_error_type(lambda text: check_output_path(text, SCORE_SUFFIXES, "file"))
checkpoint_out = _input_error_type(lambda text: check_output_path(text, CHECKPOINT_SUFFIXES, "file"))
onnx_out = _input_error_type(lambda text: check_output_path(text, (".onnx",), "file"))
html_out = _input_error_type(lambda text: check_output_path(text, (".html",), "file"))
csv_out = _input_error_type(lambda text: check_output_path(text, (".csv",), "file"))
json_out = _input_error_type(lambda text: check_output_path(text, (".json",), "file"))
folder_out = _input_error_type(lambda text: check_output_folder(text, "folder"))
# torchrun sets WORLD_SIZE: then every process writes its own part into a folder.
score_or_parts_out = _input_error_type(
    lambda text: check_output_folder(text, "folder") if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    else check_output_path(text, SCORE_SUFFIXES, "file"))


def arch_name(text: str) -> str:
    """A registered architecture (the registry is imported only when the option is given)."""
    from ocr_core.models import ARCHITECTURES

    if text not in ARCHITECTURES:
        raise argparse.ArgumentTypeError(f"unknown architecture {text!r}; choose one of {', '.join(ARCHITECTURES)}")
    return text


def upscale_mode(text: str) -> str:
    """An ``InputSpec.upscale`` mode (ocr_core.preprocess is imported only when the option is given)."""
    from ocr_core.preprocess import UPSCALE_MODES

    if text not in UPSCALE_MODES:
        raise argparse.ArgumentTypeError(f"unknown upscale mode {text!r}; choose one of {', '.join(UPSCALE_MODES)}")
    return text


def vocab_preset(text: str) -> str:
    """A vocabulary preset name: plates or a synthetic style."""
    from ocr_core.data.synth import ALL_STYLES as STYLES

    names = ("plates", *STYLES)
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown vocabulary preset {text!r}; choose one of {', '.join(names)}")
    return text


def style_list(text: str) -> str:
    """A comma list of synthetic plate styles."""
    from ocr_core.data.synth import ALL_STYLES as STYLES

    styles = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in styles if s not in STYLES]
    if unknown or not styles:
        raise argparse.ArgumentTypeError(f"unknown style {','.join(unknown) or text!r}; choose from "
                                         f"{', '.join(STYLES)} or a comma list of them")
    return ",".join(styles)


def device_name(text: str) -> str:
    """auto, cpu, mps, cuda or cuda:N (whether it is available is checked when the command runs)."""
    name = text.strip().lower()
    if name in ("auto", "cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps")


def augment_spec(text: str) -> str:
    """default, none, or an existing pipeline JSON file (its transforms are checked when it is loaded)."""
    if text in ("default", "none"):
        return text
    existing_file(text)
    return text


def text_format(text: str) -> str:
    """``none``, ``auto``, a known format name or a regular expression that compiles."""
    from ocr_core.formats import compile_format

    if text in ("none", "auto"):
        return text
    try:
        compile_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _tqdm_progress(desc: str, unit: str = "img") -> tuple[tqdm, Callable[[int, int], None]]:
    bar = tqdm(total=0, desc=desc, unit=unit, dynamic_ncols=True, disable=None)  # bars on terminals only

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic plate set."""
    from ocr_core.atomic import write_text_atomic
    from ocr_core.data import synth

    styles = args.style.split(",")  # checked by style_list
    out = Path(args.out)
    bar, progress = _tqdm_progress("synth", "plate")
    started = time.perf_counter()
    with bar:
        paths = synth.generate(out, args.count, args.seed, styles=styles, province_skew=args.provinces,
                               progress=progress)
    write_text_atomic(out / ".complete", f"seed={args.seed} count={args.count} styles={','.join(styles)}\n")
    print(f"wrote {len(paths)} plates to {out} in {time.perf_counter() - started:.1f}s")
    return 0


class _LeftOut:
    """Marks a train option's parser default, so ``--resume`` can tell ``--seed 0`` from no ``--seed``."""


class _LeftOutInt(int, _LeftOut):
    pass


class _LeftOutFloat(float, _LeftOut):
    pass


class _LeftOutStr(str, _LeftOut):
    pass


def _written(value: object) -> bool:
    """Whether a train option was on the command line: not its (None, False or marked) parser default."""
    return not (value is None or value is False or isinstance(value, _LeftOut))


def _plain(value: object) -> object:
    """A marked default as its plain value (checkpoints load with ``weights_only``: no classes of ours)."""
    return type(value).__bases__[0](value) if isinstance(value, _LeftOut) else value


# The train options a run is started with and keeps on --resume: (flag, argparse dest, parser default).
_RUN_OPTIONS = (
    ("--data", "data", None), ("--extra-data", "extra_data", None), ("--synth-mix", "synth_mix", 0),
    ("--val", "val", None), ("--val-split", "val_split", 0.1), ("--arch", "arch", "small"),
    ("--batch-size", "batch_size", None), ("--lr", "lr", None), ("--augment", "augment", None),
    ("--init", "init", None), ("--vocab", "vocab", None), ("--seed", "seed", 0), ("--strict", "strict", False),
    ("--out", "out", None), ("--corrections", "corrections", None), ("--format", "format", None),
    ("--upscale", "upscale", None), ("--teacher", "teacher", None),
    ("--distill-position", "distill_position", None), ("--distill-temperature", "distill_temperature", None),
    ("--distill-weight", "distill_weight", None),
    ("--distill-other-positions", "distill_other_positions", None),
)


def cmd_train(args: argparse.Namespace) -> int:
    """Train or fine-tune a model, or resume a run."""
    from ocr_core.train import TrainOptions, train

    written = [flag for flag, dest, _ in _RUN_OPTIONS if _written(getattr(args, dest))]
    for _, dest, _ in _RUN_OPTIONS:
        setattr(args, dest, _plain(getattr(args, dest)))
    if args.resume:
        if written:
            raise InputError(f"--resume continues {args.resume} with the options it was started with, so "
                             f"{', '.join(written)} cannot change (only --epochs, --device and --workers can); "
                             f"start a new run with --init {Path(args.resume) / 'last.pt'} to change them")
        # 0 means "keep the run's total"; an explicit --epochs is 1 or more (checked by the parser).
        opts = TrainOptions(data="", out=args.resume, epochs=args.epochs if args.epochs is not None else 0,
                            device=args.device, workers=args.workers)
        result = train(opts, resume=args.resume)
    else:
        if not args.data or not args.out:
            raise InputError("train needs --data SRC and --out RUN_DIR (or --resume RUN_DIR)")
        _check_train_inputs(args)
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
            epochs=args.epochs if args.epochs is not None else 10, batch_size=args.batch_size, lr=args.lr, augment=args.augment or "default",
            init=args.init, device=args.device, seed=args.seed, workers=args.workers, strict=args.strict,
            vocab=args.vocab, extra_data=extra_data,
            text_format=None if args.format in (None, "none", "auto") else args.format,
            corrections=args.corrections, upscale=args.upscale, **_distill_options(args),
        )
        result = train(opts)
    from ocr_core.distributed import world_from_env

    if not world_from_env().is_main:
        return 0  # rank 0 reports for the run
    state = "stopped" if result.get("stopped") else "finished"
    best = float(result.get("best_accuracy", float("nan")))
    # The trainer starts from best = -1; a run stopped before its first validation has no best yet.
    best_text = f"{best:.4f}" if best >= 0 else "none (no epoch was validated)"  # NaN >= 0 is False
    print(f"{state}: best val_accuracy={best_text}; "
          f"checkpoints in {opts.out if not args.resume else args.resume}")
    return 0


def _distill_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainOptions of --teacher and its settings (which need a --teacher to mean anything)."""
    settings = {"distill_position": args.distill_position, "distill_temperature": args.distill_temperature,
                "distill_weight": args.distill_weight,
                "distill_other_positions": args.distill_other_positions}
    given = [f"--{name.replace('_', '-')}" for name, value in settings.items() if value is not None]
    if not args.teacher:
        if given:
            raise InputError(f"no --teacher was given, so {', '.join(given)} has nothing to distil from; add "
                             "--teacher CHECKPOINT or leave it out")
        return {}
    return {"teachers": list(args.teacher), **{k: v for k, v in settings.items() if v is not None}}


def _check_train_inputs(args: argparse.Namespace) -> None:
    """Check what a new run reads before its folder is touched or its dataset decoded.

    The run folder must not hold another run, the --init checkpoint must load (vocabulary, sizes, a
    forward pass) and the --augment pipeline must keep a crop's shape, dtype and channels.
    """
    from ocr_core.checkpoint import model_from_checkpoint, read_checkpoint
    from ocr_core.distributed import world_from_env
    from ocr_core.runs import check_new_run_folder

    # Under torchrun rank 0 alone owns the run folder; the others would see the folder it just claimed.
    if world_from_env().is_main:
        check_new_run_folder(Path(args.out))
    if args.init:
        loaded = model_from_checkpoint(read_checkpoint(args.init), str(args.init))
        input_size = loaded.input_size
    else:
        from ocr_core.models import arch_spec

        input_size = arch_spec(args.arch).input.size
    if args.augment not in (None, "default", "none"):
        from ocr_core.augment import load_pipeline

        load_pipeline(Path(args.augment), input_size=input_size)
    if args.teacher:
        from ocr_core.distill import load_teachers

        load_teachers(args.teacher, input_size, "")  # the labels' characters are checked once they are read


def _warn_about_frame(frame: Any, loaded: Any) -> None:
    """Warn about rows a summary would hide: NaN confidences (NaN weights) and NaN losses (long labels)."""
    import numpy as np

    log = logging.getLogger("ocr_core.cli")
    for warning in loaded.meta.get("warnings", []) or []:
        log.warning("%s", warning)
    confidence = frame["confidence"].to_numpy(dtype=float)
    bad = int(np.isnan(confidence).sum())
    if bad:
        log.warning("%d of %d rows have confidence NaN: checkpoint %s gives NaN outputs, so its readings are "
                    "meaningless; retrain or pick another checkpoint", bad, len(frame), loaded.path)
    loss = frame["loss"].to_numpy(dtype=float)
    unaligned = int((np.isnan(loss) & ~frame["oov"].to_numpy(dtype=bool) & ~np.isnan(confidence)).sum())
    if unaligned:
        steps = loaded.meta.get("time_steps", "its")
        log.warning("%d of %d rows have loss NaN: their labels need more than the model's %s time steps, so it "
                    "can never read them (rows kept in the frame)", unaligned, len(frame), steps)


def cmd_score(args: argparse.Namespace) -> int:
    """Score a dataset with a checkpoint and print the one-line summary."""
    import torch

    from ocr_core.data.dataset import skipped_summary
    from ocr_core.data.sources import SourceListing, list_source
    from ocr_core.distributed import barrier, join, leave, shard, world_from_env
    from ocr_core.formats import resolve_format
    from ocr_core.frame import record_scoring
    from ocr_core.onnx_io import load_any_model
    from ocr_core.score import MERGED_NAME, merge_score_parts, part_path, score_listing, summarize, write_frame_atomic

    world = world_from_env()
    if world.enabled and not args.out:
        raise InputError("a sharded score (torchrun) needs --out FOLDER for the parts of every process")
    if world.enabled and Path(args.out).suffix:
        raise InputError(f"under torchrun --out is a folder for the parts of every process, not {args.out}")
    device = join(world, args.device)
    if args.backend == "onnxruntime" and Path(args.checkpoint).suffix.lower() != ".onnx":
        from ocr_core.onnx_io import served_through_onnxruntime
        from ocr_core.workspace import onnx_dir

        loaded = served_through_onnxruntime(args.checkpoint, onnx_dir())
    else:
        loaded = load_any_model(args.checkpoint)
    loaded.model.to(device)
    listing = list_source(args.data)
    if args.corrections:
        from ocr_core.corrections import apply_to_listing, load_corrections

        listing = apply_to_listing(listing, load_corrections(args.corrections))
    if world.enabled:
        # Contiguous shards of the listing: the merged parts are the one-process frame, row for row.
        rows = shard(len(listing.samples), world)
        listing = SourceListing(listing.spec, listing.kind, listing.samples[rows.start:rows.stop],
                                listing.skipped if world.is_main else [])
    try:
        fmt = resolve_format(args.format, loaded.meta.get("text_format"), [s.label for s in listing.samples])
    except ValueError as exc:
        raise InputError(f"--format: {exc}") from None
    if fmt:
        print(f"readings constrained to the format {fmt}", file=sys.stderr)
    if args.tta:
        from ocr_core.score import TTA_SHIFTS

        print(f"test-time augmentation: each crop read {len(TTA_SHIFTS) + 1} times, moved sideways",
              file=sys.stderr)
    # Chunks of a one-process run with --out are kept beside it, so the same command resumes an
    # interrupted run; they go once the frame is written.
    parts = Path(f"{args.out}.parts") if args.out and not world.enabled else None
    bar, progress = _tqdm_progress("score")
    with bar, torch.inference_mode():
        streamed = score_listing(loaded, listing, device=device, batch_size=args.batch_size, progress=progress,
                                 text_format=fmt, strict=args.strict, parts=parts, tta=args.tta)
    frame = streamed.frame
    # Absolute, like the frame's image paths, so the record still names the files from elsewhere.
    read_from = str(Path(args.checkpoint).resolve())
    data_spec = str(Path(args.data).resolve()) if Path(args.data).exists() else args.data
    record_scoring(frame, read_from, data_spec, fmt, args.tta)
    if streamed.resumed_chunks:
        print(f"resumed: {streamed.resumed_chunks} chunk(s) read from {parts}", file=sys.stderr)
    if streamed.skipped:
        logging.getLogger("ocr_core.cli").warning("%s: %s", args.data, skipped_summary(streamed.skipped))
    _warn_about_frame(frame, loaded)
    if world.enabled:
        folder = check_output_folder(args.out, "--out")
        folder.mkdir(parents=True, exist_ok=True)
        write_frame_atomic(frame, part_path(folder, world.rank, world.size))
        barrier(world)
        leave()
        if not world.is_main:
            return 0
        frame = merge_score_parts(folder)
        record_scoring(frame, read_from, data_spec, fmt, args.tta)
        write_frame_atomic(frame, folder / MERGED_NAME)
    elif args.out:
        _write_frame(frame, args.out)
        if parts is not None:
            shutil.rmtree(parts, ignore_errors=True)
    print(summarize(frame).line())
    return 0


def cmd_merge_scores(args: argparse.Namespace) -> int:
    """Join the parts of a sharded score run into one frame."""
    from ocr_core.score import MERGED_NAME, merge_score_parts, summarize

    frame = merge_score_parts(args.folder)
    _write_frame(frame, args.out or str(Path(args.folder) / MERGED_NAME))
    print(summarize(frame).line())
    return 0


def cmd_import_seed(args: argparse.Namespace) -> int:
    """Convert a seed notebook's checkpoint to a PlateLens checkpoint."""
    from ocr_core.checkpoint import import_seed000, save_checkpoint
    from ocr_core.seed_import import import_seed

    if args.arch == "fcnn_bilstm":
        if args.alphabet is not None:
            raise InputError("seed 000's file carries its own alphabet; drop --alphabet")
        checkpoint = import_seed000(args.path)
    else:
        checkpoint = import_seed(args.arch, args.path, args.alphabet)
    save_checkpoint(checkpoint, check_output_path(args.out, CHECKPOINT_SUFFIXES, "--out"))
    print(f"wrote {args.out}: {checkpoint['arch']}, {checkpoint['head']['type']} head, "
          f"vocabulary {checkpoint['vocab']!r}")
    return 0


cmd_import_seed000 = cmd_import_seed


def _write_frame(frame: Any, out_arg: str) -> None:
    """Write a score frame to a user-named .parquet or .csv file, atomically."""
    from ocr_core.score import write_frame_atomic

    out = check_output_path(out_arg, SCORE_SUFFIXES, "--out")  # again: it may have changed meanwhile
    if out.suffix.lower() == ".csv":
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)
    else:
        write_frame_atomic(frame, out)


def cmd_import_predictions(args: argparse.Namespace) -> int:
    """Turn another OCR system's predictions file into a score frame."""
    from ocr_core.data.dataset import skipped_summary
    from ocr_core.predictions import import_predictions
    from ocr_core.score import summarize

    imported = import_predictions(args.path, args.data)
    log = logging.getLogger("ocr_core.cli")
    if imported.missing:
        log.warning("left out %d row(s) whose image does not exist: %s", len(imported.missing),
                    skipped_summary([(p, "missing") for p in imported.missing]))
    if imported.unlabelled:
        log.warning("left out %d row(s) whose image the dataset does not label: %s", len(imported.unlabelled),
                    skipped_summary([(p, "not in --data") for p in imported.unlabelled]))
    if args.out:
        _write_frame(imported.frame, args.out)
    print(summarize(imported.frame).line())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a checkpoint to ONNX and check it against the checkpoint before keeping it."""
    import numpy as np

    from ocr_core.checkpoint import read_checkpoint
    from ocr_core.data import synth
    from ocr_core.data.dataset import load_dataset
    from ocr_core.data.image_io import resize_to_input
    from ocr_core.onnx_io import export_onnx
    from ocr_core.preprocess import InputSpec

    spec = InputSpec.from_dict(read_checkpoint(args.checkpoint)["input"])
    if args.data:
        crops = load_dataset(args.data, spec.size, strict=False, upscale=spec.upscale).images[: args.check_crops]
    else:
        rng = np.random.default_rng(0)
        crops = np.stack([resize_to_input(synth.render_plate(synth.random_label("ccpd", rng), "ccpd", rng),
                                          *spec.size, spec.upscale) for _ in range(args.check_crops)])
    report = export_onnx(args.checkpoint, check_output_path(args.out, (".onnx",), "--out"), crops)
    print(f"wrote {report.path}: logits within {report.max_logit_difference:.1e} of the checkpoint and the same "
          f"readings on {report.crops} crops at batch sizes 1 and 5")
    return 0


def _frame_of(source: str, data: str | None) -> Any:
    """The score frame of a model (scored on ``data``) or of a predictions file (labels from it or ``data``)."""
    import torch

    from ocr_core.data.sources import list_source
    from ocr_core.onnx_io import load_any_model
    from ocr_core.predictions import PREDICTION_SUFFIXES, import_predictions
    from ocr_core.score import score_listing

    if Path(source).suffix.lower() in PREDICTION_SUFFIXES:
        return import_predictions(source, data).frame
    if not data:
        raise InputError(f"{source} is a model: give --data to score it on")
    loaded = load_any_model(source)
    bar, progress = _tqdm_progress(f"score {Path(source).name}")
    with bar, torch.inference_mode():
        return score_listing(loaded, list_source(data), progress=progress).frame


def cmd_report(args: argparse.Namespace) -> int:
    """Write one self-contained HTML report of a model's or a predictions file's readings."""
    from ocr_core.report import build_report, write_report

    curves = None
    if args.robustness:
        from ocr_core.robustness import load_curves

        curves = load_curves(args.robustness)
        if curves is None:
            raise InputError(f"--robustness {args.robustness} holds no robustness curves (corruption, severity, "
                             "cer); give a curves.json kept by robustness or the .csv of robustness --out")
    frame = _frame_of(args.source, args.data)
    other = _frame_of(args.compare, args.data) if args.compare else None
    out = check_output_path(args.out, (".html",), "--out")
    document = build_report(frame, args.title, Path(args.source).name, args.data or "its own images",
                            other, Path(args.compare).name if args.compare else "", curves)
    write_report(document, out)
    print(f"wrote {out} ({len(document) / 2**20:.1f} MB, opens offline)")
    return 0


def cmd_near_duplicates(args: argparse.Namespace) -> int:
    """Count and list exact and near-duplicate images within a dataset, or shared with another (leakage)."""
    from ocr_core.data.sources import list_source
    from ocr_core.near_duplicates import fingerprints, near_pairs

    def hashed(spec: str) -> Any:
        paths = [s.path for s in list_source(spec).samples]
        bar, progress = _tqdm_progress(f"hash {Path(spec).name}")
        with bar:
            return fingerprints(paths, progress)

    if args.against and args.trained_on:
        raise InputError("give --against (a training set) or --trained-on (a checkpoint that names its own), not both")
    first = hashed(args.data)
    if args.trained_on:
        from ocr_core.checkpoint import read_checkpoint
        from ocr_core.near_duplicates import training_paths

        sources = read_checkpoint(args.trained_on).get("training_sources")
        if not isinstance(sources, dict):
            raise InputError(f"{args.trained_on} does not record what it was trained on (checkpoints saved by "
                             "train since training_sources was added do); give --against TRAIN_DIR instead")
        paths, unread = training_paths(sources)
        for spec in unread:
            print(f"warning: training source {spec} is gone; its crops are not compared", file=sys.stderr)
        bar, progress = _tqdm_progress(f"hash the training crops of {Path(args.trained_on).name}")
        with bar:
            second = fingerprints(paths, progress)
        against = f"the {len(paths):,} training crops of {args.trained_on}"
    else:
        second = hashed(args.against) if args.against else None
        against = str(args.against)
    pairs = near_pairs(first, second, args.max_distance)
    where = f"between {args.data} and {against}" if second is not None else f"within {args.data}"
    print(f"{len(pairs):,} near-duplicate pair(s) {where} ({int(pairs['exact'].sum()):,} exact copies; "
          f"dHash within {args.max_distance} of 64 bits)")
    if second is not None:
        print(f"{pairs['a'].nunique():,} of the {len(first.paths):,} crops of {args.data} have a (near-)duplicate "
              "among them")
    for row in pairs.head(args.show).itertuples():
        print(f"  {row.distance:2d}  {'exact' if row.exact else 'near '}  {row.a}  {row.b}")
    if args.out:
        out = check_output_path(args.out, (".csv",), "--out")
        with atomic_path(out) as tmp:
            pairs.to_csv(tmp, index=False)
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    """CER against the severity of each corruption, for one checkpoint or two side by side."""
    from ocr_core.data.dataset import load_dataset
    from ocr_core.onnx_io import load_any_model
    from ocr_core.robustness import (CORRUPTIONS, CURVES_FILE, LEVELS, PHASE, Settings, job_dir, job_key,
                                     load_curves, robustness_curves, save_curves)
    from ocr_core.runs import ProgressWriter, RunLock, write_status
    from ocr_core.score import file_fingerprint

    settings = Settings(args.limit, args.levels or LEVELS, args.corruptions or tuple(CORRUPTIONS))
    if args.job_dir and args.compare:
        raise InputError("--job-dir keeps the curves of one checkpoint; leave out --compare")
    tables = []
    sources = [args.checkpoint, *([args.compare] if args.compare else [])]
    names = [Path(source).name for source in sources]
    if len(set(names)) < len(names):  # two runs' best.pt: name them by their paths
        names = [str(source) for source in sources]
    for source, name in zip(sources, names):
        loaded = load_any_model(source)
        data = load_dataset(args.data, loaded.input_size, strict=False, upscale=loaded.input.upscale)
        folder = Path(args.job_dir) if args.job_dir else job_dir(job_key(source, data.fingerprint(), settings))
        curves = load_curves(folder / CURVES_FILE)
        if curves is None:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                lock = RunLock(folder).acquire()
            except InputError:
                raise InputError(f"robustness curves of {Path(source).name} are being computed into {folder} by "
                                 "another process; wait for it to end") from None
            with lock:
                write_status(folder, "running")
                report = ProgressWriter(folder)
                bar, progress = _tqdm_progress(f"robustness {Path(source).name}", "level")

                def both(done: int, total: int, progress: Callable[[int, int], None] = progress,
                         report: ProgressWriter = report) -> None:
                    progress(done, total)
                    report(PHASE, done, total)

                with bar:
                    curves = robustness_curves(loaded, data, settings.corruptions, settings.levels,
                                               limit=settings.limit, progress=both)
                save_curves(curves, folder / CURVES_FILE, {
                    "checkpoint": str(source), "checkpoint_id": file_fingerprint(source), "data": str(args.data),
                    "data_fingerprint": data.fingerprint(), "limit": settings.limit,
                    "levels": list(settings.levels), "corruptions": list(settings.corruptions)})
                write_status(folder, "finished")
        tables.append(curves.assign(model=name))
    table = tables[0] if len(tables) == 1 else tables[0].merge(
        tables[1][["corruption", "severity", "cer"]], on=["corruption", "severity"], suffixes=("", "_b"))
    print(f"CER by corruption and severity (0: the crops as they are), {int(table['n'].iloc[0]):,} crops")
    header = f"{'corruption':<12} {'severity':>8} {'cer':>8}" + (f" {'cer B':>8}" if len(tables) > 1 else "")
    print(header)
    for row in table.itertuples():
        line = f"{row.corruption:<12} {row.severity:>8.2f} {row.cer:>8.4f}"
        print(line + (f" {row.cer_b:>8.4f}" if len(tables) > 1 else ""))
    if args.out:
        out = check_output_path(args.out, (".csv",), "--out")
        import pandas as pd

        with atomic_path(out) as tmp:
            pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
    return 0


def severity_levels(text: str) -> tuple[float, ...]:
    """``--levels``: comma-separated severities from 0 to 1 (sorted, repeats dropped)."""
    try:
        levels = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of severities from 0 to 1 separated by commas"
                                         ) from None
    if not levels or not all(0.0 <= x <= 1.0 for x in levels):  # NaN fails here too
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of severities from 0 to 1 separated by commas")
    return tuple(levels)


def corruption_list(text: str) -> tuple[str, ...]:
    """``--corruptions``: comma-separated names of ``ocr_core.robustness.CORRUPTIONS``."""
    from ocr_core.robustness import CORRUPTIONS

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in CORRUPTIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r} names no corruption or an unknown one; choose from "
                                         f"{', '.join(CORRUPTIONS)}")
    return names


def cmd_corrected_manifest(args: argparse.Namespace) -> int:
    """Write a dataset with its corrections applied as a JSON manifest ``[{file, text}]``."""
    from ocr_core.corrections import apply_to_listing, export_manifest, load_corrections
    from ocr_core.data.sources import list_source

    decisions = load_corrections(args.corrections)
    listing = apply_to_listing(list_source(args.data), decisions)
    out = export_manifest(listing, check_output_path(args.out, (".json",), "--out"))
    dropped = len(list_source(args.data).samples) - len(listing.samples)
    print(f"wrote {out}: {len(listing.samples):,} samples ({len(decisions):,} decisions, {dropped:,} dropped as not valid)")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    """Write the weight average of checkpoints fine-tuned from one checkpoint (a model soup)."""
    from ocr_core.checkpoint import average_checkpoints, model_from_checkpoint, read_checkpoint, save_checkpoint

    out = check_output_path(args.out, CHECKPOINT_SUFFIXES, "--out")
    names = [str(p) for p in args.checkpoints]
    soup = average_checkpoints([read_checkpoint(p) for p in names], names)
    model_from_checkpoint(soup, str(out))  # builds and runs once: a soup that cannot load is not written
    save_checkpoint(soup, out)
    print(f"wrote {out}: the average of {len(names)} checkpoints ({soup['arch']}); score it before use")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print a checkpoint's metadata as JSON."""
    from ocr_core.checkpoint import read_checkpoint
    from ocr_core.checkpoint_checks import bounded_info

    data = read_checkpoint(args.checkpoint)  # validated: types, ranges and a bounded metadata size
    meta = bounded_info(data)  # long lists and strings cut short
    meta["parameters"] = int(sum(t.numel() for t in data["state_dict"].values()))
    print(json.dumps(meta, ensure_ascii=False, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="python -m ocr_core", description="PlateLens engine: plate OCR data, "
                                     "training, scoring and error analysis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate synthetic plates as NNNNNN-LABEL.png files",
                       description="Generate synthetic plates as NNNNNN-LABEL.png files.")
    p.add_argument("--out", required=True, type=folder_out, help="output folder")
    p.add_argument("--count", type=count_int, default=1000, help="number of plates (default 1000)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed; same seed, same files (default 0)")
    p.add_argument("--style", type=style_list, default="ccpd",
                   help="ccpd, ccpd-green, ru, captcha, or a comma list (default ccpd)")
    p.add_argument("--provinces", choices=("uniform", "ccpd"), default="uniform",
                   help="province distribution: near uniform, or CCPD-like skew to 皖 (default uniform)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train, fine-tune (--init) or resume (--resume) a model",
                       description="Train a model (any registered architecture and its head); writes best.pt, "
                                   "last.pt and history.jsonl to --out.")
    p.add_argument("--data", type=existing_source, help="training source: folder, .json or .csv manifest")
    p.add_argument("--extra-data", type=existing_source, action="append",
                   help="another training source to mix in (repeatable)")
    p.add_argument("--synth-mix", type=mix_int, default=_LeftOutInt(0), metavar="N",
                   help="mix in N synthetic ccpd + ccpd-green plates with uniform provinces (generated once "
                        "into the workspace), so a fine-tune on one province's plates keeps the others")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--val", type=existing_source, help="validation source")
    group.add_argument("--val-split", type=fraction, default=_LeftOutFloat(0.1),
                       help="fraction of --data held out by file-name hash when --val is not given (default 0.1)")
    p.add_argument("--arch", type=arch_name, default=_LeftOutStr("small"),
                   help="architecture (default small); the README's Architectures table lists them all")
    p.add_argument("--epochs", type=epochs_int, default=None,
                   help="epochs, 1 or more (default 10; with --resume, the new total)")
    p.add_argument("--batch-size", type=batch_int, default=None,
                   help="batch size (default 128 on CPU, 256 on CUDA)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate of the one-cycle schedule (default 3e-3, or 2.5e-4 with --init)")
    p.add_argument("--augment", type=augment_spec, default=None,
                   help="augmentation: default (seed 000's pipeline), none, or an A.to_dict JSON file")
    p.add_argument("--init", type=existing_file,
                   help="checkpoint to fine-tune from (its vocabulary is extended as needed)")
    p.add_argument("--resume", metavar="RUN_DIR", type=folder_out, help="continue an interrupted run from its last.pt")
    p.add_argument("--vocab", type=vocab_preset, help="start from a preset vocabulary: plates, ccpd, ccpd-green, ru or captcha")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (cuda, then mps, then cpu), cpu, cuda or mps")
    p.add_argument("--seed", type=seed_int, default=_LeftOutInt(0), help="random seed (default 0)")
    p.add_argument("--workers", type=workers_int, default=None, help="DataLoader workers (default min(2, cores))")
    p.add_argument("--strict", action="store_true", help="fail on unreadable dataset files instead of skipping")
    p.add_argument("--out", type=folder_out, help="run folder (new, or without a run's history)")
    p.add_argument("--corrections", type=existing_file, default=None,
                   help="a corrections file (JSON Lines of relabel/invalid/unsure decisions) applied to --data")
    p.add_argument("--format", type=text_format, default=None,
                   help="a plate format the checkpoint carries (cn, cn-blue, cn-green, ru or a regular "
                        "expression); `score --format auto` then constrains readings to it")
    p.add_argument("--upscale", type=upscale_mode, default=None, metavar="{linear,cubic}",
                   help="how crops smaller than the model input are enlarged, for training and in the checkpoint "
                        "(default: the --init checkpoint's, else linear; README, Heads and input settings)")
    p.add_argument("--teacher", type=existing_file, action="append", metavar="CHECKPOINT",
                   help="distil from this checkpoint while training (repeatable: the teachers read "
                        "together); README, Distillation")
    p.add_argument("--distill-position", type=position_int, default=None, metavar="N",
                   help="the character the teachers choose for each label (default 0: a plate's province "
                        "glyph)")
    p.add_argument("--distill-temperature", type=positive_float, default=None, metavar="T",
                   help="how much the teachers' distribution is softened (default 2)")
    p.add_argument("--distill-weight", type=positive_float, default=None, metavar="W",
                   help="the distillation loss's weight next to the head's own loss (default 1)")
    p.add_argument("--distill-other-positions", action="store_true", default=None,
                   help="each step also distils one other position, the positions taking turns, so the "
                        "teachers teach the letters and digits too")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score a dataset and print n, accuracy and CER",
                       description="Score a dataset with a checkpoint; optionally save the score frame.")
    p.add_argument("--checkpoint", required=True, type=existing_file,
                   help="PlateLens .pt checkpoint, or an .onnx file exported by `export`")
    p.add_argument("--data", required=True, type=existing_source, help="folder, .json or .csv manifest")
    p.add_argument("--out", type=score_or_parts_out,
                   help="write the score frame to this .parquet (or .csv) file; under torchrun, a folder for "
                        "every process's part and the merged scores.parquet")
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--batch-size", type=batch_int, default=None,
                   help="inference batch size (default 64 on CPU, 1024 on CUDA)")
    p.add_argument("--strict", action="store_true", help="fail on unreadable dataset files instead of skipping")
    p.add_argument("--corrections", type=existing_file, default=None,
                   help="a corrections file (JSON Lines of relabel/invalid/unsure decisions) applied to --data")
    p.add_argument("--backend", choices=("pytorch", "onnxruntime"), default="pytorch",
                   help="run a .pt checkpoint with PyTorch (default) or export it once to ONNX (kept in the "
                        "workspace) and run it with onnxruntime, faster on CPUs (README, ONNX)")
    p.add_argument("--format", type=text_format, default="none",
                   help="constrain readings to a plate format: none (default); auto (the checkpoint's format, "
                        "else the one the labels follow); cn, cn-blue, cn-green, ru; or a regular expression")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: also read each crop moved 1-2%% of its width left and right and "
                        "keep the reading the views find most probable (5x the compute; README, Test-time "
                        "augmentation)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("merge-scores", help="join the parts of a sharded (torchrun) score run",
                       description="Join the part-NNNNN-of-NNNNN.parquet files that `torchrun ... score --out "
                                   "FOLDER` wrote into one score frame (FOLDER/scores.parquet by default).")
    p.add_argument("folder", type=existing_source, help="the folder of the parts")
    p.add_argument("--out", type=score_out, default=None, help="where to write the frame (.parquet or .csv)")
    p.set_defaults(func=cmd_merge_scores)

    p = sub.add_parser("import-predictions", help="turn another OCR system's predictions into a score frame",
                       description="Read a predictions file (CSV, TSV, JSON Lines or Parquet with columns file "
                                   "or path, pred, and optionally label and confidence) and build its score "
                                   "frame; relative paths resolve against the file's folder.")
    p.add_argument("path", type=existing_file, help="the predictions file")
    p.add_argument("--data", type=existing_source, default=None,
                   help="the dataset the images come from, for labels when the file has none")
    p.add_argument("--out", type=score_out, help="write the score frame to this .parquet (or .csv) file")
    p.set_defaults(func=cmd_import_predictions)

    p = sub.add_parser("import-seed", help="convert a seed notebook's checkpoint",
                       description="Convert what a seed notebook saved into a PlateLens checkpoint: fcnn_bilstm "
                                   "(000), resnet_bilstm (001), resnet18_gru (002), cnn_fixed or cnn_lstm_fixed "
                                   "(003), crnn_shi, crnn_compact or crnn_fixed (004).")
    p.add_argument("arch", type=arch_name, help="the notebook's architecture")
    p.add_argument("path", type=existing_file, help="the notebook's saved file")
    p.add_argument("--alphabet", default=None,
                   help="the characters the notebook trained on, in its order (default: the notebook's own); "
                        "seed 003 takes 'HIEROGLYPHS|OTHER' (or OTHER alone to keep its provinces)")
    p.add_argument("--out", required=True, type=checkpoint_out, help="where to write the PlateLens checkpoint (.pt)")
    p.set_defaults(func=cmd_import_seed)

    p = sub.add_parser("import-seed000", help="convert a seed-000 notebook checkpoint (= import-seed fcnn_bilstm)",
                       description="Convert a checkpoint saved by seed notebook 000's OCR.state_dict().")
    p.add_argument("path", type=existing_file, help="the notebook's .pt file")
    p.add_argument("--out", required=True, type=checkpoint_out, help="where to write the PlateLens checkpoint (.pt)")
    p.set_defaults(func=cmd_import_seed000, arch="fcnn_bilstm", alphabet=None)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked against it before it is kept)",
                       description="Export a checkpoint to ONNX with a dynamic batch axis and its vocabulary, "
                                   "head and input settings in the metadata; onnxruntime must read the check "
                                   "crops like the checkpoint (logits to 1e-4, identical readings) first.")
    p.add_argument("checkpoint", type=existing_file, help="PlateLens .pt checkpoint")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="onnx (the only format so far)")
    p.add_argument("--out", required=True, type=onnx_out, help="the .onnx file to write")
    p.add_argument("--data", type=existing_source, default=None,
                   help="crops to check the export on (default: synthetic plates)")
    p.add_argument("--check-crops", type=_int_in(1, 4096, "--check-crops"), default=32,
                   help="how many crops to check (default 32)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="write a self-contained HTML report to share",
                       description="Write one HTML file that opens offline: headline metrics, accuracy by "
                                   "length and province, the worst slices, the most confused characters, the "
                                   "24 worst samples with their crops, a comparison with --compare, and the robustness "
                                   "curves of --robustness.")
    p.add_argument("source", type=existing_file, help="a checkpoint (.pt, .onnx) or a predictions file")
    p.add_argument("--data", type=existing_source, default=None,
                   help="the dataset to score a model on (and labels for a predictions file without them)")
    p.add_argument("--compare", type=existing_file, default=None, help="a second model or predictions file")
    p.add_argument("--title", default="PlateLens report", help="the report's title")
    p.add_argument("--robustness", type=existing_file, default=None,
                   help="robustness curves to include: a curves.json under workspace/robustness/ or the .csv "
                        "written by robustness --out")
    p.add_argument("--out", required=True, type=html_out, help="the .html file to write")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("near-duplicates", help="exact and near-duplicate images, or train/test leakage",
                       description="Count and list image pairs whose difference hashes are within "
                                   "--max-distance bits (exact copies flagged), within --data or between --data "
                                   "and --against (e.g. a test set against its training set).")
    p.add_argument("data", type=existing_source, help="a folder or manifest")
    p.add_argument("--against", type=existing_source, default=None, help="a second source (e.g. the training set)")
    p.add_argument("--trained-on", type=existing_file, default=None,
                   help="a checkpoint: compare with the crops it was trained on (its training_sources, without "
                        "the validation hold-out)")
    p.add_argument("--max-distance", type=_int_in(0, 16, "--max-distance"), default=4,
                   help="dHash bits apart that still count as a near duplicate (default 4 of 64)")
    p.add_argument("--show", type=_int_in(0, 100_000, "--show"), default=20, help="pairs to print (default 20)")
    p.add_argument("--out", type=csv_out,
                   default=None, help="write every pair to this .csv file")
    p.set_defaults(func=cmd_near_duplicates)

    p = sub.add_parser("robustness", help="CER against the severity of blur, noise, JPEG, perspective, ...",
                       description="Read the dataset under each corruption (blur, noise, JPEG quality, "
                                   "perspective, darkness, occlusion) at 5 severities and print the CER of each; "
                                   "with --compare a second checkpoint reads the same corrupted crops. Curves are "
                                   "kept in the workspace, so a second run is instant.")
    p.add_argument("checkpoint", type=existing_file, help="PlateLens .pt checkpoint or .onnx model")
    p.add_argument("--data", required=True, type=existing_source, help="folder, .json or .csv manifest")
    p.add_argument("--compare", type=existing_file, default=None, help="a second checkpoint")
    p.add_argument("--limit", type=_int_in(1, 1_000_000, "--limit"), default=1000,
                   help="crops to read per level (default 1000, the first of the dataset)")
    p.add_argument("--levels", type=severity_levels, default=None,
                   help="severities from 0 (the crops as they are) to 1, comma-separated (default 0,0.25,0.5,0.75,1)")
    p.add_argument("--corruptions", type=corruption_list, default=None,
                   help="which corruptions, comma-separated (default all six)")
    p.add_argument("--job-dir", default=None,
                   help="keep the curves (curves.json), status and progress in this folder instead of the "
                        "workspace's (the dashboard's background runs use it)")
    p.add_argument("--out", type=csv_out,
                   default=None, help="write the curves to this .csv file")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("corrected-manifest", help="a dataset with its label corrections, as a JSON manifest",
                       description="Apply a corrections file to a dataset and write the result as a JSON "
                                   "manifest [{file, text}] that every command reads.")
    p.add_argument("data", type=existing_source, help="the dataset the corrections are about")
    p.add_argument("--corrections", required=True, type=existing_file, help="the corrections file (.jsonl)")
    p.add_argument("--out", required=True, type=json_out, help="the .json manifest to write")
    p.set_defaults(func=cmd_corrected_manifest)

    p = sub.add_parser("average", help="average the weights of fine-tunes of one checkpoint (a model soup)",
                       description="Average the weights of two or more checkpoints fine-tuned from one starting "
                                   "checkpoint (same architecture, head and input settings) into one checkpoint "
                                   "of the same size and speed. Fine-tunes from different starting points "
                                   "average to nonsense: score the result.")
    p.add_argument("checkpoints", nargs="+", type=existing_file, metavar="CHECKPOINT",
                   help="PlateLens .pt checkpoints (two or more)")
    p.add_argument("--out", required=True, type=checkpoint_out, help="the .pt file to write")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("info", help="print a checkpoint's metadata", description="Print a checkpoint's metadata.")
    p.add_argument("checkpoint", type=existing_file, help="PlateLens .pt checkpoint")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    if hasattr(signal, "SIGXFSZ") and threading_is_main():
        # Over a file-size limit (ulimit -f), a write then fails with EFBIG, which is reported below,
        # instead of the process being killed half-way through a temp file.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a bad option: its one line is printed; --help still exits as usual
        if exc.code in (0, None):
            raise
        return int(exc.code) if isinstance(exc.code, int) else EXIT_INPUT_ERROR
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except BrokenPipeError:
        # The reader went away (``info X.pt | head``): stop quietly; flushing at exit would raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        if exc.errno in _DISK_FULL or _looks_disk_full(first):
            _print_disk_full(exc.filename, exc.strerror or first)
        else:
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"error: {exc.strerror or first}{where}; check the path and its permissions", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _looks_disk_full(text: str) -> bool:
    lowered = text.lower()
    # numpy's tofile reports a short write as "N requested and M written", without an errno.
    return any(words in lowered for words in ("no space left", "file too large", "disk quota")) or (
        "requested and" in lowered and "written" in lowered)


def _print_disk_full(filename: str | None, why: str) -> None:
    where = f" writing {filename}" if filename else ""
    print(f"error: the disk is full or a file-size limit was reached{where} ({why}); nothing was half-written "
          "and earlier outputs are intact: free space and run again", file=sys.stderr)


def threading_is_main() -> bool:
    """Whether this is the main thread (signal handlers can only be set there)."""
    import threading

    return threading.current_thread() is threading.main_thread()
