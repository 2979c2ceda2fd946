"""Training augmentation: the seed notebook's albumentations pipeline (ported to 2.x) and plate-specific extras.

Pipelines are saved as albumentations JSON (``A.to_dict``); ``BottomEdgeOcclusion`` round-trips through
that format once this module has been imported, because albumentations registers every transform class
under ``module.ClassName`` when the class is defined.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
from albumentations.core.serialization import SERIALIZABLE_REGISTRY
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import Field, ValidationError

from ocr_core.atomic import write_text_atomic
from ocr_core.errors import InputError

ColorMode = Literal["snow", "dirt", "random"]

# Old albumentations GaussNoise(var_limit=(50, 150)) drew a variance in uint8 units; 2.x draws a
# standard deviation as a fraction of 255, so the equivalent range is sqrt(50)/255 .. sqrt(150)/255.
SEED_NOISE_STD_RANGE: tuple[float, float] = (math.sqrt(50.0) / 255.0, math.sqrt(150.0) / 255.0)


class BottomEdgeOcclusion(A.ImageOnlyTransform):
    """Dirt or snow along the bottom edge of a plate: a band whose top edge follows a random sinusoid.

    Args:
        max_height_frac: tallest band as a fraction of the image height (0 to 0.5); each draw uses
            between a quarter of it and all of it.
        color_mode: "snow" (light band), "dirt" (dark band) or "random" (either, 50/50).
        p: probability of applying the transform.

    Targets:
        image, images, volume, volumes

    Image types:
        uint8, float32
    """

    class InitSchema(BaseTransformInitSchema):
        max_height_frac: float = Field(ge=0.0, le=0.5)
        color_mode: ColorMode

    def __init__(self, max_height_frac: float = 0.3, color_mode: ColorMode = "random", p: float = 0.5) -> None:
        super().__init__(p=p)
        self.max_height_frac = max_height_frac
        self.color_mode = color_mode

    def get_params(self) -> dict[str, Any]:
        """Draw the size-independent parameters: mode, colour, opacity and the edge's wave shape."""
        mode = self.color_mode
        if mode == "random":
            mode = "snow" if self.py_random.random() < 0.5 else "dirt"
        if mode == "snow":
            level = self.py_random.uniform(200.0, 255.0)
            tint = (0.0, 0.0, self.py_random.uniform(0.0, 12.0))
        else:
            level = self.py_random.uniform(35.0, 110.0)
            # Road dirt is brownish: more red than blue.
            tint = (self.py_random.uniform(5.0, 25.0), self.py_random.uniform(0.0, 12.0), 0.0)
        color = [min(255.0, level + tint[0]), min(255.0, level + tint[1]), min(255.0, level + tint[2])]
        return {
            "mode": mode,
            "color": [round(c, 1) for c in color],
            "opacity": self.py_random.uniform(0.65, 1.0),
            "height_frac": self.py_random.uniform(0.25, 1.0) * self.max_height_frac,
            "amplitude_frac": self.py_random.uniform(0.1, 0.5),
            "cycles": self.py_random.uniform(0.5, 4.0),
            "phase": self.py_random.uniform(0.0, 2.0 * math.pi),
            "grain_seed": self.py_random.randrange(2**31),
        }

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Turn the fractional band height and wave amplitude into pixels for this image."""
        height = params["shape"][0]
        band = params["height_frac"] * height
        return {"band_px": band, "amplitude_px": band * params["amplitude_frac"]}

    def apply(
        self,
        img: np.ndarray,
        band_px: float = 0.0,
        amplitude_px: float = 0.0,
        cycles: float = 1.0,
        phase: float = 0.0,
        color: list[float] | None = None,
        opacity: float = 1.0,
        grain_seed: int = 0,
        **params: Any,
    ) -> np.ndarray:
        """Paint the band onto img (H x W or H x W x C, uint8 or float32) and return a new array."""
        if band_px <= 0.0:
            return img
        h, w = img.shape[:2]
        xs = np.arange(w, dtype=np.float32)
        top = (h - band_px) + amplitude_px * np.sin(2.0 * np.pi * cycles * xs / max(w, 1) + phase)
        ys = np.arange(h, dtype=np.float32)[:, None]
        # One pixel of ramp keeps the edge anti-aliased instead of a staircase.
        alpha = np.clip(ys - top[None, :] + 0.5, 0.0, 1.0) * opacity
        # Grain comes from a recorded seed so that ReplayCompose reproduces the band exactly.
        grain = np.random.default_rng(grain_seed).normal(1.0, 0.06, size=(h, w)).astype(np.float32)
        rgb = np.asarray(color if color is not None else [255.0, 255.0, 255.0], dtype=np.float32)
        scale = 1.0 if img.dtype == np.uint8 else 1.0 / 255.0
        work = img.astype(np.float32)
        if work.ndim == 2:
            paint = rgb.mean() * scale * grain
            out = work * (1.0 - alpha) + paint * alpha
        else:
            channels = work.shape[2]
            colour = np.resize(rgb, channels) if channels != 3 else rgb
            paint = colour[None, None, :] * scale * grain[:, :, None]
            out = work * (1.0 - alpha[:, :, None]) + paint * alpha[:, :, None]
        if img.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return np.clip(out, 0.0, 1.0).astype(img.dtype)


def default_pipeline(bottom_occlusion_p: float = 0.0) -> A.Compose:
    """Return the seed notebook's training augmentation for 32x128 RGB uint8 plate crops."""
    transforms: list[A.BasicTransform] = [
        A.Emboss(alpha=(0.2, 1.0), strength=(0.2, 0.7), p=0.5),
        A.PixelDropout(dropout_prob=0.1, per_channel=False, drop_value=(200, 200, 200), p=0.3),
        # The seed's CoarseDropout(min/max_holes=2/5, min_height/width=3) kept the old default max of 8 px.
        A.CoarseDropout(
            num_holes_range=(2, 5), hole_height_range=(3, 8), hole_width_range=(3, 8), fill=(200, 200, 200), p=0.2
        ),
        A.GaussNoise(std_range=SEED_NOISE_STD_RANGE, mean_range=(0.0, 0.0), per_channel=True, p=0.5),
        A.ColorJitter(brightness=(0.5, 1.1), contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=(-0.2, 0.2), p=0.7),
    ]
    if bottom_occlusion_p > 0.0:
        transforms.append(BottomEdgeOcclusion(max_height_frac=0.3, color_mode="random", p=bottom_occlusion_p))
    # The seed ran torchvision RandomPerspective(0.2, p=0.5) on the GPU batch: black fill, same size.
    transforms.append(
        A.Perspective(
            scale=(0.05, 0.1),
            keep_size=True,
            fit_output=False,
            interpolation=cv2.INTER_LINEAR,
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            p=0.5,
        )
    )
    return A.Compose(transforms)


def _json_ready(value: Any) -> Any:
    """Convert tuples and numpy values inside a transform dict into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "value") and not isinstance(value, (str, bytes, int, float, bool)):
        # Enums (albumentations uses a few for modes) serialise as their value.
        return _json_ready(value.value)
    return value


def pipeline_to_dict(pipeline: A.BaseCompose) -> dict[str, Any]:
    """Return the albumentations serialisation of pipeline as a JSON-ready dict."""
    return _json_ready(A.to_dict(pipeline))


def save_pipeline(pipeline: A.BaseCompose, path: Path) -> None:
    """Write pipeline to path as albumentations JSON (UTF-8), replacing the file atomically."""
    text = json.dumps(pipeline_to_dict(pipeline), indent=2, ensure_ascii=False)
    write_text_atomic(Path(path), text + "\n")


def _class_names(node: Any) -> list[str]:
    """List every __class_fullname__ in a serialised transform tree."""
    names: list[str] = []
    if isinstance(node, dict):
        name = node.get("__class_fullname__")
        if isinstance(name, str):
            names.append(name)
        for child in node.get("transforms", []) or []:
            names.extend(_class_names(child))
    return names


def _short_error(exc: BaseException) -> str:
    """Condense an exception (pydantic validation errors included) into a short clause."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        parts = [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in cause.errors()]
        return "; ".join(parts)[:200]
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _explain(node: dict[str, Any]) -> str:
    """Name the first transform in a serialised tree that cannot be built, and why."""
    for child in node.get("transforms", []) or []:
        if isinstance(child, dict):
            try:
                A.from_dict({"transform": child})
            except (ValueError, TypeError, KeyError, AttributeError):
                return _explain(child)
    name = str(node.get("__class_fullname__", "?")).rsplit(".", 1)[-1]
    try:
        A.from_dict({"transform": node})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"{name}: {_short_error(exc)}"
    return name


def _build_pipeline(data: Any, source: str, hint: str) -> A.Compose:
    """Deserialise data into a Compose, describing any problem as one InputError sentence about source."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("transform"), dict)
        or not isinstance(data["transform"].get("__class_fullname__"), str)
    ):
        raise InputError(
            f"{source} is not an albumentations pipeline (expected an object with a 'transform' entry naming "
            f"'__class_fullname__'); {hint}."
        )
    unknown = [n for n in _class_names(data["transform"]) if n not in SERIALIZABLE_REGISTRY]
    if unknown:
        raise InputError(
            f"{source} uses transform {unknown[0]!r}, which this albumentations build does not know; "
            f"{hint}, or import the module that defines it first."
        )
    try:
        built = A.from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"{source} has invalid transform settings ({_explain(data['transform'])}); {hint}.") from exc
    if isinstance(built, A.Compose):
        return built
    if isinstance(built, (A.BasicTransform, A.BaseCompose)):
        # A single saved transform (or a OneOf) is still a usable pipeline once wrapped.
        return A.Compose([built])
    raise InputError(f"{source} did not produce an albumentations pipeline; {hint}.")


def pipeline_from_dict(d: dict[str, Any]) -> A.Compose:
    """Rebuild a Compose from an albumentations dict; raises InputError if it is not a pipeline."""
    return _build_pipeline(d, "The pipeline dictionary", "build it with pipeline_to_dict or A.to_dict")


def load_pipeline(path: Path) -> A.Compose:
    """Load an albumentations JSON pipeline from path; raises InputError naming the file on any problem."""
    path = Path(path)
    hint = "re-save it with save_pipeline or A.save(pipeline, path)"
    if not path.exists():
        raise InputError(f"Augmentation pipeline file {path} does not exist; check the path or save a pipeline there.")
    if not path.is_file():
        raise InputError(f"Augmentation pipeline path {path} is not a file; point to a .json pipeline file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Augmentation pipeline file {path} could not be read as UTF-8 text ({exc}); {hint}.") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"Augmentation pipeline file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix the file or {hint}."
        ) from exc
    return _build_pipeline(data, f"Augmentation pipeline file {path}", hint)


def as_replay(pipeline: A.Compose, seed: int | None = None) -> A.ReplayCompose:
    """Wrap copies of pipeline's transforms in a ReplayCompose that records each draw's parameters."""
    # Copies, because ReplayCompose marks its children deterministic, which would break the original.
    transforms = copy.deepcopy(list(pipeline.transforms))
    replay = A.ReplayCompose(transforms, p=pipeline.p)
    if seed is not None:
        replay.set_random_seed(seed)
    return replay


def _compact(value: Any) -> Any:
    """Shrink a parameter value to something small and JSON-able (large arrays become summaries)."""
    if isinstance(value, dict):
        return {str(k): _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 16:
            return _compact(value.tolist())
        arr = value.astype(np.float64)
        return {
            "array_shape": list(value.shape),
            "mean": round(float(arr.mean()), 4),
            "std": round(float(arr.std()), 4),
            "min": round(float(arr.min()), 4),
            "max": round(float(arr.max()), 4),
        }
    if isinstance(value, np.generic):
        return _compact(value.item())
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# Keys albumentations adds to every params dict that describe the input, not the random draw.
_BOILERPLATE_PARAMS = frozenset({"shape"})


def describe_replay(replay: dict[str, Any]) -> list[dict[str, Any]]:
    """Return name and actually-used params for each applied transform in a ReplayCompose record."""
    described: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        children = node.get("transforms")
        if children is not None:
            for child in children:
                walk(child)
            return
        if not node.get("applied"):
            return
        params = node.get("params") or {}
        described.append(
            {
                "name": str(node.get("__class_fullname__", "?")).rsplit(".", 1)[-1],
                "params": {str(k): _compact(v) for k, v in params.items() if k not in _BOILERPLATE_PARAMS},
            }
        )

    walk(replay)
    return described
