"""Validation of checkpoint files and dicts: every field's type and range, checked in one place.

A checkpoint is untrusted input: a file from a colleague, an upload, a path typed into the dashboard.
``weights_only=True`` keeps it from running code, but the values it declares still drive allocations
(layer widths, input sizes), loops (metadata that repeats one object many times) and the model's
first forward pass. These checks run when a checkpoint is read, before anything large is allocated:

- :func:`check_archive` reads the zip directory and refuses an uncompressed size over
  :data:`MAX_UNCOMPRESSED_BYTES` before ``torch.load`` inflates anything;
- :func:`validate_checkpoint` checks the types and ranges of every field, walks the metadata with a
  node and depth budget, estimates the parameter count of ``arch_config`` on the ``meta`` device
  (no memory) and refuses more than :data:`MAX_PARAMETERS`;
- :func:`check_forward` runs the built model on one blank input and checks the logits' shape, so a
  checkpoint whose input size does not fit its weights is refused when it is loaded, not on every page.

Every refusal is one :class:`~ocr_core.errors.InputError` sentence naming the file.
"""

from __future__ import annotations

import itertools
import math
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocr_core.errors import InputError

#: Largest model a checkpoint may declare: 10x the largest built-in architecture (fcnn_bilstm, 9.7M).
MAX_PARAMETERS = 100_000_000
#: Largest uncompressed size of a checkpoint archive (its zip directory's file sizes summed).
MAX_UNCOMPRESSED_BYTES = 2 * 2**30
#: Most entries a checkpoint archive may hold (a model has a few hundred tensors).
MAX_ARCHIVE_ENTRIES = 100_000
#: Bounds of each side of the model input, in pixels, and of its area.
INPUT_SIDE_RANGE = (8, 1024)
MAX_INPUT_PIXELS = 256 * 1024
#: Longest vocabulary (a CTC head has one output per character).
MAX_VOCAB_CHARS = 20_000
#: Work budget of the metadata walk: nodes visited (repeats counted), nesting depth, string length.
MAX_META_NODES = 200_000
MAX_META_DEPTH = 32
MAX_META_STRING = 100_000
#: Largest integer an ``arch_config`` value may hold (a channel count, a hidden size, a length).
MAX_CONFIG_INT = 1_000_000

_KNOWN_TYPES: dict[str, tuple[type, ...]] = {
    "arch": (str,),
    "vocab": (str,),
    "data_fingerprint": (str,),
    "created": (str,),
    "imported_from": (str,),
}
_PRIMITIVES = (str, int, float, bool, type(None))


@dataclass
class CheckpointReport:
    """What validation found that is not fatal: warnings for the user and the estimated size."""

    parameters: int = 0
    warnings: list[str] = field(default_factory=list)
    nonfinite_tensors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ForwardCheck:
    """The result of one forward pass on a blank input: CTC time steps and whether the logits are finite."""

    time_steps: int
    finite: bool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    plain = isinstance(value, _PRIMITIVES) or (
        isinstance(value, (list, tuple)) and len(value) <= 8 and all(isinstance(v, _PRIMITIVES) for v in value))
    text = repr(value) if plain else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def check_archive(path: str | Path, max_bytes: int | None = None) -> None:
    """Refuse a zip checkpoint whose directory declares more than ``max_bytes`` uncompressed.

    Only the zip directory is read, so a compression bomb is refused before anything is inflated.
    Files that are not zip archives (legacy torch files, garbage) are left to the loader.

    Raises:
        InputError: the archive declares too much data or too many entries.
    """
    path = Path(path)
    max_bytes = MAX_UNCOMPRESSED_BYTES if max_bytes is None else max_bytes
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, OverflowError):
        return  # the loader says what is wrong with it
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise InputError(
            f"checkpoint {path} holds {len(entries):,} archive entries, over the limit of "
            f"{MAX_ARCHIVE_ENTRIES:,}; it is not a PlateLens checkpoint"
        )
    total = sum(max(0, int(e.file_size)) for e in entries)
    if total > max_bytes:
        raise InputError(
            f"checkpoint {path} would unpack to {total / 2**30:.1f} GiB, over the {max_bytes / 2**30:.0f} GiB "
            "limit; it is not a PlateLens checkpoint (or a damaged one): re-save the model"
        )


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes


def _walk(value: Any, where: str, budget: _Budget, depth: int, tensors: bool) -> None:
    """Check a metadata tree: primitives, lists, tuples and str-keyed dicts (and tensors where allowed)."""
    budget.left -= 1
    if budget.left < 0:
        raise _TooBig(where)
    if depth > MAX_META_DEPTH:
        raise _Bad(where, f"nests deeper than {MAX_META_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_META_STRING:
            raise _Bad(where, f"is a string of {len(value):,} characters (the limit is {MAX_META_STRING:,})")
        return
    if isinstance(value, (bool, int, type(None))):
        return
    if isinstance(value, float):
        return  # NaN metrics are legitimate (no validation set)
    if isinstance(value, torch.Tensor):
        if not tensors:
            raise _Bad(where, "holds a tensor where a plain value belongs")
        return
    if isinstance(value, (torch.dtype, torch.Size)) and tensors:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise _Bad(where, f"has a key of type {type(key).__name__}")
            _walk(child, f"{where}.{key}", budget, depth + 1, tensors)
        return
    if isinstance(value, (list, tuple)):
        for i, child in enumerate(value):
            _walk(child, f"{where}[{i}]", budget, depth + 1, tensors)
        return
    raise _Bad(where, f"holds a {type(value).__name__}")


class _Bad(Exception):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where} {what}")


class _TooBig(Exception):
    def __init__(self, where: str) -> None:
        super().__init__(where)


def _check_input_size(value: Any, src: str) -> tuple[int, int]:
    low, high = INPUT_SIDE_RANGE
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise InputError(f"checkpoint {src} has input_size {_describe(value)}; it must be [height, width] in "
                         "whole pixels: re-save the model with a valid input size")
    height, width = int(value[0]), int(value[1])
    if not (low <= height <= high and low <= width <= high) or height * width > MAX_INPUT_PIXELS:
        raise InputError(f"checkpoint {src} has input_size [{height}, {width}]; each side must be {low} to {high} "
                         f"pixels and the area at most {MAX_INPUT_PIXELS:,}: re-save the model with a valid size")
    return height, width


def _check_input_settings(value: Any, src: str) -> None:
    """The optional ``input`` dict of format 2: channels, height, width, resize, scale, mean, std, upscale."""
    if not isinstance(value, dict):
        raise InputError(f"checkpoint {src} has 'input' of type {type(value).__name__}; it must be a dict of "
                         "input settings")
    low, high = INPUT_SIDE_RANGE
    channels = value.get("channels", 3)
    if not _is_int(channels) or channels not in (1, 3):
        raise InputError(f"checkpoint {src} has input channels {_describe(channels)}; it must be 1 or 3")
    for key in ("height", "width"):
        if key in value and not (_is_int(value[key]) and low <= value[key] <= high):
            raise InputError(f"checkpoint {src} has input {key} {_describe(value[key])}; it must be a whole number "
                             f"of pixels from {low} to {high}")
    if "scale" in value and not (_is_number(value["scale"]) and math.isfinite(value["scale"]) and value["scale"] > 0):
        raise InputError(f"checkpoint {src} has input scale {_describe(value['scale'])}; it must be a positive number")
    if "resize" in value and not isinstance(value["resize"], (str, type(None))):
        raise InputError(f"checkpoint {src} has input resize {_describe(value['resize'])}; it must be a name")
    if "upscale" in value and not isinstance(value["upscale"], str):
        raise InputError(f"checkpoint {src} has input upscale {_describe(value['upscale'])}; it must be a name")
    for key in ("mean", "std"):
        if key not in value or value[key] is None:
            continue
        numbers = value[key] if isinstance(value[key], (list, tuple)) else [value[key]]
        ok = 1 <= len(numbers) <= 3 and all(_is_number(v) and math.isfinite(v) for v in numbers)
        if ok and key == "std":
            ok = all(v > 0 for v in numbers)
        if not ok:
            raise InputError(f"checkpoint {src} has input {key} {_describe(value[key])}; it must be one finite "
                             f"number per channel{' and positive' if key == 'std' else ''}")


def _check_arch_config(config: Any, src: str) -> None:
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise InputError(f"checkpoint {src} has arch_config of type {type(config).__name__}; it must be a dict of "
                         "settings")
    for key, value in config.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(value) > 64:
            raise InputError(f"checkpoint {src} has arch_config {key} with {len(value)} values; at most 64 fit")
        for item in values:
            if _is_int(item) and not 0 <= item <= MAX_CONFIG_INT:
                raise InputError(f"checkpoint {src} has arch_config {key}={_describe(value)}; sizes must be 0 to "
                                 f"{MAX_CONFIG_INT:,}")
            if isinstance(item, float) and not math.isfinite(item):
                raise InputError(f"checkpoint {src} has arch_config {key}={_describe(value)}; it must be finite")
            if not isinstance(item, _PRIMITIVES):
                raise InputError(f"checkpoint {src} has arch_config {key} of type {type(item).__name__}; "
                                 "it must hold plain numbers or names")


def _config_fields(arch: str) -> set[str] | None:
    from dataclasses import fields

    from ocr_core.models.registry import ARCHITECTURES

    entry = ARCHITECTURES.get(arch)
    config_cls = getattr(entry, "config_cls", None) or (entry[0] if isinstance(entry, tuple) else None)
    try:
        return {f.name for f in fields(config_cls)} if config_cls is not None else None
    except TypeError:
        return None


def _output_classes(data: dict[str, Any]) -> Any:
    """What the model factory needs for the output layer: the head's classes, or the vocabulary plus blank."""
    head = data.get("head")
    if isinstance(head, dict):
        try:
            from ocr_core.heads import head_from_dict  # format 2 (heads); absent in format-1-only builds

            return head_from_dict(head).output_classes
        except ImportError:
            pass
        except Exception as exc:  # noqa: BLE001 - a bad head dict breaks its constructor its own way
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            raise InputError(f"checkpoint {data.get('_source', '<memory>')} has an invalid head ({first}); "
                             "re-save the model") from None
    return len(str(data.get("vocab", ""))) + 1


def estimate_parameters(arch: str, output_classes: Any, config: dict[str, Any], src: str = "<memory>") -> int:
    """Parameter count of ``arch`` with ``config``, from a model built on the ``meta`` device (no memory).

    Config keys the architecture does not have (settings of an older format) are left out of the estimate.

    Raises:
        InputError: the architecture is unknown or the config cannot build a model.
    """
    model = meta_model(arch, output_classes, config, src)
    return int(sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers()))


def meta_model(arch: str, output_classes: Any, config: dict[str, Any], src: str = "<memory>") -> nn.Module:
    """The model of ``arch`` and ``config`` built on the ``meta`` device: shapes without memory.

    Raises:
        InputError: the architecture is unknown or the config cannot build a model.
    """
    from ocr_core.models import build_model

    known = _config_fields(arch)
    usable = {k: v for k, v in config.items() if known is None or k in known}
    try:
        with torch.device("meta"):
            model = build_model(arch, output_classes, usable)
    except Exception as exc:  # noqa: BLE001 - any bad config value breaks a constructor its own way
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise InputError(f"checkpoint {src} has an arch_config that cannot build a {arch} model ({first}); "
                         "re-save the model") from None
    return model


def _check_shapes(model: nn.Module, state: dict[str, torch.Tensor], src: str) -> None:
    """Refuse weights whose names or shapes differ from the declared model's, before it is built for real."""
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    wrong = [name for name in expected if name in state and tuple(state[name].shape) != expected[name]]
    if not (missing or unexpected or wrong):
        return
    if wrong:
        name = wrong[0]
        first = f"{name} is {tuple(state[name].shape)} in the file, {expected[name]} in the declared model"
    elif missing:
        first = f"{len(missing)} weight(s) missing, first {missing[0]}"
    else:
        first = f"{len(unexpected)} unknown weight(s), first {unexpected[0]}"
    raise InputError(f"checkpoint {src} does not match its architecture or vocabulary ({first[:160]}); "
                     "re-save the model or pick the checkpoint that goes with it")


def nonfinite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in ``state_dict`` that hold NaN or infinity."""
    names = []
    for name, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.numel() and \
                not bool(torch.isfinite(tensor).all()):
            names.append(str(name))
    return names


def _check_state_dict(state: Any, src: str) -> int:
    if not isinstance(state, dict):
        raise InputError(f"checkpoint {src} has state_dict of type {type(state).__name__}; it must be a dict of "
                         "tensors: re-save the model")
    if len(state) > MAX_ARCHIVE_ENTRIES:
        raise InputError(f"checkpoint {src} has {len(state):,} tensors, over the limit of {MAX_ARCHIVE_ENTRIES:,}")
    total = 0
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise InputError(f"checkpoint {src} has state_dict entry {_describe(name)} of type "
                             f"{type(tensor).__name__}; every entry must be a named tensor")
        if tensor.is_sparse or tensor.layout != torch.strided:
            raise InputError(f"checkpoint {src} has a non-dense tensor {name}; re-save the model")
        needed = tensor.numel() * tensor.element_size()
        if tensor.numel() and needed > tensor.untyped_storage().nbytes():
            raise InputError(f"checkpoint {src} declares tensor {name} of shape {tuple(tensor.shape)} over "
                             "far less stored data; it is not a PlateLens checkpoint")
        total += tensor.numel()
    if total > MAX_PARAMETERS:
        raise InputError(f"checkpoint {src} holds {total:,} weights, over the limit of {MAX_PARAMETERS:,}")
    return total


def validate_checkpoint(data: dict[str, Any], source: str | Path, max_version: int,
                        required: Sequence[str] = ()) -> CheckpointReport:
    """Check every field of a loaded checkpoint dict; return the non-fatal findings.

    Fields: ``format_version`` (an int from 1 to ``max_version``), ``arch`` (a known architecture),
    ``arch_config`` (plain values; the model it builds has at most :data:`MAX_PARAMETERS`), ``vocab``
    (distinct characters), ``input_size`` ([height, width] within :data:`INPUT_SIDE_RANGE`),
    ``state_dict`` (named dense tensors), ``metrics``/``augment``/``head``/``input`` and any other
    metadata (plain values within a node, depth and string budget); ``train_state`` may hold tensors.

    Raises:
        InputError: one sentence naming ``source`` and the first bad field.
    """
    from ocr_core.models.registry import ARCHITECTURES

    src = str(source)
    missing = [k for k in required if k not in data]
    if missing:
        raise InputError(f"{src} is not a PlateLens checkpoint (missing {', '.join(missing)})")
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        raise InputError(f"checkpoint {src} has format_version {_describe(version)}; it must be a whole number "
                         "from 1: it is not a PlateLens checkpoint or it is damaged")
    if version > max_version:
        raise InputError(f"{src} has format version {version}; upgrade PlateLens to read it")
    for key, types in _KNOWN_TYPES.items():
        if key in data and not isinstance(data[key], types):
            raise InputError(f"checkpoint {src} has {key} of type {type(data[key]).__name__}; it must be text")
    arch = data.get("arch")
    if arch not in ARCHITECTURES:
        raise InputError(f"checkpoint {src} names architecture {_describe(arch)}; this PlateLens knows "
                         f"{', '.join(ARCHITECTURES)}")
    vocab = data.get("vocab")
    if not isinstance(vocab, str) or not vocab or len(vocab) > MAX_VOCAB_CHARS or len(set(vocab)) != len(vocab):
        raise InputError(f"checkpoint {src} has vocab {_describe(vocab)}; it must be 1 to {MAX_VOCAB_CHARS:,} "
                         "distinct characters")
    settings = data.get("input")
    if settings is not None:
        _check_input_settings(settings, src)
    if "input_size" in data or not isinstance(settings, dict):
        size = _check_input_size(data.get("input_size"), src)
        if isinstance(settings, dict) and "height" in settings and "width" in settings and \
                (settings["height"], settings["width"]) != size:
            raise InputError(f"checkpoint {src} has input_size {list(size)} but input settings of "
                             f"{settings['height']}x{settings['width']}; the two must agree: re-save the model")
    else:
        _check_input_size([settings.get("height"), settings.get("width")], src)
    if "metrics" in data and data["metrics"] is not None and not isinstance(data["metrics"], dict):
        raise InputError(f"checkpoint {src} has metrics of type {type(data['metrics']).__name__}; it must be a dict")
    if "head" in data and data["head"] is not None and not isinstance(data["head"], dict):
        raise InputError(f"checkpoint {src} has head of type {type(data['head']).__name__}; it must be a dict")
    if "augment" in data and data["augment"] is not None and not isinstance(data["augment"], dict):
        raise InputError(f"checkpoint {src} has augment of type {type(data['augment']).__name__}; it must be an "
                         "albumentations dict or empty")
    if "train_state" in data and data["train_state"] is not None and not isinstance(data["train_state"], dict):
        raise InputError(f"checkpoint {src} has train_state of type {type(data['train_state']).__name__}; "
                         "it must be a dict")
    budget = _Budget(MAX_META_NODES)
    try:
        for key, value in data.items():
            if not isinstance(key, str):
                raise _Bad("a key", f"of type {type(key).__name__}")
            if key == "state_dict":
                continue
            _walk(value, key, budget, 0, tensors=key == "train_state")
    except _TooBig as exc:
        raise InputError(f"checkpoint {src} has metadata of over {MAX_META_NODES:,} values (seen up to {exc}); "
                         "it is not a PlateLens checkpoint") from None
    except _Bad as exc:
        raise InputError(f"checkpoint {src}: {exc}; a checkpoint's metadata must be plain values") from None
    _check_arch_config(data.get("arch_config"), src)
    weights = _check_state_dict(data.get("state_dict"), src)
    model = meta_model(str(arch), _output_classes({**data, "_source": src}), data["arch_config"], src)
    parameters = int(sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers()))
    if parameters > MAX_PARAMETERS:
        raise InputError(f"checkpoint {src} declares a {arch} model of {parameters:,} parameters, over the limit "
                         f"of {MAX_PARAMETERS:,}; it is not a model PlateLens can serve")
    _check_shapes(model, data["state_dict"], src)
    report = CheckpointReport(parameters=max(parameters, weights))
    report.nonfinite_tensors = nonfinite_tensors(data["state_dict"])
    if report.nonfinite_tensors:
        report.warnings.append(
            f"checkpoint {src} has NaN or infinite weights in {len(report.nonfinite_tensors)} tensor(s), first "
            f"{report.nonfinite_tensors[0]}; its readings and confidences are meaningless: retrain or pick "
            "another checkpoint"
        )
    return report


def _input_spec(loaded: Any) -> Any:
    """The loaded model's input settings object (``ocr_core.preprocess.InputSpec``), if it has one."""
    for name in ("input_spec", "spec", "input"):
        spec = getattr(loaded, name, None)
        if spec is not None and hasattr(spec, "channels"):
            return spec
    return None


def model_input_shape(loaded: Any) -> tuple[int, int, int]:
    """(channels, height, width) of the input a loaded model reads."""
    height, width = (int(v) for v in loaded.input_size)
    spec = _input_spec(loaded)
    return (int(spec.channels) if spec is not None else 3), height, width


def _blank_batch(loaded: Any, device: torch.device) -> torch.Tensor:
    """One blank crop as the model reads it: through ``ocr_core.preprocess`` where the model has input
    settings, else as the (1, 3, H, W) uint8 tensor that format-1 models scale themselves."""
    _, height, width = model_input_shape(loaded)
    crops = np.zeros((1, height, width, 3), np.uint8)
    spec = _input_spec(loaded)
    if spec is not None:
        from ocr_core.preprocess import to_model_input

        return to_model_input(crops, spec, device)
    return torch.from_numpy(crops).permute(0, 3, 1, 2).to(device)


def _expected_classes(loaded: Any) -> int | None:
    head = getattr(loaded, "head", None)
    if head is not None:
        classes = getattr(head, "num_classes", None)
        return int(classes) if isinstance(classes, int) else None
    vocab = getattr(loaded, "vocab", None)
    return int(vocab.num_classes) if vocab is not None else None


def check_forward(loaded: Any) -> ForwardCheck:
    """Run a loaded model (``ocr_core.checkpoint.LoadedModel``) on one blank input and check its logits.

    The logits must be (1, T, classes) with T >= 1 and, where the head has a class count, that many
    columns. Non-finite logits are reported (``finite=False``), not refused: such a checkpoint is scored
    with a warning.

    Raises:
        InputError: the model cannot read an input of its declared size, or its outputs do not fit its
            vocabulary.
    """
    src = getattr(loaded, "path", "<memory>")
    _, height, width = model_input_shape(loaded)
    model: nn.Module = loaded.model
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            logits = model(_blank_batch(loaded, device))
    except Exception as exc:  # noqa: BLE001 - shape mismatches surface as RuntimeError, ValueError, IndexError...
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise InputError(f"checkpoint {src} cannot read an input of its declared size {height}x{width} "
                         f"({first}); its input size does not fit its weights: re-save the model") from None
    finally:
        if was_training:
            model.train()
    classes = _expected_classes(loaded)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3 or logits.shape[0] != 1 or logits.shape[1] < 1 \
            or (classes is not None and logits.shape[2] != classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"checkpoint {src} gives outputs of shape {shape} for one input, not (1, steps, "
                         f"{classes or 'classes'}); its weights do not fit its vocabulary: re-save the model")
    return ForwardCheck(time_steps=int(logits.shape[1]), finite=bool(torch.isfinite(logits).all()))


def ctc_steps_needed(ids: Sequence[int]) -> int:
    """Time steps CTC needs for a label: one per character plus a blank between repeated characters."""
    return len(ids) + sum(1 for a, b in itertools.pairwise(ids) if a == b)


def labels_too_long(labels: Iterable[str], encode: Any, time_steps: int) -> list[str]:
    """The labels whose CTC alignment needs more than ``time_steps`` steps (their loss is infinite)."""
    return [label for label in labels if ctc_steps_needed(encode(label)) > time_steps]


def bounded_info(data: dict[str, Any], max_items: int = 50, max_string: int = 200) -> dict[str, Any]:
    """A printable copy of a checkpoint's metadata with long lists, dicts and strings cut short.

    ``state_dict``, ``train_state`` and ``augment`` are left out; tensors become their shape.
    """
    budget = _Budget(5_000)

    def cut(value: Any, depth: int) -> Any:
        budget.left -= 1
        if budget.left < 0 or depth > 8:
            return "..."
        if isinstance(value, str):
            return value if len(value) <= max_string else value[:max_string] + f"... ({len(value):,} characters)"
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, _PRIMITIVES):
            return value
        if isinstance(value, torch.Tensor):
            return f"tensor{list(value.shape)}"
        if isinstance(value, dict):
            items = list(value.items())
            shown = {str(k): cut(v, depth + 1) for k, v in items[:max_items]}
            if len(items) > max_items:
                shown["..."] = f"{len(items) - max_items} more"
            return shown
        if isinstance(value, (list, tuple)):
            shown_list = [cut(v, depth + 1) for v in value[:max_items]]
            if len(value) > max_items:
                shown_list.append(f"... {len(value) - max_items} more")
            return shown_list
        return type(value).__name__

    return {str(k): cut(v, 0) for k, v in data.items() if k not in ("state_dict", "train_state", "augment")}


def unreadable_label_warning(model: nn.Module, head: Any, input_spec: Any, labels: Sequence[str],
                             what: str = "training") -> str:
    """A warning sentence when some ``labels`` can never be read by ``model`` (too long for its time steps,
    or not representable by its head); ``""`` when every label can be.

    The time steps come from one forward pass on a blank input. Such labels have an infinite CTC loss:
    training zeroes it (they teach nothing) and scoring reports NaN, so they are named up front.
    """
    from types import SimpleNamespace

    height, width = (int(v) for v in getattr(input_spec, "size", input_spec))
    probe = SimpleNamespace(model=model, head=head, input=input_spec if hasattr(input_spec, "channels") else None,
                            input_size=(height, width), path="the model", meta={}, vocab=getattr(head, "vocab", None))
    steps = check_forward(probe).time_steps
    if hasattr(head, "unreadable"):
        bad = [(label, head.unreadable(label, steps)) for label in labels]
        bad = [(label, why) for label, why in bad if why]
    else:
        encode = head.encode if hasattr(head, "encode") else (lambda text: list(text))
        bad = [(label, f"needs {ctc_steps_needed(encode(label))} time steps, the model has {steps}")
               for label in labels_too_long(labels, encode, steps)]
    if not bad:
        return ""
    label, why = bad[0]
    return (f"{len(bad)} of {len(labels)} {what} labels can never be read by this model (first {label!r}: {why}); "
            "their loss is infinite, so they teach nothing: fix the labels or use a model with more time steps")
