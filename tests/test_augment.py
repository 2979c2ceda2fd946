"""Tests for the albumentations training pipeline, BottomEdgeOcclusion and pipeline (de)serialisation."""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from ocr_core import augment
from ocr_core.augment import BottomEdgeOcclusion
from ocr_core.errors import InputError


def _plate_like(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((32, 128, 3), np.uint8)
    image[...] = (30, 70, 200)
    image[8:24, 10:118] = rng.integers(150, 255, size=(16, 108, 3), dtype=np.uint8)
    return image


def test_default_pipeline_keeps_shape_and_dtype() -> None:
    pipeline = augment.default_pipeline()
    pipeline.set_random_seed(0)
    image = _plate_like()
    changed = 0
    for _ in range(40):
        out = pipeline(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8
        changed += int(not np.array_equal(out, image))
    assert changed > 30


def test_default_pipeline_ports_the_seed_settings() -> None:
    transforms = augment.default_pipeline().transforms
    names = [type(t).__name__ for t in transforms]
    assert names == ["Emboss", "PixelDropout", "CoarseDropout", "GaussNoise", "ColorJitter", "Perspective"]
    noise = transforms[3]
    assert noise.std_range == pytest.approx((50**0.5 / 255, 150**0.5 / 255))
    jitter = transforms[4]
    assert tuple(jitter.brightness) == pytest.approx((0.5, 1.1)) and tuple(jitter.hue) == pytest.approx((-0.2, 0.2))
    perspective = transforms[5]
    assert perspective.keep_size and not perspective.fit_output
    assert [t.p for t in transforms] == pytest.approx([0.5, 0.3, 0.2, 0.5, 0.7, 0.5])
    with_occlusion = augment.default_pipeline(bottom_occlusion_p=0.4).transforms
    assert any(isinstance(t, BottomEdgeOcclusion) and t.p == 0.4 for t in with_occlusion)


def test_bottom_edge_occlusion_paints_only_the_bottom() -> None:
    black = np.zeros((32, 128, 3), np.uint8)
    snow = BottomEdgeOcclusion(max_height_frac=0.4, color_mode="snow", p=1.0)
    snow.set_random_seed(1)
    out = snow(image=black)["image"]
    assert out.shape == black.shape and out.dtype == np.uint8
    assert out[-1].mean() > 120
    assert not out[:10].any()

    white = np.full((32, 128, 3), 255, np.uint8)
    dirt = BottomEdgeOcclusion(max_height_frac=0.4, color_mode="dirt", p=1.0)
    dirt.set_random_seed(1)
    out = dirt(image=white)["image"]
    assert out[-1].mean() < 160
    assert (out[:10] == 255).all()


def test_bottom_edge_occlusion_random_mode_draws_both_colours() -> None:
    transform = BottomEdgeOcclusion(max_height_frac=0.3, color_mode="random", p=1.0)
    transform.set_random_seed(2)
    modes = {transform.get_params()["mode"] for _ in range(40)}
    assert modes == {"snow", "dirt"}


def test_bottom_edge_occlusion_zero_height_is_identity_and_grayscale_works() -> None:
    image = _plate_like()
    assert np.array_equal(BottomEdgeOcclusion(max_height_frac=0.0, p=1.0)(image=image)["image"], image)
    gray = image[..., 0].copy()
    out = BottomEdgeOcclusion(max_height_frac=0.5, color_mode="snow", p=1.0)(image=gray)["image"]
    assert out.shape == gray.shape and out.dtype == np.uint8


@pytest.mark.parametrize("kwargs", [{"max_height_frac": 0.9}, {"max_height_frac": -0.1}, {"color_mode": "mud"}])
def test_bottom_edge_occlusion_validates_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BottomEdgeOcclusion(**kwargs)  # type: ignore[arg-type]


def test_to_dict_from_dict_round_trip_includes_custom_transform() -> None:
    pipeline = augment.default_pipeline(bottom_occlusion_p=0.25)
    data = augment.pipeline_to_dict(pipeline)
    json.dumps(data)
    entry = data["transform"]["transforms"][-2]
    assert entry["__class_fullname__"] == "ocr_core.augment.BottomEdgeOcclusion"
    assert entry["max_height_frac"] == 0.3 and entry["color_mode"] == "random" and entry["p"] == 0.25

    rebuilt = A.from_dict(A.to_dict(pipeline))
    assert isinstance(rebuilt.transforms[-2], BottomEdgeOcclusion)
    again = augment.pipeline_from_dict(data)
    assert isinstance(again, A.Compose)
    assert augment.pipeline_to_dict(again) == data


def test_save_and_load_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "管道 pipeline.json"
    pipeline = A.Compose([BottomEdgeOcclusion(max_height_frac=0.2, color_mode="snow", p=0.7), A.Emboss(p=0.1)])
    augment.save_pipeline(pipeline, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    loaded = augment.load_pipeline(path)
    assert isinstance(loaded.transforms[0], BottomEdgeOcclusion)
    assert loaded.transforms[0].max_height_frac == 0.2 and loaded.transforms[0].color_mode == "snow"
    assert augment.pipeline_to_dict(loaded) == json.loads(path.read_text(encoding="utf-8"))


def test_load_pipeline_wraps_a_single_transform(tmp_path: Path) -> None:
    path = tmp_path / "single.json"
    A.save(A.Emboss(p=0.2), str(path))
    loaded = augment.load_pipeline(path)
    assert isinstance(loaded, A.Compose) and isinstance(loaded.transforms[0], A.Emboss)


def _assert_one_sentence_naming(exc: InputError, name: str) -> None:
    message = str(exc)
    assert name in message
    assert "\n" not in message and message.endswith(".")


def test_load_pipeline_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(InputError) as info:
        augment.load_pipeline(path)
    _assert_one_sentence_naming(info.value, "nope.json")
    assert "does not exist" in str(info.value)


def test_load_pipeline_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"transform": {', encoding="utf-8")
    with pytest.raises(InputError) as info:
        augment.load_pipeline(path)
    _assert_one_sentence_naming(info.value, "broken.json")
    assert "not valid JSON" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"foo": 1},
        [1, 2, 3],
        {"transform": {"p": 1.0}},
        {"transform": {"__class_fullname__": "NoSuchTransform", "p": 1.0}},
        {"transform": {"__class_fullname__": "Emboss", "p": 1.0, "alpha": "very"}},
    ],
)
def test_load_pipeline_not_a_pipeline(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(InputError) as info:
        augment.load_pipeline(path)
    _assert_one_sentence_naming(info.value, "other.json")


def test_pipeline_from_dict_rejects_non_pipelines() -> None:
    with pytest.raises(InputError):
        augment.pipeline_from_dict({"hello": "world"})
    with pytest.raises(InputError):
        augment.pipeline_from_dict({"transform": {"__class_fullname__": "ocr_core.augment.Missing", "p": 1}})


def test_replay_records_actual_params_and_reproduces_them() -> None:
    pipeline = A.Compose(
        [
            A.ColorJitter(brightness=(0.5, 1.1), hue=0.2, p=1.0),
            BottomEdgeOcclusion(max_height_frac=0.4, color_mode="random", p=1.0),
            A.GaussNoise(std_range=(0.03, 0.05), p=1.0),
            A.Emboss(p=0.0),
        ]
    )
    replay = augment.as_replay(pipeline, seed=7)
    assert isinstance(replay, A.ReplayCompose)
    image = _plate_like()
    result = replay(image=image)
    described = augment.describe_replay(result["replay"])
    json.dumps(described)
    assert [d["name"] for d in described] == ["ColorJitter", "BottomEdgeOcclusion", "GaussNoise"]
    occlusion = described[1]["params"]
    assert occlusion["mode"] in {"snow", "dirt"}
    assert 0 < occlusion["band_px"] <= 0.4 * 32
    assert 0.5 <= described[0]["params"]["brightness"] <= 1.1
    assert "shape" not in described[0]["params"]
    assert described[2]["params"]["noise_map"]["array_shape"] == [32, 128, 3]

    replayed = A.ReplayCompose.replay(result["replay"], image=image)
    assert np.array_equal(replayed["image"], result["image"])
    # The original pipeline must still work: as_replay copies the transforms it marks deterministic.
    assert pipeline(image=image)["image"].shape == image.shape


def test_as_replay_seed_makes_draws_repeatable() -> None:
    image = _plate_like()
    first = augment.as_replay(augment.default_pipeline(), seed=3)(image=image)
    second = augment.as_replay(augment.default_pipeline(), seed=3)(image=image)
    assert np.array_equal(first["image"], second["image"])
    assert augment.describe_replay(first["replay"]) == augment.describe_replay(second["replay"])
