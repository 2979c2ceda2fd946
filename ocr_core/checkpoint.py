"""Checkpoints: a plain dict of tensors and primitives, saved atomically, loaded with ``weights_only=True``.

Keys: ``format_version, arch, arch_config, head, input, vocab, input_size, state_dict, augment,
data_fingerprint, metrics, created`` and, for resumable training checkpoints, ``train_state``. A checkpoint saved
by ``train`` also holds ``training_sources`` (optional; older files have none): the resolved training folders or
manifests, the validation fraction held out of the first, and the training set's fingerprint, so a test set can
be checked for crops the model was trained on (``ocr_core.near_duplicates.leakage``), and the checkpoints a
run distilled from (``teachers``, only then). ``head``
(``ocr_core.heads``) and ``input`` (``ocr_core.preprocess.InputSpec``) arrived with format 2; a format-1
file is upgraded when read (a CTC head over ``vocab``, the architecture's default input settings at
``input_size``). ``vocab`` and ``input_size`` stay for readers of format 1. Nothing in a checkpoint needs
unpickling of Python objects, so a file that does is refused without running any of it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import logging
import pickle
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ocr_core.atomic import atomic_path
from ocr_core.checkpoint_checks import check_archive, check_forward, validate_checkpoint
from ocr_core.errors import InputError
from ocr_core.heads import CTCHead, FixedHead, head_from_dict
from ocr_core.models import arch_spec, build_model, fuse_conv_batchnorm
from ocr_core.preprocess import InputSpec
from ocr_core.vocab import Vocab

FORMAT_VERSION = 2
REQUIRED_KEYS = ("format_version", "arch", "arch_config", "vocab", "input_size", "state_dict")
log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model in eval mode with its head, input settings and the metadata of its checkpoint."""

    model: nn.Module
    head: CTCHead | FixedHead
    input: InputSpec
    arch: str
    meta: dict[str, Any]
    path: str

    @property
    def vocab(self) -> Vocab:
        """Every character the model can read."""
        return self.head.vocab

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the crops are decoded to."""
        return self.input.size


def make_checkpoint(
    model: nn.Module,
    arch: str,
    arch_config: dict[str, Any],
    head: CTCHead | FixedHead | Vocab,
    input_spec: InputSpec | tuple[int, int],
    augment: dict[str, Any] | None = None,
    data_fingerprint: str = "",
    metrics: dict[str, float] | None = None,
    train_state: dict[str, Any] | None = None,
    text_format: str | None = None,
    training_sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict of a model (weights copied to the CPU).

    ``text_format`` (``ocr_core.formats``) is the plate format the model's readings should follow; ``score
    --format auto`` decodes with it. ``training_sources`` (see the module doc) is kept as given.

    A ``Vocab`` stands for a CTC head over it, and a ``(height, width)`` for the architecture's default
    input settings at that size.
    """
    if isinstance(head, Vocab):
        head = CTCHead(head.chars)
    if not isinstance(input_spec, InputSpec):
        input_spec = arch_spec(arch).input.with_size(int(input_spec[0]), int(input_spec[1]))
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    checkpoint: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_config": {k: list(v) if isinstance(v, tuple) else v for k, v in arch_config.items()},
        "head": head.to_dict(),
        "input": input_spec.to_dict(),
        "vocab": head.vocab.chars,
        "input_size": list(input_spec.size),
        "state_dict": state,
        "augment": augment,
        "data_fingerprint": data_fingerprint,
        "metrics": dict(metrics or {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if text_format:
        checkpoint["text_format"] = text_format
    if training_sources is not None:
        checkpoint["training_sources"] = training_sources
    if train_state is not None:
        checkpoint["train_state"] = train_state
    return checkpoint


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint dict through a temp file and ``os.replace``, so readers never see half a file."""
    # Serialised in memory first: torch.save's own file writer reports a full disk as an opaque
    # RuntimeError, a plain write as OSError (ENOSPC, EFBIG) that the CLI turns into one sentence.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``) and check it has PlateLens' keys.

    Raises:
        InputError: missing, truncated, not a checkpoint, pickled objects, or another format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the path of a .pt file")
    check_archive(path)  # a zip bomb is refused from its directory, before torch.load inflates it
    data = _safe_torch_load(path)
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a {type(data).__name__}, not a checkpoint dict; give a PlateLens .pt file")
    if {"model", "alphabet", "target_length"} <= set(data):
        raise InputError(
            f"{path} is a seed-000 notebook checkpoint; convert it with "
            f"`python -m ocr_core import-seed000 {path} --out NEW.pt`"
        )
    # Every field's type and range, the declared model size and the metadata's size, in one place
    # (ocr_core.checkpoint_checks); NaN weights are a warning, not a refusal.
    for warning in validate_checkpoint(data, path, FORMAT_VERSION, REQUIRED_KEYS).warnings:
        log.warning("%s", warning)
    return upgrade_checkpoint(data)


def upgrade_checkpoint(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint dict in format 2: a CTC head over its vocabulary, input settings from the arch.

    Format 1 had CTC models only, with the input scaling inside ``forward``: 1/255 for ``small`` and
    ``1/input_divisor`` (256) for ``fcnn_bilstm``, whose config carried it. Format-2 dicts pass unchanged.
    """
    if data.get("format_version") != 1:
        return data
    upgraded = dict(data)
    config = dict(data.get("arch_config") or {})
    divisor = config.pop("input_divisor", None)
    try:
        height, width = (int(v) for v in data["input_size"])
        spec = arch_spec(str(data["arch"])).input.with_size(height, width)
    except (TypeError, ValueError):
        return data  # model_from_checkpoint reports what does not fit
    if divisor:
        spec = InputSpec(spec.channels, height, width, spec.resize, 1.0 / float(divisor), spec.mean, spec.std)
    upgraded.update(format_version=FORMAT_VERSION, arch_config=config, input=spec.to_dict(),
                    head=CTCHead(str(data["vocab"])).to_dict())
    return upgraded


# Fields that must be equal for two checkpoints to be one model; "state_dict" shapes are checked as well.
_SOUP_FIELDS = ("arch", "arch_config", "head", "input")


def average_checkpoints(checkpoints: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The uniform weight average (a "model soup") of checkpoints fine-tuned from one starting checkpoint.

    Averaging the weights of fine-tunes that share their starting point keeps the model's size and speed
    and usually reads unseen data at least as well as the average ingredient (Wortsman et al., 2022, "Model
    soups"); fine-tunes of one model on a small set differ a lot from seed to seed, and the average smooths
    that out. Floating-point tensors (batch-norm statistics too) are averaged in float64; integer ones (batch
    counters) are taken from the first. The result has the first checkpoint's metadata, no metrics and no
    training state, ``averaged_from`` (each ingredient's name, creation time and data fingerprint) and, where
    the ingredients record them, ``training_sources`` that cover every ingredient's training data
    (``merge_training_sources``). Checkpoints trained from different starting points average to nonsense,
    which this cannot detect: score the result before using it.

    Raises:
        InputError: fewer than two checkpoints, or ones that are not the same model (architecture, head,
            input settings, or weight names and shapes differ), named by ``names``.
    """
    if len(checkpoints) != len(names):
        raise ValueError("give one name per checkpoint")
    if len(checkpoints) < 2:
        raise InputError("averaging needs at least two checkpoints; give two or more .pt files")
    first, first_name = checkpoints[0], names[0]
    for other, name in zip(checkpoints[1:], names[1:]):
        for field in _SOUP_FIELDS:
            if other.get(field) != first.get(field):
                raise InputError(f"{name} and {first_name} are not the same model (their {field.replace('_', ' ')} "
                                 "differs); average only fine-tunes of one checkpoint")
        ours, theirs = first["state_dict"], other["state_dict"]
        if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
            raise InputError(f"{name} and {first_name} are not the same model (their weights differ in names or "
                             "shapes); average only fine-tunes of one checkpoint")
    state: dict[str, torch.Tensor] = {}
    for key, tensor in first["state_dict"].items():
        if tensor.is_floating_point():
            total = sum(c["state_dict"][key].to(torch.float64) for c in checkpoints)
            state[key] = (total / len(checkpoints)).to(tensor.dtype)
        else:
            state[key] = tensor.clone()
    soup = {k: v for k, v in first.items() if k not in ("state_dict", "train_state", "metrics", "training_sources")}
    soup.update(
        state_dict=state,
        metrics={},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        averaged_from=[{"name": str(name), "created": str(c.get("created", "")),
                        "data_fingerprint": str(c.get("data_fingerprint", ""))}
                       for c, name in zip(checkpoints, names)],
    )
    fingerprints = {c.get("data_fingerprint", "") for c in checkpoints}
    # One fingerprint stands for "trained on exactly this set"; a mix of sets has none.
    soup["data_fingerprint"] = fingerprints.pop() if len(fingerprints) == 1 else ""
    sources = merge_training_sources([c.get("training_sources") for c in checkpoints])
    if sources is not None:
        soup["training_sources"] = sources
    return soup


def merge_training_sources(records: Sequence[Any]) -> dict[str, Any] | None:
    """One ``training_sources`` record (see the module doc) covering every run's training data, or None.

    Equal records stay as they are. Otherwise the first run keeps its source, hold-out and corrections, and
    every other run's sources join ``extra_data`` whole: their validation hold-outs count as trained on,
    which can only over-report leakage, never hide it. None when a run has no record (nothing to check).
    """
    if not records or any(not isinstance(r, dict) or not r.get("data") for r in records):
        return None
    first = records[0]
    if all(r == first for r in records):
        return dict(first)
    extra: list[str] = list(first.get("extra_data") or [])
    for record in records[1:]:
        for spec in [record["data"], *(record.get("extra_data") or [])]:
            if spec != first["data"] and spec not in extra:
                extra.append(str(spec))
    return {"data": first["data"], "val_split": first.get("val_split", 0.0), "extra_data": extra,
            "corrections": first.get("corrections"), "fingerprint": ""}


def _safe_torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise InputError(
                f"refused to load {path}: it contains pickled Python objects that could run code; "
                "only plain tensor checkpoints are accepted"
            ) from None
        raise InputError(f"{path} is not a torch checkpoint (unreadable pickle data)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not a readable checkpoint (truncated or corrupt: {first})") from None
    except Exception as exc:  # noqa: BLE001 - garbage breaks the unpickler in many ways (KeyError, ...)
        raise InputError(f"{path} is not a torch checkpoint (unreadable: {type(exc).__name__})") from None


def model_from_checkpoint(checkpoint: dict[str, Any], source: str = "<memory>") -> LoadedModel:
    """Build the model of a checkpoint dict, load its weights, and put it in eval mode.

    Raises:
        InputError: the weights do not fit the declared architecture and vocabulary.
    """
    checkpoint = upgrade_checkpoint(checkpoint)
    try:
        head = head_from_dict(checkpoint["head"])
        spec = InputSpec.from_dict(checkpoint["input"])
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"checkpoint {source} has invalid head or input settings ({exc})") from None
    if checkpoint.get("vocab") != head.vocab.chars:
        raise InputError(f"checkpoint {source}: its vocab does not match the characters of its head; "
                         "the file was edited or damaged, so export it again")
    try:
        model = build_model(checkpoint["arch"], head.output_classes, checkpoint["arch_config"])
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise InputError(f"checkpoint {source} does not match its architecture or vocabulary ({first})") from None
    model.eval()
    meta = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "train_state")}
    loaded = LoadedModel(model, head, spec, checkpoint["arch"], meta, source)
    # One blank input through the model (ocr_core.checkpoint_checks): an input size that does not fit the
    # weights is refused here, once, not on every page; NaN outputs become a warning the pages can show.
    forward = check_forward(loaded)
    meta["time_steps"] = forward.time_steps
    meta["warnings"] = [] if forward.finite else [
        f"checkpoint {source} gives NaN or infinite outputs (its weights hold NaN or infinity); its readings and "
        "confidences are meaningless: retrain or pick another checkpoint"]
    return loaded


def freeze_for_inference(model: nn.Module) -> nn.Module:
    """Put a shared model in eval mode for good: no gradients, and ``train()`` refuses to switch it back.

    A model cached for every dashboard session must never flip to train mode (dropout and batch-norm
    updates would change every other session's predictions), so a call that tries raises instead.
    """
    model.eval()
    model.requires_grad_(False)

    def refuse_train(mode: bool = True) -> nn.Module:
        if mode:
            raise RuntimeError("this model is shared by every dashboard session and stays in eval mode; "
                               "train a copy (copy.deepcopy) instead")
        return model

    model.train = refuse_train  # type: ignore[method-assign]
    return model


def load_model(path: str | Path, fuse: bool = True) -> LoadedModel:
    """Read a checkpoint file and return its model in eval mode, ready to serve.

    With ``fuse`` (the default) batch norms are folded into their convolutions: same readings, faster
    (see ``ocr_core.models.fuse_conv_batchnorm``). Pass ``fuse=False`` for the checkpoint's own module
    structure, e.g. to compare its ``state_dict`` or to train it further.
    """
    loaded = model_from_checkpoint(read_checkpoint(path), str(path))
    if fuse:
        fuse_conv_batchnorm(loaded.model)
    return loaded


def store_uploaded_checkpoint(data: bytes, name: str, folder: str | Path, max_bytes: int) -> Path:
    """Check an uploaded checkpoint and keep it in ``folder`` as ``<stem>-<sha256 prefix>.pt``.

    The bytes are loaded with ``weights_only=True`` and the model is built before the file appears under
    its final name, so a refused upload leaves nothing behind.

    Raises:
        InputError: the upload is too large, or not a loadable PlateLens checkpoint.
    """
    if len(data) > max_bytes:
        raise InputError(
            f"uploaded file {name} is {len(data) / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB upload "
            "limit; copy it into a data root and give its path instead"
        )
    stem = re.sub(r"[^\w.-]", "_", Path(name).stem)[:60] or "upload"
    target = Path(folder) / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.pt"
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        try:
            model_from_checkpoint(read_checkpoint(tmp), source=name)
        except InputError as exc:
            raise InputError(f"uploaded file {name}: {str(exc).replace(str(tmp), 'it')}") from None
    return target


def import_seed000(path: str | Path) -> dict[str, Any]:
    """Convert a checkpoint saved by seed notebook 000's ``OCR.state_dict()`` into a PlateLens checkpoint.

    The notebook's file holds ``model, alphabet, target_length, optimizer, scheduler``. Its encoder
    lower-cased the alphabet and put blank at 0, so output ``i + 1`` is ``alphabet[i]``; the imported
    vocabulary upper-cases it again so predictions read like plates.

    Raises:
        InputError: the file is unreadable or not in the notebook's layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist; give the notebook's saved .pt file")
    data = _safe_torch_load(path)
    if not isinstance(data, dict) or not {"model", "alphabet"} <= set(data):
        raise InputError(f"{path} is not a seed-000 checkpoint (it needs the keys model and alphabet)")
    alphabet = str(data["alphabet"]).upper()
    try:
        vocab = Vocab(alphabet)
    except ValueError:
        raise InputError(f"{path} has an alphabet with duplicate characters after upper-casing") from None
    state = data["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} is not a seed-000 checkpoint ('model' is not a state dict of tensors)")
    state = dict(state)
    sequence_length = int(state["cnn.fc.3.weight"].shape[0]) if "cnn.fc.3.weight" in state else 16
    lstm_hidden = int(state["rnn.0.rnn.weight_hh_l0"].shape[1]) if "rnn.0.rnn.weight_hh_l0" in state else 256
    config = {"sequence_length": sequence_length, "lstm_hidden": lstm_hidden}
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "arch": "fcnn_bilstm",
        "arch_config": config,
        "head": CTCHead(vocab.chars).to_dict(),
        # The notebook fed pixels / 256 (the arch default).
        "input": arch_spec("fcnn_bilstm").input.to_dict(),
        "vocab": vocab.chars,
        "input_size": [32, 128],
        "state_dict": state,
        "augment": None,
        "data_fingerprint": "",
        "metrics": {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "imported_from": str(path),
        "target_length": int(data.get("target_length", 0) or 0),
    }
    model_from_checkpoint(checkpoint, str(path))  # fail now, with a clear message, if the weights do not fit
    return checkpoint
