"""Checkpoints: round trip, refusing pickles and damaged files, vocabulary mismatch, seed-000 import."""

from __future__ import annotations

import os
import pathlib
from pathlib import Path

import pytest
import torch

from ocr_core.checkpoint import (
    freeze_for_inference,
    import_seed000,
    load_model,
    make_checkpoint,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.models.fcnn_bilstm import FcnnBiLSTM, FcnnBiLSTMConfig
from ocr_core.preprocess import to_model_input
from ocr_core.vocab import Vocab

from conftest import SHIPPED_DEMO


class _TouchOnUnpickle:
    """Unpickling this object would create ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_save_load_round_trip(tmp_path, tiny_checkpoint):
    raw = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    loaded = load_model(tiny_checkpoint, fuse=False)
    assert loaded.arch == "small"
    assert loaded.vocab == Vocab(raw["vocab"])
    assert loaded.input_size == (32, 128)
    assert not loaded.model.training
    assert "state_dict" not in loaded.meta
    state = loaded.model.state_dict()
    assert state.keys() == raw["state_dict"].keys()
    for key, tensor in raw["state_dict"].items():
        assert torch.equal(state[key], tensor), key
    # Same outputs as a model rebuilt by hand from the raw dict.
    torch.manual_seed(1)
    images = torch.rand(2, 3, 32, 128)
    manual = build_model("small", loaded.vocab.num_classes, raw["arch_config"])
    manual.load_state_dict(raw["state_dict"])
    manual.eval()
    with torch.no_grad():
        assert torch.allclose(loaded.model(images), manual(images))
    # No temp file left behind by the atomic save.
    assert [p.name for p in tiny_checkpoint.parent.iterdir()] == [tiny_checkpoint.name]


def test_make_checkpoint_keeps_metadata(tmp_path):
    vocab = Vocab("AB1")
    config = arch_config("small", {"channels": [8, 8, 16, 16], "rnn_hidden": 16})
    model = build_model("small", vocab.num_classes, config)
    ckpt = make_checkpoint(model, "small", config, vocab, (32, 128), data_fingerprint="abc",
                           metrics={"val_accuracy": 0.5})
    path = tmp_path / "sub" / "m.pt"
    save_checkpoint(ckpt, path)
    data = read_checkpoint(path)
    assert data["arch_config"]["channels"] == [8, 8, 16, 16]
    assert data["vocab"] == "AB1" and data["data_fingerprint"] == "abc"
    assert data["metrics"] == {"val_accuracy": 0.5}
    loaded = model_from_checkpoint(data, str(path))
    assert loaded.model.head.out_features == 4


@pytest.mark.parametrize("reader", [read_checkpoint, load_model])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, reader, monkeypatch):
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _TouchOnUnpickle(marker)}, evil)
    # Sanity: a plain unpickle of this file really would create the marker.
    probe = tmp_path / "probe"
    torch.save(_TouchOnUnpickle(probe), tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="evil.pt"):
        reader(evil)
    assert not marker.exists()


def test_truncated_checkpoint_is_refused(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.pt"):
        load_model(cut)


@pytest.mark.parametrize("content", [
    os.urandom(4096),
    b"",
    b"hello world, not a checkpoint\n",
    b"\x80\x02}q\x00.",  # a pickled empty dict: readable but not a PlateLens checkpoint
    b"PK\x03\x04 broken zip",
], ids=["random", "empty", "text", "pickled-dict", "broken-zip"])
def test_non_checkpoint_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.pt"):
        read_checkpoint(path)


def test_random_bytes_never_escape_as_other_errors(tmp_path):
    """Whatever garbage a file holds, reading it ends in InputError (never KeyError, IndexError ...)."""
    import random

    rng = random.Random(7)
    path = tmp_path / "garbage.pt"
    for _ in range(150):
        path.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))))
        with pytest.raises(InputError):
            read_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope.pt")


def test_other_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="not a PlateLens checkpoint"):
        read_checkpoint(path)
    torch.save([torch.zeros(2)], path)
    with pytest.raises(InputError, match="weights.pt"):
        read_checkpoint(path)


def test_vocabulary_that_does_not_fit_the_weights(tmp_path, tiny_checkpoint):
    data = read_checkpoint(tiny_checkpoint)
    data["vocab"] = data["vocab"] + "豫鄂"  # two more classes than the head has rows
    with pytest.raises(InputError, match="does not match"):
        model_from_checkpoint(data, "other.pt")
    same_size = data["vocab"][:-2]
    data["vocab"] = same_size[:-1] + same_size[0]  # right length, but a duplicated character
    with pytest.raises(InputError, match="does not match"):
        model_from_checkpoint(data, "dup.pt")
    data["vocab"] = data["vocab"][:5]
    path = tmp_path / "other.pt"
    save_checkpoint(data, path)
    with pytest.raises(InputError, match="other.pt"):
        load_model(path)


def test_format_1_checkpoints_load_with_a_ctc_head_and_their_old_input_scaling(tmp_path, tiny_checkpoint):
    # Format 1 scaled inside forward: 1/255 for small, 1/input_divisor for fcnn_bilstm.
    data = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    old = {k: v for k, v in data.items() if k not in ("head", "input")}
    old["format_version"] = 1
    path = tmp_path / "v1.pt"
    save_checkpoint(old, path)
    loaded = load_model(path)
    assert loaded.head.kind == "ctc" and loaded.head.chars == data["vocab"]
    assert loaded.input.scale == pytest.approx(1 / 255) and loaded.input.channels == 3
    torch.manual_seed(0)
    model = FcnnBiLSTM(FcnnBiLSTMConfig(sequence_length=16, lstm_hidden=16), 4).eval()
    v1 = {"format_version": 1, "arch": "fcnn_bilstm", "vocab": "ABC", "input_size": [32, 128],
          "arch_config": {"sequence_length": 16, "lstm_hidden": 16, "input_divisor": 256.0},
          "state_dict": model.state_dict()}
    save_checkpoint(v1, path)
    loaded = load_model(path, fuse=False)
    assert loaded.input.scale == pytest.approx(1 / 256)
    crops = torch.randint(0, 256, (2, 32, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(loaded.model(to_model_input(crops.numpy(), loaded.input)),
                              model(crops.permute(0, 3, 1, 2).float() / 256), atol=1e-6)


def test_the_shipped_demo_checkpoint_still_loads():
    loaded = load_model(SHIPPED_DEMO)
    assert loaded.head.kind == "ctc" and loaded.input.size == (32, 128)


def test_newer_format_version_is_refused(tmp_path, tiny_checkpoint):
    data = read_checkpoint(tiny_checkpoint)
    data["format_version"] = 99
    path = tmp_path / "future.pt"
    save_checkpoint(data, path)
    with pytest.raises(InputError, match="format version 99"):
        read_checkpoint(path)


# ---- seed-000 import -------------------------------------------------------------------------------

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _seed000_file(tmp_path: Path) -> tuple[Path, FcnnBiLSTM]:
    torch.manual_seed(0)
    # Non-default sizes, so the importer must infer them from the weights.
    model = FcnnBiLSTM(FcnnBiLSTMConfig(sequence_length=20, lstm_hidden=32), len(ALPHABET) + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.eval()
    path = tmp_path / "seed000.pt"
    torch.save({
        "model": model.state_dict(),
        "alphabet": ALPHABET,
        "target_length": 7,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "scheduler": {"step_size": 10, "gamma": 0.5, "last_epoch": 3},
    }, path)
    return path, model


def test_import_seed000(tmp_path):
    path, original = _seed000_file(tmp_path)
    checkpoint = import_seed000(path)
    assert checkpoint["arch"] == "fcnn_bilstm"
    assert checkpoint["vocab"] == ALPHABET.upper()
    assert checkpoint["arch_config"]["sequence_length"] == 20
    assert checkpoint["arch_config"]["lstm_hidden"] == 32
    assert checkpoint["target_length"] == 7
    out = tmp_path / "imported.pt"
    save_checkpoint(checkpoint, out)
    loaded = load_model(out)
    assert loaded.arch == "fcnn_bilstm"
    for i, char in enumerate(ALPHABET):
        assert loaded.vocab.encode(char.upper()) == [i + 1]
    torch.manual_seed(2)
    crops = torch.randint(0, 256, (2, 32, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        # The notebook fed pixels / 256; the imported checkpoint's input settings do the same.
        expected = original(crops.permute(0, 3, 1, 2).float() / 256)
        got = loaded.model(to_model_input(crops.numpy(), loaded.input))
    assert got.shape == (2, 20, len(ALPHABET) + 1)
    assert torch.allclose(got, expected, atol=1e-5)


def test_raw_seed000_file_points_to_the_importer(tmp_path):
    path, _ = _seed000_file(tmp_path)
    with pytest.raises(InputError, match="import-seed000"):
        read_checkpoint(path)


def test_import_seed000_refuses_other_files(tmp_path, tiny_checkpoint):
    with pytest.raises(InputError, match="seed-000"):
        import_seed000(tiny_checkpoint)
    odd = tmp_path / "odd.pt"
    torch.save({"model": "not weights", "alphabet": "abc", "target_length": 7}, odd)
    with pytest.raises(InputError, match="odd.pt"):
        import_seed000(odd)
    torch.save({"model": {}, "alphabet": "aA"}, odd)
    with pytest.raises(InputError, match="duplicate"):
        import_seed000(odd)


def test_import_seed000_alphabet_that_does_not_fit_the_head(tmp_path):
    path, original = _seed000_file(tmp_path)
    data = torch.load(path, weights_only=True)
    data["alphabet"] = ALPHABET[:-1]
    torch.save(data, path)
    with pytest.raises(InputError, match="does not match"):
        import_seed000(path)
    with pytest.raises(InputError, match="does not exist"):
        import_seed000(tmp_path / "nope.pt")


def test_frozen_model_refuses_train_mode_and_keeps_its_outputs(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    model = freeze_for_inference(loaded.model)
    images = torch.rand(2, 3, 32, 128)
    with torch.inference_mode():
        before = model(images)
    with pytest.raises(RuntimeError, match="stays in eval mode"):
        model.train()
    model.eval()  # switching to eval is always allowed
    assert not model.training and not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    with torch.inference_mode():
        assert torch.equal(model(images), before)
