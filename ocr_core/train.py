"""Training: a flat loop over in-memory crops (the model's head owns the loss), writing checkpoints and ``history.jsonl`` to a run folder.

A run folder holds ``options.json`` (what was asked), ``status.json`` (running, finished, stopped or
failed, with the process id), ``history.jsonl`` (one JSON line per epoch, appended and flushed so
another process can poll it), ``last.pt`` (resumable) and ``best.pt`` (by validation accuracy).
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from ocr_core import augment as augment_lib
from ocr_core.checkpoint import LoadedModel, make_checkpoint, model_from_checkpoint, read_checkpoint, save_checkpoint
from ocr_core.checkpoint_checks import unreadable_label_warning
from ocr_core.corrections import apply_to_listing, load_corrections
from ocr_core.data.dataset import PlateDataset, decode_listing, load_dataset
from ocr_core.data.sources import list_source, split_by_hash
from ocr_core.device import default_batch_size, uses_amp
from ocr_core.distill import Distiller, glyphs_at, glyphs_by_position, load_teachers
from ocr_core.distributed import World, any_rank, barrier, join, leave, sum_over_ranks, world_from_env
from ocr_core.errors import InputError
from ocr_core.heads import CTCHead, FixedHead, Head, head_for_labels, head_from_dict
from ocr_core.models import DEFAULT_ARCH, arch_config, arch_spec, build_model
from ocr_core.preprocess import InputSpec, to_model_input
from ocr_core.atomic import write_json_atomic
from ocr_core.runs import (HISTORY_FILE, OPTIONS_FILE, ProgressWriter, append_history, claim_run_folder,
                            write_status)
from ocr_core.score import build_score_frame, run_batch, summarize
from ocr_core.vocab import Vocab


SCRATCH_LR = 3e-3
# A fine-tune wants a far lower peak: on the real plates, 2.5e-4 read 0.951 of the validation crops over
# three seeds against 0.923 at 2e-3 (README, "Real plates").
FINETUNE_LR = 2.5e-4


def default_lr(init: str | None) -> float:
    """The peak learning rate when none is given: lower when fine-tuning from a checkpoint."""
    return FINETUNE_LR if init else SCRATCH_LR


@dataclass
class TrainOptions:
    """Everything a training run needs; saved to ``options.json`` and inside ``last.pt`` for ``--resume``."""

    data: str
    out: str
    val: str | None = None
    val_split: float = 0.1
    arch: str = DEFAULT_ARCH
    epochs: int = 10
    batch_size: int | None = None
    lr: float | None = None  # peak learning rate; None: default_lr(init), resolved before options.json is written
    augment: str = "default"  # "default", "none", or the path of an A.to_dict JSON file
    init: str | None = None
    device: str = "auto"
    seed: int = 0
    workers: int | None = None
    strict: bool = False
    vocab: str | None = None  # a preset name; by default the vocabulary comes from the training labels
    extra_data: list[str] = field(default_factory=list)
    text_format: str | None = None  # a plate format the checkpoint carries (ocr_core.formats), for score --format auto
    corrections: str | None = None  # a corrections file (ocr_core.corrections) applied to --data
    upscale: str | None = None  # InputSpec.upscale of the new model; None: the --init checkpoint's, else the arch's
    teachers: list[str] = field(default_factory=list)  # checkpoints to distil from (ocr_core.distill)
    distill_position: int = 0
    distill_temperature: float = 2.0
    distill_weight: float = 1.0
    distill_other_positions: bool = False  # one more position per step, in turn (ocr_core.distill)


class AugmentedCrops(Dataset):
    """Cached uint8 crops with their labels; the augmentation runs in DataLoader workers."""

    def __init__(self, images: np.ndarray, labels: list[str], pipeline: A.Compose | None) -> None:
        self.images = images
        self.labels = labels
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        image = self.images[index]
        if self.pipeline is not None:
            image = self.pipeline(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(image)), self.labels[index]


def collate(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    """Stack uint8 crops to (N, H, W, 3); the head encodes the labels when it computes the loss."""
    return torch.stack([item[0] for item in batch]), [item[1] for item in batch]


def _init_worker(_: int) -> None:
    # Ctrl-C in a terminal (and `pkill`) signals the whole process group: a worker that died of it would
    # crash the main process before it could save last.pt. The main process alone decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    info = torch.utils.data.get_worker_info()
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    dataset = info.dataset if info is not None else None
    if isinstance(dataset, AugmentedCrops) and dataset.pipeline is not None:
        dataset.pipeline.set_random_seed(seed)


def resolve_pipeline(spec: str, input_size: tuple[int, int] | None = None) -> A.Compose | None:
    """The augmentation pipeline for ``default``, ``none`` or a JSON file path (checked on crops of
    ``input_size``, default 32x128: see ``ocr_core.augment.validate_pipeline``)."""
    if spec in ("", "none"):
        return None
    if spec == "default":
        return augment_lib.default_pipeline()
    return augment_lib.load_pipeline(Path(spec), input_size=input_size)


def transfer_weights(model: nn.Module, state: dict[str, torch.Tensor], old_classes: int | tuple[int, ...]) -> None:
    """Load ``state`` into ``model``, growing output layers whose first dimension was ``old_classes``.

    Rows of the old vocabulary keep their trained weights; rows of new characters keep their fresh init.
    """
    target = model.state_dict()
    for name, old in state.items():
        new = target.get(name)
        if new is None:
            continue
        if new.shape == old.shape:
            target[name] = old
        elif old.shape[0] == old_classes and new.shape[1:] == old.shape[1:] and new.shape[0] > old_classes:
            grown = new.clone()
            grown[:old_classes] = old
            target[name] = grown
        else:
            raise InputError(f"cannot fine-tune: layer {name} has shape {tuple(old.shape)} in --init "
                             f"but {tuple(new.shape)} here; use the same --arch")
    model.load_state_dict(target)


def grown_head(head: CTCHead | FixedHead, labels: list[str]) -> CTCHead | FixedHead:
    """The head of a checkpoint we fine-tune from, with the new characters of ``labels`` appended.

    Only a CTC head with nothing after its characters can grow (new ids go after the old ones, so the
    trained output rows keep their meaning); a fixed head must already know every character.

    Raises:
        InputError: the labels need characters the head cannot take.
    """
    new = head.vocab.extended(labels).chars[len(head.vocab):]
    if not new:
        return head
    if isinstance(head, CTCHead) and head.extra == 0 and head.blank < head.first:
        return CTCHead(head.chars + new, head.blank, head.first)
    raise InputError(f"cannot fine-tune: the labels have characters {new!r} that the --init checkpoint's "
                     f"{head.kind} head cannot add; train from scratch or drop those samples")


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so the run can save ``last.pt`` and exit cleanly."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a test thread): no handler
                pass
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.raised = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# A resumed run's own random streams (dropout, the workers' augmentations) start here, apart from the
# streams its first epochs drew from ``seed``: a large odd step per finished epoch.
_RESUME_SEED_STEP = 1_000_003


def shuffle_state_at(loader: DataLoader, epoch: int) -> torch.Tensor:
    """The state of a one-process loader's shuffle generator when epoch ``epoch`` starts drawing from it.

    Replays, on a copy seeded like ``loader.generator`` is at the start of a run, what ``epoch``
    uninterrupted epochs draw from it: a new DataLoader iterator draws one int64 (its workers' base seed;
    persistent workers keep one iterator for the whole run) and a full pass of its RandomSampler draws the
    epoch's permutation. Only indices are drawn, no data is read.
    """
    if loader.generator is None or not isinstance(loader.sampler, RandomSampler):
        raise ValueError("shuffle_state_at needs a DataLoader built with shuffle=True and a generator")
    replay = torch.Generator()
    replay.set_state(loader.generator.get_state())
    sampler = RandomSampler(loader.dataset, generator=replay)  # type: ignore[arg-type]
    for past in range(epoch):
        if past == 0 or not loader.persistent_workers:
            torch.empty((), dtype=torch.int64).random_(generator=replay)
        for _ in sampler:
            pass
    return replay.get_state()


def resumed_batches(loader: DataLoader, epoch: int, seed: int) -> Iterator[Any]:
    """Iterate a freshly built loader as epoch ``epoch`` of an uninterrupted run, in that run's order.

    Before, a resumed run's generator restarted from the seed, so its epochs repeated the first epochs'
    orders. Persistent workers draw their base seed once, when the first iterator is made, and that
    iterator already draws the first indices; so the sampler gets a generator of its own, set to where the
    uninterrupted run's would be, and the workers a base seed from ``seed`` and ``epoch``, so their
    augmentations do not repeat the first epochs' draws either. Under torchrun the DistributedSampler
    orders each epoch by its number already, and only the workers' seed changes. The replay follows this
    loader's workers: a run resumed with ``--workers 0`` after 1 or more (or the other way) gets an order
    of its own, not the first run's.
    """
    if loader.generator is not None and not isinstance(loader.sampler, RandomSampler):
        # A DistributedSampler orders each epoch by its number already; only the workers' seed is new.
        loader.generator.manual_seed(_resumed_seed(seed, epoch))
        return iter(loader)
    start = shuffle_state_at(loader, epoch)
    assert loader.generator is not None and isinstance(loader.sampler, RandomSampler)  # checked above
    if loader.persistent_workers:
        order = torch.Generator()
        order.set_state(start)
        loader.sampler.generator = order
        loader.generator.manual_seed(_resumed_seed(seed, epoch))
    else:
        loader.generator.set_state(start)
    return iter(loader)


def _resumed_seed(seed: int, finished_epochs: int) -> int:
    """The seed of a run resumed after ``finished_epochs`` (the run's own when 0), under numpy's 2**32."""
    return (seed + _RESUME_SEED_STEP * finished_epochs) % 2**32


def training_sources(opts: TrainOptions, fingerprint: str) -> dict[str, Any]:
    """What a run trains on, for its checkpoints: resolved sources, the fraction of ``data`` held out for
    validation (``split_by_hash``; 0 with ``--val``), the corrections file, the training set's fingerprint
    and, when it distils, its teachers (checkpoint paths)."""
    def resolved(spec: str) -> str:
        return str(Path(spec).expanduser().resolve())

    record = {"data": resolved(opts.data), "val_split": 0.0 if opts.val else float(opts.val_split or 0.0),
              "extra_data": [resolved(spec) for spec in opts.extra_data],
              "corrections": resolved(opts.corrections) if opts.corrections else None,
              "fingerprint": fingerprint}
    if opts.teachers:
        record["teachers"] = [resolved(path) for path in opts.teachers]
    return record


def _load_splits(opts: TrainOptions, input_spec: InputSpec,
                 report: ProgressWriter | None = None) -> tuple[PlateDataset, PlateDataset | None]:
    input_size, upscale = input_spec.size, input_spec.upscale
    bar = tqdm(total=0, desc="decode", unit="img", leave=False, dynamic_ncols=True, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if report is not None:
            report("decode", done, total)

    decisions = load_corrections(opts.corrections) if opts.corrections else {}
    try:
        data = decode_listing(apply_to_listing(list_source(opts.data), decisions), input_size, strict=opts.strict,
                              progress=progress, upscale=upscale)
        extra = [load_dataset(spec, input_size, strict=opts.strict, progress=progress, upscale=upscale)
                 for spec in opts.extra_data]
        if opts.val:
            val: PlateDataset | None = load_dataset(opts.val, input_size, strict=opts.strict, progress=progress,
                                                    upscale=upscale)
            train = data
        elif opts.val_split > 0:
            train_idx, val_idx = split_by_hash(data.samples, opts.val_split)
            train, val = data.subset(train_idx), (data.subset(val_idx) if val_idx else None)
        else:
            train, val = data, None
    finally:
        bar.close()
    if extra:
        train = PlateDataset(
            train.spec, train.kind, train.samples + [s for d in extra for s in d.samples],
            np.concatenate([train.images, *[d.images for d in extra]]),
            np.concatenate([train.original_sizes, *[d.original_sizes for d in extra]]),
        )
    if len(train) == 0:
        raise InputError(f"dataset {opts.data} leaves no training samples after the validation split")
    return train, val


@torch.inference_mode()
def evaluate(model: nn.Module, head: Head, spec: InputSpec, val: PlateDataset, device: torch.device,
             batch_size: int) -> dict[str, float]:
    """Validation loss (per label character), exact-plate accuracy and corpus CER of ``model`` on ``val``."""
    model.eval()
    preds: list[str] = []
    conf = np.zeros(len(val), np.float64)
    loss = np.zeros(len(val), np.float32)
    labels = val.labels
    vocab = head.vocab
    for start in range(0, len(val), batch_size):
        stop = min(start + batch_size, len(val))
        out = run_batch(model, head, spec, val.images[start:stop], device, labels[start:stop])
        preds += out.preds
        conf[start:stop], loss[start:stop] = out.confidence, out.loss
    summary = summarize(build_score_frame(val, preds, conf, loss, vocab))
    # Per label character, like the heads' training losses, so both curves share units.
    per_char = loss / np.maximum([len(vocab.encode(label)) for label in labels], 1)
    finite = per_char[np.isfinite(per_char)]
    return {
        "val_loss": float(finite.mean()) if finite.size else float("nan"),
        "val_accuracy": summary.accuracy,
        "val_cer": summary.cer,
    }


def train(opts: TrainOptions, resume: str | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a run and return its best metrics. See the module doc for the run folder.

    Under ``torchrun`` every process trains a shard of each epoch (DistributedDataParallel); rank 0 alone
    writes the run folder. ``--resume`` works with another number of processes.

    Raises:
        InputError: a bad dataset, augmentation file, checkpoint or device.
    """
    world = world_from_env()
    state: dict[str, Any] | None = None
    if resume:
        last = Path(resume) / "last.pt"
        checkpoint = read_checkpoint(last)
        state = checkpoint.get("train_state")
        if not state:
            raise InputError(f"{last} has no training state to resume from; start a new run with --init instead")
        saved = dict(state["options"])
        # The saved options win; only the epoch total may grow (opts.epochs is 0 when not given).
        saved.update({"out": str(Path(resume)), "epochs": max(opts.epochs, int(saved["epochs"]))})
        # Where it runs may change (another machine, a GPU): a device or worker count given wins.
        if opts.device != "auto":
            saved["device"] = opts.device
        if opts.workers is not None:
            saved["workers"] = opts.workers
        opts = TrainOptions(**saved)
    if opts.lr is None:
        opts = replace(opts, lr=default_lr(opts.init))
    out = Path(opts.out)
    if not world.is_main:
        try:
            with _StopFlag() as stop:
                return _train(opts, out, stop, state, None, world)
        finally:
            leave()
    # One writer per run folder, and a new run never appends to another run's history (ocr_core.runs).
    with claim_run_folder(out, new_run=not resume):
        write_json_atomic(out / OPTIONS_FILE, asdict(opts))
        write_status(out, "running")
        try:
            with _StopFlag() as stop:
                result = _train(opts, out, stop, state, on_epoch, world)
        except BaseException as exc:
            write_status(out, "failed", error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            raise
        finally:
            leave()
        write_status(out, "stopped" if result.get("stopped") else "finished")
    return result


@dataclass
class _Run:
    """Everything a run holds between its steps: data, model, head, optimizer and the best so far."""

    opts: TrainOptions
    out: Path
    world: World
    device: torch.device
    arch: str
    config: dict[str, Any]
    head: CTCHead | FixedHead
    input_spec: InputSpec
    model: nn.Module  # the DDP wrapper under torchrun; ``net`` is the model itself
    net: nn.Module
    loader: DataLoader
    sampler: DistributedSampler | None
    val_set: PlateDataset | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.OneCycleLR
    scaler: torch.amp.GradScaler
    augment: dict[str, Any] | None
    fingerprint: str
    report: Callable[..., None]
    sources: dict[str, Any] | None = None
    distiller: Distiller | None = None
    start_epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf


def _setup(opts: TrainOptions, out: Path, state: dict[str, Any] | None, world: World) -> _Run:
    """Data, head, model (wrapped for DDP under torchrun), loader, optimizer and schedule of a run."""
    seed = _resumed_seed(opts.seed, int(state["epoch"]) if state else 0)
    _set_seed(seed)
    device = join(world, opts.device)

    init_ckpt = read_checkpoint(opts.init) if opts.init else None
    resume_ckpt = read_checkpoint(out / "last.pt") if state else None
    base = resume_ckpt or init_ckpt
    arch = base["arch"] if base else opts.arch
    spec = arch_spec(arch)
    input_spec = InputSpec.from_dict(base["input"]) if base else spec.input
    if opts.upscale and resume_ckpt is None:
        input_spec = replace(input_spec, upscale=opts.upscale)
    config = base["arch_config"] if base else arch_config(arch)
    pipeline = resolve_pipeline(opts.augment, input_spec.size)  # checked on the model's crops, before decoding
    if pipeline is not None:
        # Compose seeds itself from OS entropy: with --workers 0 it augments in this process, unseeded
        # until now (DataLoader workers reseed their copies in _init_worker).
        pipeline.set_random_seed(seed)
    report: Callable[..., None] = ProgressWriter(out) if world.is_main else (lambda *_: None)
    train_set, val_set = _load_splits(opts, input_spec, report if world.is_main else None)

    old: LoadedModel | None = None
    if resume_ckpt is not None:
        head = head_from_dict(resume_ckpt["head"])
    elif init_ckpt is not None:
        old = model_from_checkpoint(init_ckpt, str(opts.init))
        head = grown_head(old.head, train_set.labels)
    else:
        preset = Vocab.preset(opts.vocab).extended(train_set.labels) if opts.vocab else None
        head = head_for_labels(spec.head, train_set.labels, preset, spec.positions, spec.separate_first)

    net = build_model(arch, head.output_classes, config)
    if resume_ckpt is not None:
        net.load_state_dict(resume_ckpt["state_dict"])
    elif old is not None:
        transfer_weights(net, old.model.state_dict(), old.head.output_classes)
    net.to(device)
    if uses_amp(device):
        net = net.to(memory_format=torch.channels_last)
    distiller = None
    if opts.teachers:
        glyphs = glyphs_at(train_set.labels, opts.distill_position)
        if len(glyphs) < 2:
            raise InputError(f"nothing to distil: the training labels have {len(glyphs)} distinct "
                             f"character(s) at position {opts.distill_position}; give another "
                             "--distill-position")
        characters = "".join(dict.fromkeys("".join(train_set.labels)))
        teachers = load_teachers(opts.teachers, input_spec.size, characters)
        for teacher in teachers:
            teacher.model.to(device)
        other_glyphs = (glyphs_by_position(train_set.labels, skip=opts.distill_position)
                        if opts.distill_other_positions else {})
        distiller = Distiller(teachers, glyphs, opts.distill_position, opts.distill_temperature,
                              opts.distill_weight, other_glyphs)
    # Labels longer than the model's time steps have an infinite loss that training zeroes: say so up front.
    val_labels = val_set.labels if val_set is not None else []
    for labels, what in ((train_set.labels, "training"), (val_labels, "validation")):
        # Validation's unreadable labels have NaN losses that val_loss leaves out: they are named here.
        if not (labels and world.is_main):
            continue
        unreadable = unreadable_label_warning(net, head, input_spec, labels, what)
        if unreadable:
            logging.getLogger(__name__).warning("%s", unreadable)
    model: nn.Module = net
    if world.enabled:
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)

    batch_size = opts.batch_size or default_batch_size(device, inference=False)
    workers = opts.workers if opts.workers is not None else min(2, os.cpu_count() or 1)
    crops = AugmentedCrops(train_set.images, train_set.labels, pipeline)
    # One process keeps its seeded shuffle; several split each epoch's permutation by rank.
    sampler = DistributedSampler(crops, world.size, world.rank, shuffle=True, seed=opts.seed,
                                 drop_last=len(train_set) > batch_size * world.size) if world.enabled else None
    loader = DataLoader(
        crops, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
        drop_last=len(train_set) > batch_size * world.size, collate_fn=collate,
        num_workers=workers, worker_init_fn=_init_worker, persistent_workers=workers > 0,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(opts.seed),
    )
    lr = opts.lr
    assert lr is not None, "train() resolves the default learning rate before _train runs"
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    # One spare step: the final scheduler.step() would otherwise leave the logged LR past the schedule's end.
    total_steps = opts.epochs * max(1, len(loader)) + 1
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    run = _Run(opts, out, world, device, arch, config, head, input_spec, model, net, loader, sampler, val_set,
               optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=uses_amp(device)),
               augment_lib.pipeline_to_dict(pipeline) if pipeline is not None else None,
               train_set.fingerprint(), report, sources=training_sources(opts, train_set.fingerprint()),
               distiller=distiller)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler_state = dict(state["scheduler"])
        # Keep the phases just planned for the new total (more epochs, or another number of processes
        # and so of steps per epoch); the saved ones end at the old total.
        scheduler_state["total_steps"] = total_steps
        scheduler_state.pop("_schedule_phases", None)
        run.start_epoch, run.best_accuracy = int(state["epoch"]), float(state["best_accuracy"])
        # The run restarts at the first unfinished epoch, so the schedule does too: a stop mid-epoch saved
        # the steps of that partial epoch, and another number of processes has other steps per epoch, and
        # either way the saved step count would overrun the new schedule. One step() from the step before
        # sets the optimizer's learning rate (and momentum) for the first step to come.
        scheduler_state["last_epoch"] = run.start_epoch * max(1, len(loader)) - 1
        scheduler.load_state_dict(scheduler_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": on purpose here
            scheduler.step()
        run.best_loss = float(state.get("best_loss", math.inf))
    return run


def _epoch(run: _Run, epoch: int, stop: _StopFlag) -> tuple[float, int, bool]:
    """One pass over this process's share of the data: (loss sum, samples, stopped early)."""
    run.model.train()
    if run.sampler is not None:
        run.sampler.set_epoch(epoch)
    loss_sum, seen = 0.0, 0
    steps = max(1, len(run.loader))
    # disable=None: bars on terminals only, no progress-bar noise in train.log or captured stderr.
    resumed = epoch == run.start_epoch > 0
    batches = resumed_batches(run.loader, epoch, run.opts.seed) if resumed else iter(run.loader)
    bar = tqdm(batches, total=steps, desc=f"epoch {epoch + 1}/{run.opts.epochs}", unit="batch",
               dynamic_ncols=True, leave=False, disable=None if run.world.is_main else True)
    stopped = False
    for step, (crops, labels) in enumerate(bar, 1):
        images = to_model_input(crops, run.input_spec, run.device, channels_last=uses_amp(run.device))
        with torch.autocast(run.device.type, enabled=uses_amp(run.device)):
            logits = run.model(images)
        loss = run.head.training_loss(logits, labels)
        if run.distiller is not None:
            loss = loss + run.distiller.loss(run.head, run.head.log_probs(logits), crops, labels, run.device,
                                             step=epoch * steps + step)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
        nn.utils.clip_grad_norm_(run.model.parameters(), 5.0)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        loss_sum += loss.item() * images.shape[0]
        seen += images.shape[0]
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}")
        run.report("train", step, steps, epoch + 1, run.opts.epochs)
        # A stop on any process (Ctrl-C, the Train page's Stop, torchrun ending a failed run) stops all
        # of them at the same step, so none waits forever in the next gradient all-reduce.
        if any_rank(stop.raised, run.world, run.device):
            stopped = True
            break
    bar.close()
    return loss_sum, seen, stopped


def _checkpoint(run: _Run, metrics: dict[str, float], epoch_done: int) -> dict[str, Any]:
    """The checkpoint dict of the model itself (never the DDP wrapper: no ``module.`` prefixes)."""
    train_state = {
        "options": asdict(run.opts), "epoch": epoch_done, "best_accuracy": run.best_accuracy,
        "best_loss": run.best_loss, "world_size": run.world.size,
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
    }
    return make_checkpoint(run.net, run.arch, run.config, run.head, run.input_spec, run.augment, run.fingerprint,
                           metrics, train_state, run.opts.text_format, run.sources)


def _save(run: _Run, row: dict[str, Any], metrics: dict[str, float]) -> None:
    """Rank 0: ``last.pt``, ``best.pt`` when validation improved, and the epoch's history line."""
    accuracy = row["val_accuracy"]
    vloss = row["val_loss"] if math.isfinite(row["val_loss"]) else row["train_loss"]
    improved = (math.isnan(accuracy) and vloss < run.best_loss) or accuracy > run.best_accuracy or (
        accuracy == run.best_accuracy and vloss < run.best_loss)
    if improved:
        run.best_accuracy = accuracy if not math.isnan(accuracy) else run.best_accuracy
        run.best_loss = vloss
    ckpt = _checkpoint(run, metrics, row["epoch"])
    save_checkpoint(ckpt, run.out / "last.pt")
    if improved:
        ckpt.pop("train_state")
        save_checkpoint(ckpt, run.out / "best.pt")
    append_history(run.out / HISTORY_FILE, row)


def _shut_down_workers(loader: DataLoader) -> None:
    """End a loader's persistent workers now rather than at interpreter exit.

    After an exception the traceback keeps the loader alive until exit, where multiprocessing terminates
    its worker with SIGTERM and waits for it; _init_worker's workers ignore SIGTERM, so the process hung
    there forever instead of exiting with its error. DataLoader has no public close; its iterator's
    shutdown is what garbage collection runs.
    """
    iterator = getattr(loader, "_iterator", None)
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    loader._iterator = None


def _train(opts: TrainOptions, out: Path, stop: _StopFlag, state: dict[str, Any] | None,
           on_epoch: Callable[[dict[str, Any]], None] | None, world: World = World()) -> dict[str, Any]:
    run = _setup(opts, out, state, world)
    eval_batch = default_batch_size(run.device, inference=True)
    metrics: dict[str, float] = {}
    stopped = False
    epoch = run.start_epoch
    try:
        for epoch in range(run.start_epoch, opts.epochs):
            started = time.perf_counter()
            loss_sum, seen, stopped = _epoch(run, epoch, stop)
            if stopped:
                if world.is_main:
                    save_checkpoint(_checkpoint(run, metrics, epoch), out / "last.pt")
                    tqdm.write(f"stopped during epoch {epoch + 1}; saved {out / 'last.pt'}")
                break
            loss_sum, seen = sum_over_ranks([loss_sum, float(seen)], world, run.device)
            seconds = time.perf_counter() - started
            if world.is_main:
                # Validation runs on rank 0 alone: it is short next to an epoch, and the others wait here.
                val_metrics = evaluate(run.net, run.head, run.input_spec, run.val_set, run.device, eval_batch) \
                    if run.val_set is not None and len(run.val_set) else \
                    {"val_loss": float("nan"), "val_accuracy": float("nan"), "val_cer": float("nan")}
                row = {
                    "epoch": epoch + 1,
                    "train_loss": loss_sum / max(seen, 1),
                    **val_metrics,
                    "lr": run.scheduler.get_last_lr()[0],
                    "seconds": round(seconds, 2),
                    "samples_per_second": round(seen / max(seconds, 1e-9), 1),
                    "processes": world.size,
                }
                metrics = {k: row[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_cer")}
                _save(run, row, metrics)
                tqdm.write(
                    f"epoch {row['epoch']}: train_loss={row['train_loss']:.4f} val_loss={row['val_loss']:.4f} "
                    f"val_accuracy={row['val_accuracy']:.4f} val_cer={row['val_cer']:.4f} "
                    f"{row['samples_per_second']:.0f} samples/s"
                )
                if on_epoch is not None:
                    on_epoch(row)
            barrier(world)
    except RuntimeError:
        # Another process died in a collective (torchrun then ends this one too): keep what was trained.
        if world.enabled and world.is_main:
            save_checkpoint(_checkpoint(run, metrics, epoch), out / "last.pt")
        raise
    finally:
        _shut_down_workers(run.loader)
    return {"stopped": stopped, "best_accuracy": run.best_accuracy, **metrics}
