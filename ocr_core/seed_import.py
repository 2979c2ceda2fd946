"""Importing the seed notebooks' saved weights as PlateLens checkpoints.

Each notebook saved a plain ``model.state_dict()`` (seed 003: of its Lightning module, as
``lstm_model.pth``). Its architecture is known from the registry name the user gives; the sizes that a
notebook let vary (hidden sizes, layer counts, output steps) are read from the tensor shapes, and the
characters from ``alphabet`` or the notebook's own default, laid out on the outputs as that notebook did:

========================  ==================================================================
arch (seed)               token layout of the outputs
========================  ==================================================================
``resnet_bilstm`` (001)   blank 0, OOV 1, PAD 2, characters from 3 (``get_char_map``)
``resnet18_gru`` (002)    blank 0, characters from 1 (``pred_to_string``: ``argmax - 1``)
``cnn_fixed``,            position 0: ``HIEROGLYPHS[i]``; positions 1-6: ``OTHER[i]``
``cnn_lstm_fixed`` (003)
``crnn_shi``,             blank 0, characters from 1 (``enumerate(CHARS, start=1)``)
``crnn_compact`` (004)
``crnn_fixed`` (004)      5 positions, output 0 never a target, characters from 1
========================  ==================================================================

Seed 002 fed BGR crops (``cv2.imread``); the import reverses the input channels of its first
convolution, which makes the model read RGB crops exactly as the notebook read BGR ones.
"""

from __future__ import annotations

import datetime as _dt
import re
import string
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ocr_core.checkpoint import _safe_torch_load, import_seed000
from ocr_core.checkpoint_checks import check_archive
from ocr_core.errors import InputError
from ocr_core.heads import CTCHead, FixedHead
from ocr_core.models import arch_config, arch_spec, build_model
from ocr_core.preprocess import InputSpec

IMPORT_FORMAT_VERSION = 2

#: Seed 001 and 003: the 31 provinces of CCPD2019, sorted by code point as the notebooks' ``sorted(set(...))``
#: and ``np.unique`` left them.
PROVINCES = "云京冀吉宁川新晋桂沪津浙渝湘琼甘皖粤苏蒙藏豫贵赣辽鄂闽陕青鲁黑"
#: CCPD2019's letters: no I (seed 003's ``OTHER`` lists them; O does occur).
CCPD_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
#: Seed 001's alphabet: the sorted characters of the training file names. Its printed string shows all
#: 26 letters, but the encoded example in the same notebook ('皖A25V59' -> [54, 13, 5, 8, 33, 8, 12]) puts
#: V at 33 and 皖 at 54, which only 25 letters before the provinces give; the CCPD2019 set (no I) is the
#: default, and the printed one is taken when the file's output layer has its size instead.
SEED001_ALPHABET = string.digits + CCPD_LETTERS + PROVINCES
SEED001_PRINTED_ALPHABET = string.digits + string.ascii_uppercase + PROVINCES
#: Seed 002's ``abc``: Russian plate letters that look Latin, in the notebook's (unsorted) order.
SEED002_ALPHABET = "0123456789ABEKMHOPCTYX"
#: Seed 003's ``HIEROGLYPHS`` (position 0) and ``OTHER`` (positions 1-6).
SEED003_HIEROGLYPHS = PROVINCES
SEED003_OTHER = string.digits + CCPD_LETTERS
#: Seed 004's ``OCRDataset.CHARS``.
SEED004_ALPHABET = string.digits + string.ascii_lowercase

SEED_ARCHS = ("fcnn_bilstm", "resnet_bilstm", "resnet18_gru", "cnn_fixed", "cnn_lstm_fixed", "crnn_shi",
              "crnn_compact", "crnn_fixed")


@dataclass(frozen=True)
class _Plan:
    """What an import found in a file: the arch config, the head, the input settings."""

    config: dict[str, Any]
    head: CTCHead | FixedHead
    input: InputSpec


def _shape(state: dict[str, torch.Tensor], key: str, dim: int) -> int:
    return int(state[key].shape[dim])


def _rnn_layers(state: dict[str, torch.Tensor], prefix: str) -> int:
    return sum(1 for k in state if re.fullmatch(re.escape(prefix) + r"\.weight_ih_l\d+", k))


def _check_unique(alphabet: str, path: Path, what: str = "alphabet") -> None:
    duplicates = sorted({c for c in alphabet if alphabet.count(c) > 1})
    if duplicates:
        raise InputError(f"the {what} given for {path} repeats {''.join(duplicates)!r}; "
                         "give every character once, in the notebook's order")


def _ctc_alphabet(state: dict[str, torch.Tensor], key: str, reserved: int, path: Path, alphabet: str | None,
                  defaults: tuple[str, ...]) -> str:
    """The alphabet whose length fits the output layer ``key`` (rows = ``reserved`` + characters)."""
    rows = _shape(state, key, 0)
    if alphabet is not None:
        _check_unique(alphabet, path)
        if len(alphabet) + reserved != rows:
            raise InputError(
                f"{path} has {rows} outputs, which is {rows - reserved} characters in this notebook's layout, "
                f"but the alphabet given has {len(alphabet)}; pass --alphabet with the notebook's alphabet"
            )
        return alphabet
    for candidate in defaults:
        if len(candidate) + reserved == rows:
            return candidate
    raise InputError(
        f"{path} has {rows} outputs ({rows - reserved} characters in this notebook's layout) and the notebook's "
        f"default alphabet has {len(defaults[0])}; pass --alphabet with the {rows - reserved} characters it was "
        "trained on, in its order"
    )


def _plan_resnet_bilstm(state: dict[str, torch.Tensor], path: Path, alphabet: str | None) -> _Plan:
    p = "feature_extractor."
    widths = [_shape(state, p + "start.conv.weight", 0)]
    widths += [_shape(state, f"{p}blocks{s}.0.conv.weight", 0) for s in range(2, 6)]
    blocks = len({k.split(".")[2] for k in state if k.startswith(p + "blocks1.")})
    config = {
        "widths": widths,
        "blocks_per_stage": blocks,
        "time_feature_count": _shape(state, "bilstm.lstm.weight_ih_l0", 1),
        "lstm_hidden": _shape(state, "bilstm.lstm.weight_hh_l0", 1),
        "lstm_layers": _rnn_layers(state, "bilstm.lstm"),
        "in_channels": _shape(state, p + "start.conv.weight", 1),
    }
    chars = _ctc_alphabet(state, "classifier.3.weight", 3, path, alphabet,
                          (SEED001_ALPHABET, SEED001_PRINTED_ALPHABET))
    return _Plan(config, CTCHead(chars, blank=0, first=3), arch_spec("resnet_bilstm").input)


def _plan_resnet18_gru(state: dict[str, torch.Tensor], path: Path, alphabet: str | None) -> _Plan:
    columns = _shape(state, "features_extractor.proj.weight", 1)
    height = arch_spec("resnet18_gru").input.height  # the pool has no weights: 64 (any of 64-95 pools the same)
    config = {
        "cnn_input_size": [height, 32 * columns],
        "cnn_output_len": _shape(state, "features_extractor.proj.weight", 0),
        "rnn_hidden_size": _shape(state, "sequence_predictor.rnn.weight_hh_l0", 1),
        "rnn_num_layers": _rnn_layers(state, "sequence_predictor.rnn"),
        "rnn_bidirectional": "sequence_predictor.rnn.weight_ih_l0_reverse" in state,
        "in_channels": _shape(state, "features_extractor.cnn.0.weight", 1),
    }
    chars = _ctc_alphabet(state, "sequence_predictor.fc.weight", 1, path, alphabet, (SEED002_ALPHABET,))
    spec = arch_spec("resnet18_gru").input.with_size(height, 32 * columns)
    return _Plan(config, CTCHead(chars), spec)


def _split_seed003(alphabet: str | None, path: Path) -> tuple[str, str]:
    if alphabet is None:
        return SEED003_HIEROGLYPHS, SEED003_OTHER
    first, sep, rest = alphabet.partition("|")
    if not sep:
        first, rest = SEED003_HIEROGLYPHS, alphabet
    _check_unique(first, path, "position-0 (HIEROGLYPHS) alphabet")
    _check_unique(rest, path, "positions 1-6 (OTHER) alphabet")
    return first, rest


def _plan_numbers(arch: str) -> Callable[[dict[str, torch.Tensor], Path, str | None], _Plan]:
    def plan(state: dict[str, torch.Tensor], path: Path, alphabet: str | None) -> _Plan:
        first, rest = _split_seed003(alphabet, path)
        n_first, n_rest = _shape(state, "hieroglyphs_cls.weight", 0), _shape(state, "other_cls.weight", 0)
        if (n_first, n_rest) != (len(first), len(rest)):
            raise InputError(
                f"{path} has a {n_first}-class province head and a {n_rest}-class letter/digit head, but the "
                f"alphabets give {len(first)} and {len(rest)}; pass --alphabet 'HIEROGLYPHS|OTHER' as the "
                "notebook printed them"
            )
        config: dict[str, Any] = {}
        if arch == "cnn_lstm_fixed":
            config = {"lstm_hidden": _shape(state, "lstm.weight_hh_l0", 1), "lstm_layers": _rnn_layers(state, "lstm")}
        config["in_channels"] = _shape(state, "cnn_layers.0.weight", 1)
        spec = arch_spec(arch)
        return _Plan(config, FixedHead(rest, spec.positions, first), spec.input)
    return plan


def _plan_captcha(arch: str) -> Callable[[dict[str, torch.Tensor], Path, str | None], _Plan]:
    def plan(state: dict[str, torch.Tensor], path: Path, alphabet: str | None) -> _Plan:
        chars = _ctc_alphabet(state, "clf_layer.weight", 1, path, alphabet, (SEED004_ALPHABET,))
        config = {"rnn_hidden_size": _shape(state, "rec_layers.weight_hh_l0", 1),
                  "in_channels": _shape(state, "conv_layers.0.weight", 1)}
        spec = arch_spec(arch)
        head: CTCHead | FixedHead = CTCHead(chars) if spec.head == "ctc" else FixedHead(chars, spec.positions)
        return _Plan(config, head, spec.input)
    return plan


_PLANS: dict[str, tuple[str, str, Callable[[dict[str, torch.Tensor], Path, str | None], _Plan]]] = {
    # arch: (seed, a key every state_dict of it has, planner)
    "resnet_bilstm": ("001", "feature_extractor.start.conv.weight", _plan_resnet_bilstm),
    "resnet18_gru": ("002", "features_extractor.proj.weight", _plan_resnet18_gru),
    "cnn_fixed": ("003", "hieroglyphs_cls.weight", _plan_numbers("cnn_fixed")),
    "cnn_lstm_fixed": ("003", "lstm.weight_hh_l0", _plan_numbers("cnn_lstm_fixed")),
    "crnn_shi": ("004", "clf_layer.weight", _plan_captcha("crnn_shi")),
    "crnn_compact": ("004", "clf_layer.weight", _plan_captcha("crnn_compact")),
    "crnn_fixed": ("004", "clf_layer.weight", _plan_captcha("crnn_fixed")),
}


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"{path} does not exist; give the file the notebook saved with torch.save(model.state_dict(), ...)")
    check_archive(path)
    try:
        data = _safe_torch_load(path)
    except InputError as exc:
        if zipfile.is_zipfile(path) and "pickled Python objects" not in str(exc):
            raise  # a damaged torch.save file: the loader's sentence says so
        # Seed 001 pickled whole model objects (pkl.dump); only their weights can be read safely.
        raise InputError(f"{exc}; in the notebook, save the weights with torch.save(model.state_dict(), PATH) "
                         "and import that file") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict) and "arch" not in data:
        data = data["state_dict"]  # a Lightning trainer checkpoint (.ckpt) keeps the module's weights here
    if isinstance(data, dict) and {"arch", "state_dict", "vocab"} <= set(data):
        raise InputError(f"{path} is already a PlateLens checkpoint; load it directly instead of importing it")
    if isinstance(data, dict) and {"model", "alphabet"} <= set(data):
        raise InputError(f"{path} is a seed-000 checkpoint (model and alphabet); import it as fcnn_bilstm")
    if not isinstance(data, dict) or not data or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()):
        raise InputError(f"{path} is not a state_dict (a dict of named tensors); save the notebook's model with "
                         "torch.save(model.state_dict(), PATH) and import that file")
    return dict(data)


def _strip_prefix(state: dict[str, torch.Tensor], marker: str) -> dict[str, torch.Tensor]:
    """Drop a wrapper's common key prefix (``model.``, ``module.``) when the arch's keys sit under it."""
    if marker in state:
        return state
    for key in state:
        if key.endswith("." + marker):
            prefix = key[: -len(marker)]
            if all(k.startswith(prefix) for k in state):
                return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _guess_arch(state: dict[str, torch.Tensor], path: Path) -> str:
    """The seed architecture whose state_dict keys ``state`` has exactly, or ""."""
    for arch, (_, marker, planner) in _PLANS.items():
        candidate = _strip_prefix(state, marker)
        try:
            plan = planner(candidate, path, None)
            with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                keys = set(build_model(arch, plan.head.output_classes, plan.config).state_dict())
        except Exception:  # noqa: BLE001, S112 - any failure means "not this one"
            continue
        missing = keys - set(candidate)
        if set(candidate) <= keys and all(k.endswith("num_batches_tracked") for k in missing):
            return arch
    return ""


def _wrong_arch(arch: str, seed: str, path: Path, state: dict[str, torch.Tensor], detail: str) -> InputError:
    guess = _guess_arch(state, path)
    hint = f"it looks like {guess} (seed {_PLANS[guess][0]}): import it as that" if guess and guess != arch \
        else "check the architecture name or the file"
    return InputError(f"{path} is not a state_dict of {arch} (seed {seed}): {detail}; {hint}")


def _key_summary(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def import_seed(arch: str, path: str | Path, alphabet: str | None = None) -> dict[str, Any]:
    """Convert a seed notebook's saved ``state_dict`` for registry architecture ``arch`` into a checkpoint dict.

    ``alphabet`` overrides the notebook's default characters (see the module docstring for each
    notebook's layout and default); for seed 003's ``cnn_fixed``/``cnn_lstm_fixed`` it is
    ``"HIEROGLYPHS|OTHER"`` (or just ``OTHER``, keeping the default provinces). ``fcnn_bilstm`` (seed 000)
    is passed on to :func:`ocr_core.checkpoint.import_seed000`, whose file carries its own alphabet.

    The result is a format-2 checkpoint dict (``save_checkpoint`` writes it) whose model gives the
    notebook's logits and readings on the same crops, preprocessed by its ``input`` settings.

    Raises:
        InputError: unknown arch, unreadable or pickled file, another architecture's weights, or an
            alphabet whose length does not fit the file's output layer.
    """
    path = Path(path)
    if arch == "fcnn_bilstm":
        if alphabet is not None:
            raise InputError(f"seed 000's checkpoint {path} carries its own alphabet; drop --alphabet")
        return import_seed000(path)
    if arch not in _PLANS:
        raise InputError(f"there is no seed import for architecture {arch!r}; choose one of {', '.join(SEED_ARCHS)}")
    seed, marker, planner = _PLANS[arch]
    state = _strip_prefix(_read_state_dict(path), marker)
    try:
        plan = planner(state, path, alphabet)
    except KeyError as exc:
        raise _wrong_arch(arch, seed, path, state, f"it has no {exc.args[0]!r}") from None
    except ValueError as exc:  # a head or input setting the shapes imply cannot exist
        raise InputError(f"{path} does not fit {arch} (seed {seed}): {exc}") from None
    if arch == "resnet18_gru" and plan.config["in_channels"] == 3:
        # The notebook's crops were BGR; reversing conv1's input channels makes the same model read RGB.
        state["features_extractor.cnn.0.weight"] = state["features_extractor.cnn.0.weight"].flip(1)
    try:
        model = build_model(arch, plan.head.output_classes, plan.config)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} does not fit {arch} (seed {seed}): {exc}") from None
    expected = model.state_dict()
    as_saved = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value.clone()  # older torch versions did not save this counter
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        detail = "; ".join(part for part in (missing and f"missing {_key_summary(missing)}",
                                             unexpected and f"unexpected {_key_summary(unexpected)}") if part)
        raise _wrong_arch(arch, seed, path, as_saved, detail)
    wrong = [f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise InputError(f"{path} has weights of other shapes than {arch} (seed {seed}) builds: {_key_summary(wrong)}; "
                         "check the architecture name or the file")
    model.load_state_dict(state)
    model.eval()
    with torch.inference_mode():
        blank = torch.zeros(1, plan.input.channels, plan.input.height, plan.input.width)
        try:
            steps = model(blank).shape[1]
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{path} does not fit {arch}'s {plan.input.height}x{plan.input.width} input: "
                             f"{str(exc).splitlines()[0][:120]}") from None
    if isinstance(plan.head, FixedHead) and steps != plan.head.positions:
        raise InputError(f"{path} reads {steps} positions, the notebook's head {plan.head.positions}")
    return {
        "format_version": IMPORT_FORMAT_VERSION,
        "arch": arch,
        "arch_config": {k: list(v) if isinstance(v, tuple) else v for k, v in arch_config(arch, plan.config).items()},
        "head": plan.head.to_dict(),
        "input": plan.input.to_dict(),
        "vocab": plan.head.vocab.chars,
        "input_size": list(plan.input.size),
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "augment": None,
        "data_fingerprint": "",
        "metrics": {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "imported_from": str(path),
        "seed": seed,
    }

