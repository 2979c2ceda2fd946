"""Training augmentation: the seed notebook's albumentations pipeline (ported to 2.x) and plate-specific extras.

Pipelines are saved as albumentations JSON (``A.to_dict``); ``BottomEdgeOcclusion`` round-trips through
that format once this module has been imported, because albumentations registers every transform class
under ``module.ClassName`` when the class is defined.

A loaded pipeline is checked before anything uses it (:func:`validate_pipeline`): transforms that need
external data (reference images, templates, metadata) are refused, sizes and kernels must fit a crop,
and the pipeline, every transform forced on, must turn a crop of the model input into a crop of the
same shape, dtype and channels. The lab's Load and ``train --augment`` both go through it.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
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
            except Exception:  # noqa: BLE001 - see _build_pipeline
                return _explain(child)
    name = str(node.get("__class_fullname__", "?")).rsplit(".", 1)[-1]
    try:
        A.from_dict({"transform": node})
    except Exception as exc:  # noqa: BLE001 - see _build_pipeline
        return f"{name}: {_short_error(exc)}"
    return name


def _build_pipeline(data: Any, source: str, hint: str) -> A.Compose:
    """Deserialise data into a Compose, describing any problem as one InputError sentence about source."""
    try:
        return _build_pipeline_unguarded(data, source, hint)
    except RecursionError:
        raise InputError(f"{source} nests transforms too deeply to be a pipeline; {hint}.") from None


def _build_pipeline_unguarded(data: Any, source: str, hint: str) -> A.Compose:
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
    except Exception as exc:  # a pipeline file is untrusted: any constructor failure is bad input
        raise InputError(f"{source} has invalid transform settings ({_explain(data['transform'])}); {hint}.") from exc
    if isinstance(built, A.Compose):
        return built
    if isinstance(built, (A.BasicTransform, A.BaseCompose)):
        # A single saved transform (or a OneOf) is still a usable pipeline once wrapped.
        return A.Compose([built])
    raise InputError(f"{source} did not produce an albumentations pipeline; {hint}.")


# Transforms that read data besides the crop: reference images, templates, other samples, metadata.
EXTERNAL_DATA_TRANSFORMS = frozenset({
    "FDA", "HistogramMatching", "PixelDistributionAdaptation", "TemplateTransform", "Mosaic", "OverlayElements",
    "TextImage", "CopyAndPaste",
})
_EXTERNAL_DATA_ATTRS = ("reference_images", "templates", "metadata_key", "template")
# Parameters whose size is a pixel extent: a kernel or a hole larger than the crop only burns time (a
# MedianBlur kernel of a million pixels runs for minutes), so they must fit the crop.
_PIXEL_PARAM = re.compile(r"(blur|kernel|ksize|sigma|hole|radius|size|limit|height|width)", re.IGNORECASE)
MAX_PARAM_VALUE = 100_000  # any other number above this is no augmentation setting
PROBE_DRAWS = 3  # draws of the forced-on pipeline on the probe crop


def _leaves(transform: Any) -> Iterator[Any]:
    children = getattr(transform, "transforms", None)
    if children is not None and not isinstance(transform, A.BasicTransform):
        for child in children:
            yield from _leaves(child)
    else:
        yield transform


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)


def _forced_on(transform: Any) -> Any:
    """A copy of a transform tree with every probability set to 1, so one draw exercises every transform."""
    forced = copy.deepcopy(transform)
    stack = [forced]
    while stack:
        node = stack.pop()
        if hasattr(node, "p"):
            node.p = 1.0
        children = getattr(node, "transforms", None)
        if children is not None and not isinstance(node, A.BasicTransform):
            stack.extend(children)
    return forced


def _probe_crop(height: int, width: int) -> np.ndarray:
    """A deterministic RGB uint8 crop with structure (gradients and noise), like a plate at the input size."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    base = ((xs * 255 // max(width - 1, 1) + ys * 97 // max(height - 1, 1)) % 256).astype(np.int16)
    crop = np.stack([base, base[::-1, ::-1], (base * 3) % 256], axis=-1) + rng.integers(-20, 21, (height, width, 3))
    return np.clip(crop, 0, 255).astype(np.uint8)


def validate_pipeline(pipeline: A.BaseCompose, input_size: tuple[int, int] = (32, 128), source: str = "The pipeline",
                      hint: str = "remove or change that transform") -> A.BaseCompose:
    """Check that a pipeline can augment crops of ``input_size`` (height, width); return it unchanged.

    Refused: transforms needing external data (:data:`EXTERNAL_DATA_TRANSFORMS`), kernel or hole sizes
    larger than the crop, numbers above :data:`MAX_PARAM_VALUE`, and a pipeline that, with every
    transform forced on, fails on a probe crop or changes its shape, dtype or channels (``Resize``,
    ``ToGray`` to one channel, ``ToFloat`` ...).

    Raises:
        InputError: one sentence naming ``source`` and the transform.
    """
    height, width = int(input_size[0]), int(input_size[1])
    largest = 2 * max(height, width) + 1
    for leaf in _leaves(pipeline):
        name = type(leaf).__name__
        if name in EXTERNAL_DATA_TRANSFORMS or any(getattr(leaf, a, None) is not None for a in _EXTERNAL_DATA_ATTRS):
            raise InputError(f"{source} uses {name}, which needs data besides the crop (reference images, templates "
                             f"or metadata) that training and the lab cannot give it; {hint}.")
        try:
            params = leaf.to_dict_private() if hasattr(leaf, "to_dict_private") else {}
        except Exception:  # noqa: BLE001 - a transform that cannot describe itself is probed below
            params = {}
        for key, value in params.items():
            if key in ("__class_fullname__", "p") or "seed" in key:
                continue
            for number in _numbers(value):
                if not math.isfinite(number) or abs(number) > MAX_PARAM_VALUE:
                    raise InputError(f"{source} has {name} {key}={_short(value)}, which is no augmentation "
                                     f"setting (numbers must be finite and at most {MAX_PARAM_VALUE:,}); {hint}.")
                if _PIXEL_PARAM.search(key) and isinstance(number, int) and number > largest:
                    raise InputError(f"{source} has {name} {key}={_short(value)}, larger than a {height}x{width} "
                                     f"crop allows (at most {largest}); {hint}.")
    crop = _probe_crop(height, width)
    forced = _forced_on(pipeline)
    # The forced-on copy runs step by step, so a failure names its transform; then a copy of the pipeline
    # as it is (the caller's pipeline keeps its own random state).
    for draw, candidate in enumerate([forced] * PROBE_DRAWS + [copy.deepcopy(pipeline)]):
        if hasattr(candidate, "set_random_seed"):
            candidate.set_random_seed(draw)
        image = crop
        steps = candidate.transforms if draw < PROBE_DRAWS else [candidate]
        culprit = ""  # the first step whose output differs from a crop; a later one may restore it
        for step in steps:
            try:
                image = step(image=image)["image"]
            except Exception as exc:  # noqa: BLE001 - albumentations and cv2 fail in many ways on bad settings
                raise InputError(f"{source} fails on a {height}x{width} crop in {type(step).__name__} "
                                 f"({_short_error(exc)}); {hint}.") from None
            if not isinstance(image, np.ndarray):
                raise InputError(f"{source} turns a crop into a {type(image).__name__} in {type(step).__name__}; "
                                 f"{hint}.")
            if (image.shape != crop.shape or image.dtype != crop.dtype) and not culprit:
                culprit = type(step).__name__
        if image.shape != crop.shape or image.dtype != crop.dtype:
            raise InputError(f"{source} turns a {height}x{width}x3 uint8 crop into {image.dtype} {image.shape} "
                             f"(from {culprit or type(candidate).__name__} on); a training pipeline must keep the "
                             f"crop's size, dtype and 3 channels: {hint}.")
    return pipeline


def _short(value: Any) -> str:
    text = json.dumps(_json_ready(value)) if isinstance(value, (list, tuple, int, float)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def pipeline_from_dict(d: dict[str, Any], input_size: tuple[int, int] | None = (32, 128)) -> A.Compose:
    """Rebuild a Compose from an albumentations dict and check it on a crop of ``input_size``.

    ``input_size=None`` skips the crop check (for dicts the lab itself built).

    Raises:
        InputError: it is not a pipeline, or it cannot augment such crops (:func:`validate_pipeline`).
    """
    source, hint = "The pipeline dictionary", "build it with pipeline_to_dict or A.to_dict"
    pipeline = _build_pipeline(d, source, hint)
    if input_size is not None:
        validate_pipeline(pipeline, input_size, source, "remove or change that transform")
    return pipeline


def load_pipeline(path: Path, input_size: tuple[int, int] | None = None) -> A.Compose:
    """Load an albumentations JSON pipeline from path and check it on a crop of ``input_size`` (default
    32x128); raises InputError naming the file on any problem."""
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
    except RecursionError:
        raise InputError(f"Augmentation pipeline file {path} nests too deeply to be a pipeline; {hint}.") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"Augmentation pipeline file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); fix the file or {hint}."
        ) from exc
    source = f"Augmentation pipeline file {path}"
    pipeline = _build_pipeline(data, source, hint)
    return validate_pipeline(pipeline, input_size or (32, 128), source, "remove or change that transform")


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
