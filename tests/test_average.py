"""Checkpoint averaging (``python -m ocr_core average``): the weights are the mean, mismatches are refused."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from ocr_core.checkpoint import (
    average_checkpoints,
    load_model,
    make_checkpoint,
    merge_training_sources,
    read_checkpoint,
    save_checkpoint,
)
from ocr_core.cli import main
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.vocab import Vocab

from conftest import TINY_VOCAB


def _fine_tune(base: dict, seed: int, sources: dict | None = None) -> dict:
    """A stand-in for a fine-tune of ``base``: every float weight moved by seeded noise, one step counted."""
    generator = torch.Generator().manual_seed(seed)
    tuned = copy.deepcopy(base)
    for key, tensor in tuned["state_dict"].items():
        if tensor.is_floating_point():
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.05)
        else:
            tensor.add_(seed)
    tuned["metrics"] = {"val_accuracy": 0.5 + seed / 100}
    tuned["train_state"] = {"epoch": 1}
    tuned["data_fingerprint"] = f"fp{seed}"
    if sources is not None:
        tuned["training_sources"] = sources
    return tuned


def _sources(data: str, extra: list[str] | None = None, val_split: float = 0.1) -> dict:
    return {"data": data, "val_split": val_split, "extra_data": extra or [], "corrections": None, "fingerprint": data}


def test_the_average_is_the_mean_of_the_weights_and_loads(tiny_checkpoint):
    base = read_checkpoint(tiny_checkpoint)
    parts = [_fine_tune(base, seed) for seed in (1, 2, 3)]
    soup = average_checkpoints(parts, ["a.pt", "b.pt", "c.pt"])
    floats = [k for k, t in base["state_dict"].items() if t.is_floating_point()]
    integers = [k for k, t in base["state_dict"].items() if not t.is_floating_point()]
    assert floats and integers  # the small model has batch norms: running stats and a step counter
    for key in floats:
        expected = sum(p["state_dict"][key].double() for p in parts) / 3
        assert torch.allclose(soup["state_dict"][key].double(), expected, atol=1e-6), key
        assert soup["state_dict"][key].dtype == base["state_dict"][key].dtype
        # Not one of the ingredients: the test would pass on "keep the first" otherwise.
        assert not torch.equal(soup["state_dict"][key], parts[0]["state_dict"][key]), key
    for key in integers:
        assert torch.equal(soup["state_dict"][key], parts[0]["state_dict"][key]), key
    assert "train_state" not in soup and soup["metrics"] == {}
    assert [entry["name"] for entry in soup["averaged_from"]] == ["a.pt", "b.pt", "c.pt"]
    assert soup["data_fingerprint"] == ""  # three different training sets
    assert "training_sources" not in soup  # none of the parts recorded any
    # The ingredients are left as they were.
    assert parts[0]["metrics"] and "train_state" in parts[0]


def test_the_average_of_copies_is_the_model_itself(tiny_checkpoint, tmp_path):
    base = read_checkpoint(tiny_checkpoint)
    soup = average_checkpoints([base, copy.deepcopy(base)], ["a.pt", "b.pt"])
    assert soup["data_fingerprint"] == base["data_fingerprint"]
    out = tmp_path / "soup.pt"
    save_checkpoint(soup, out)
    images = torch.rand(2, 3, 32, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(load_model(out).model(images), load_model(tiny_checkpoint).model(images), atol=1e-5)


def _other_model(vocab: str = TINY_VOCAB, arch: str = "small", size: tuple[int, int] = (32, 128)) -> dict:
    torch.manual_seed(0)
    config = arch_config(arch)
    model = build_model(arch, Vocab(vocab).num_classes, config)
    return make_checkpoint(model, arch, config, Vocab(vocab), size)


@pytest.mark.parametrize("other, what", [
    (lambda: _other_model(vocab=TINY_VOCAB + "京"), "head"),
    (lambda: _other_model(size=(24, 96)), "input"),
])
def test_different_models_are_refused_by_name(tiny_checkpoint, other, what):
    base = read_checkpoint(tiny_checkpoint)
    with pytest.raises(InputError, match=rf"b\.pt and a\.pt are not the same model \(their {what}"):
        average_checkpoints([base, other()], ["a.pt", "b.pt"])


def test_weights_of_another_shape_are_refused(tiny_checkpoint):
    base = read_checkpoint(tiny_checkpoint)
    other = copy.deepcopy(base)
    key = next(iter(other["state_dict"]))
    other["state_dict"][key] = torch.zeros(1)
    with pytest.raises(InputError, match="names or shapes"):
        average_checkpoints([base, other], ["a.pt", "b.pt"])


def test_one_checkpoint_is_not_an_average(tiny_checkpoint):
    with pytest.raises(InputError, match="at least two"):
        average_checkpoints([read_checkpoint(tiny_checkpoint)], ["a.pt"])


def test_training_sources_cover_every_part():
    same = _sources("/d/train")
    assert merge_training_sources([same, dict(same)]) == same
    merged = merge_training_sources([_sources("/d/a", ["/d/x"], 0.35), _sources("/d/b", ["/d/x", "/d/y"]),
                                     _sources("/d/a")])
    # The first run keeps its hold-out; the other runs' sources count whole (an upper bound for leakage).
    assert merged == {"data": "/d/a", "val_split": 0.35, "extra_data": ["/d/x", "/d/b", "/d/y"],
                      "corrections": None, "fingerprint": ""}
    assert merge_training_sources([same, None]) is None
    assert merge_training_sources([same, {"data": ""}]) is None


def test_cli_writes_the_average_and_refuses_a_mismatch(tiny_checkpoint, tmp_path, capsys):
    base = read_checkpoint(tiny_checkpoint)
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"ft{seed}.pt"
        save_checkpoint(_fine_tune(base, seed, _sources(f"/d/{seed}")), path)
        paths.append(str(path))
    out = tmp_path / "soup.pt"
    assert main(["average", *paths, "--out", str(out)]) == 0
    assert "the average of 2 checkpoints" in capsys.readouterr().out
    soup = read_checkpoint(out)
    assert soup["training_sources"]["extra_data"] == ["/d/2"]
    assert [e["name"] for e in soup["averaged_from"]] == paths

    other = tmp_path / "other.pt"
    save_checkpoint(_other_model(vocab=TINY_VOCAB + "京"), other)
    refused = tmp_path / "refused.pt"
    assert main(["average", paths[0], str(other), "--out", str(refused)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the same model" in err and "Traceback" not in err
    assert not refused.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ft1.pt", "ft2.pt", "soup.pt", "other.pt",
                                                                 Path(tiny_checkpoint).name])
