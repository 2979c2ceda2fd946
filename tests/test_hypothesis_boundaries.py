"""Property-based tests of every boundary where outside input enters (issue 21).

Source listings and file names, manifests, checkpoint dicts, CLI options and augmentation JSON: every
generated input ends in a result or in one ``InputError`` sentence (CLI: exit code 2), never in another
exception or a hang (each example runs under a deadline).

The example budget is small by default, to keep the suite fast on a shared machine; set
``PLATELENS_HYPOTHESIS_EXAMPLES`` (e.g. 500) for a deeper search.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from conftest import TINY_VOCAB, write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr_core.augment import pipeline_from_dict
from ocr_core.checkpoint import load_model, make_checkpoint, save_checkpoint
from ocr_core.cli import main
from ocr_core.data.dataset import decode_listing
from ocr_core.data.sources import list_source
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

EXAMPLES = int(os.environ.get("PLATELENS_HYPOTHESIS_EXAMPLES", "20"))
BOUNDARY = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=20),  # a hang fails the example instead of the suite timing out
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    derandomize=os.environ.get("PLATELENS_HYPOTHESIS_RANDOM") is None,  # CI runs are reproducible
)

# Characters file names and labels are made of: plate glyphs, separators, odd but legal ones.
NAME_CHARS = st.sampled_from(list("皖沪京AB019Z-_. ~#%&'()[]{}+=,;@!ЖЁéß\u200b\u3000") + ["x"])
NAMES = st.text(NAME_CHARS, min_size=1, max_size=24).filter(lambda n: n not in (".", "..") and "/" not in n)
SUFFIXES = st.sampled_from([".png", ".jpg", ".PNG", ".jpeg", ".bmp", ".txt", ".json", ".csv", "", ".webp"])
CONTENTS = st.sampled_from(["good", "empty", "text", "truncated", "loop-link", "dangling-link", "folder", "fifo"])

_PNG = None


def _png_bytes() -> bytes:
    global _PNG
    if _PNG is None:
        path = Path(tempfile.mkdtemp()) / "x.png"
        write_png(path, np.random.default_rng(0).integers(0, 256, (24, 94, 3), dtype=np.uint8))
        _PNG = path.read_bytes()
    return _PNG


def _make_entry(folder: Path, name: str, content: str) -> None:
    path = folder / name
    if path.exists() or path.is_symlink():
        return
    if content == "good":
        path.write_bytes(_png_bytes())
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "text":
        path.write_text("not an image", encoding="utf-8")
    elif content == "truncated":
        path.write_bytes(_png_bytes()[:40])
    elif content == "loop-link":
        path.symlink_to(name)
    elif content == "dangling-link":
        path.symlink_to(folder / "gone" / name)
    elif content == "folder":
        path.mkdir()
        (path / "000001-A1.png").write_bytes(_png_bytes())
    elif content == "fifo":
        os.mkfifo(path)


def _listing_outcome(spec: Path) -> None:
    try:
        listing = list_source(spec)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert listing.samples
    try:
        dataset = decode_listing(listing, threads=1)
    except InputError as exc:
        assert str(exc)
        return
    assert dataset.images.shape[1:] == (32, 128, 3)
    assert len(dataset) + len(dataset.skipped) >= len(listing.samples)


# ---- source listings and file names ----------------------------------------------------------------------

@BOUNDARY
@given(st.lists(st.tuples(NAMES, SUFFIXES, CONTENTS), min_size=0, max_size=8))
def test_any_folder_of_entries_lists_or_says_why(entries):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "set"
        folder.mkdir()
        for name, suffix, content in entries:
            with contextlib.suppress(OSError):  # a name the file system refuses is no input of ours
                _make_entry(folder, name + suffix, content)
        _listing_outcome(folder)


# ---- manifests ---------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(NAME_CHARS, max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["file", "text", "x"]), children,
                                                                      max_size=3),
    max_leaves=12,
)


@BOUNDARY
@given(JSON_VALUES, st.lists(st.tuples(NAMES, SUFFIXES, CONTENTS), max_size=3))
def test_any_json_manifest_lists_or_says_why(document, entries):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, suffix, content in entries:
            with contextlib.suppress(OSError):
                _make_entry(root, name + suffix, content)
        manifest = root / "m.json"
        manifest.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        _listing_outcome(manifest)


@BOUNDARY
@given(st.text(st.sampled_from(list("file,text\n\t\"';皖A1.png x") + ["\r", "\x00"]), max_size=120))
def test_any_csv_manifest_lists_or_says_why(text):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "A1.png").write_bytes(_png_bytes())
        manifest = root / "m.csv"
        manifest.write_text(text, encoding="utf-8")
        _listing_outcome(manifest)


# ---- checkpoint dicts -------------------------------------------------------------------------------------

_BASE: dict | None = None


def _base_checkpoint() -> dict:
    global _BASE
    if _BASE is None:
        torch.manual_seed(0)
        vocab = Vocab(TINY_VOCAB)
        config = arch_config("small")
        _BASE = make_checkpoint(build_model("small", vocab.num_classes, config), "small", config, vocab, (32, 128))
    return _BASE


WEIRD = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=8)
    | st.sampled_from([torch.zeros(2), torch.ones(3, 3, dtype=torch.int64), torch.tensor(float("nan"))]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["format_version", "arch", "arch_config", "vocab", "input_size", "state_dict", "metrics",
                          "augment", "head", "input", "created", "train_state", "extra"])
SIZES = st.lists(st.integers(-5, 5000), min_size=0, max_size=3)
CONFIG_KEYS = st.sampled_from(["channels", "rnn_hidden", "dropout", "sequence_length", "lstm_hidden", "nope"])


@BOUNDARY
@given(st.dictionaries(FIELDS, WEIRD | SIZES, max_size=3), st.dictionaries(CONFIG_KEYS, WEIRD, max_size=2),
       st.booleans())
def test_any_checkpoint_dict_loads_or_says_why(changes, config_changes, drop_format_2):
    data = dict(_base_checkpoint())
    if drop_format_2:
        data = {k: v for k, v in data.items() if k not in ("head", "input")}
        data["format_version"] = 1
    data["arch_config"] = {**data["arch_config"], **config_changes}
    data.update(changes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.pt"
        torch.save(data, path)
        try:
            loaded = load_model(path)
        except InputError as exc:
            assert "c.pt" in str(exc) and "\n" not in str(exc)
            return
        assert loaded.model(torch.zeros(1, 3, *loaded.input_size)).ndim == 3


# ---- CLI options ------------------------------------------------------------------------------------------

OPTION_VALUES = st.one_of(
    st.integers(-3, 3).map(str), st.sampled_from(["nan", "inf", "-inf", "1e400", "0.5", "1.0", "", " ", "x", "-1e-9",
                                                  "small", "fcnn_bilstm", "plates", "ccpd,ru", "cpu", "auto", "tpu",
                                                  "default", "none", "9" * 30]),
)
TRAIN_OPTIONS = st.sampled_from(["--epochs", "--batch-size", "--lr", "--workers", "--seed", "--val-split", "--arch",
                                 "--vocab", "--device", "--synth-mix", "--augment"])
SYNTH_OPTIONS = st.sampled_from(["--count", "--seed", "--style", "--provinces"])
SCORE_OPTIONS = st.sampled_from(["--batch-size", "--device", "--out"])


def _run_main(argv: list[str]) -> int:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # --help only
            code = int(exc.code or 0)
    lines = [line for line in err.getvalue().splitlines() if line.startswith("error")]
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len(lines) == 1, err.getvalue()
    return code


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    data.mkdir()
    for i, label in enumerate(["皖A12345", "沪B67890"]):
        (data / f"{i:06d}-{label}.png").write_bytes(_png_bytes())
    ckpt = root / "tiny.pt"
    save_checkpoint(_base_checkpoint(), ckpt)
    return {"root": root, "data": data, "ckpt": ckpt}


@BOUNDARY
@given(st.lists(st.tuples(TRAIN_OPTIONS, OPTION_VALUES), max_size=4))
def test_any_train_options_start_or_exit_2(cli_files, options):
    argv = ["train", "--data", str(cli_files["data"]), "--out", str(cli_files["root"] / "run")]
    for flag, value in options:
        argv += [flag, value]
    with mock.patch("ocr_core.cli._check_train_inputs"), mock.patch("ocr_core.train.train",
                                                                   return_value={"best_accuracy": 1.0}) as train:
        code = _run_main(argv)
    assert code in (0, 2)
    if code == 0:  # whatever reached training is valid
        opts = train.call_args.args[0]
        assert opts.epochs >= 1 and (opts.batch_size is None or opts.batch_size >= 1)
        assert opts.lr is None or (math.isfinite(opts.lr) and opts.lr > 0)
        assert opts.workers is None or opts.workers >= 0
        assert 0 <= opts.val_split < 1


@BOUNDARY
@given(st.lists(st.tuples(SYNTH_OPTIONS, OPTION_VALUES), max_size=4))
def test_any_synth_options_run_or_exit_2(cli_files, options):
    argv = ["synth", "--out", str(cli_files["root"] / "synth")]
    for flag, value in options:
        argv += [flag, value]
    with mock.patch("ocr_core.data.synth.generate", return_value=[]) as generate:
        code = _run_main(argv)
    assert code in (0, 2)
    if code == 0:
        _, count, seed = generate.call_args.args[:3]
        assert count >= 1 and 0 <= seed < 2**32


@BOUNDARY
@given(st.lists(st.tuples(SCORE_OPTIONS, OPTION_VALUES | st.sampled_from(["s.csv", "s.parquet", "s.xlsx", "data"])),
                max_size=3))
def test_any_score_options_score_or_exit_2(cli_files, options):
    argv = ["score", "--checkpoint", str(cli_files["ckpt"]), "--data", str(cli_files["data"])]
    for flag, value in options:
        if flag == "--out" and value:
            value = str(cli_files["root"] / value)
        argv += [flag, value]
    assert _run_main(argv) in (0, 2)


# ---- augmentation JSON ------------------------------------------------------------------------------------

TRANSFORMS = st.sampled_from(["Blur", "MedianBlur", "GaussianBlur", "Resize", "ToGray", "CoarseDropout", "GaussNoise",
                              "ColorJitter", "Perspective", "PixelDropout", "FDA", "HistogramMatching", "NoOp",
                              "RandomBrightnessContrast", "Emboss", "Downscale", "ImageCompression", "Nope",
                              "ocr_core.augment.BottomEdgeOcclusion", "Compose", "OneOf"])
PARAM_KEYS = st.sampled_from(["p", "blur_limit", "height", "width", "num_output_channels", "num_holes_range",
                              "std_range", "scale", "quality_range", "max_height_frac", "color_mode", "fill"])
PARAM_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 300), st.integers(-2**31, 2**40), st.floats(-2, 300),
    st.sampled_from([float("nan"), float("inf")]), st.text(max_size=5),
    st.lists(st.integers(-5, 400) | st.floats(-1, 2), max_size=3),
)
TRANSFORM_DICTS = st.recursive(
    st.builds(lambda name, params: {"__class_fullname__": name, **params}, TRANSFORMS,
              st.dictionaries(PARAM_KEYS, PARAM_VALUES, max_size=3)),
    lambda children: st.builds(lambda name, kids: {"__class_fullname__": name, "p": 1.0, "transforms": kids},
                               st.sampled_from(["Compose", "OneOf", "Sequential"]), st.lists(children, max_size=3)),
    max_leaves=5,
)


@BOUNDARY
@given(st.one_of(TRANSFORM_DICTS.map(lambda t: {"transform": t}), JSON_VALUES))
def test_any_augmentation_json_builds_a_safe_pipeline_or_says_why(document):
    try:
        pipeline = pipeline_from_dict(document)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    crop = np.full((32, 128, 3), 127, np.uint8)
    for seed in range(3):
        pipeline.set_random_seed(seed)
        out = pipeline(image=crop)["image"]
        assert out.shape == crop.shape and out.dtype == crop.dtype
