"""The augmentation lab's controls as data: one spec per transform, and the spec <-> A.Compose builders.

Like albumentations-demo, the page draws its widgets by walking :data:`SPEC` instead of hand-writing
widget code per transform. Everything here is plain Python (no streamlit), so it is unit-tested directly.

Settings are a plain dict, JSON-able and kept in ``st.session_state``::

    {"transforms": {name: {"enabled": bool, "p": float, "params": {param: value}}},
     "extra": [albumentations dicts of loaded transforms the lab has no controls for]}
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np

from ocr_core.augment import (
    SEED_NOISE_STD_RANGE, BottomEdgeOcclusion, as_replay, pipeline_from_dict, pipeline_to_dict,
)

WIDGET_KINDS = ("float", "int", "float_range", "int_range", "choice", "bool", "gray")
KEY_PREFIX = "aug"


@dataclass(frozen=True)
class Param:
    """One constructor argument and the widget that sets it.

    ``kind`` is ``float``/``int`` (slider), ``float_range``/``int_range`` (two-handle slider), ``choice``
    (selectbox over ``options``), ``bool`` (checkbox) or ``gray`` (a 0-255 slider passed as an RGB triple).
    """

    name: str
    kind: str
    default: Any
    low: float = 0.0
    high: float = 1.0
    step: float | None = None
    options: tuple[Any, ...] = ()
    label: str = ""
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in WIDGET_KINDS:
            raise ValueError(f"unknown widget kind {self.kind!r} for parameter {self.name}")


@dataclass(frozen=True)
class TransformSpec:
    """A transform of the lab: its class, default probability and switch, tunable and fixed arguments."""

    name: str
    cls: type
    params: tuple[Param, ...]
    p: float = 0.5
    enabled: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)
    doc: str = ""

    @property
    def fullname(self) -> str:
        """The ``__class_fullname__`` albumentations writes for this transform."""
        return self.cls.get_class_fullname()


# Order matters (photometric first, geometry last), as in ocr_core.augment.default_pipeline: with the
# defaults below the lab builds exactly the training default.
SPEC: tuple[TransformSpec, ...] = (
    TransformSpec("Emboss", A.Emboss, (
        Param("alpha", "float_range", (0.2, 1.0), 0.0, 1.0, 0.05, help="visibility of the embossed image"),
        Param("strength", "float_range", (0.2, 0.7), 0.0, 2.0, 0.05, help="strength of the relief"),
    ), p=0.5, enabled=True, doc="relief effect that mimics stamped plate characters"),
    TransformSpec("PixelDropout", A.PixelDropout, (
        Param("dropout_prob", "float", 0.1, 0.0, 0.3, 0.01, label="dropout probability"),
        Param("drop_value", "gray", 200, 0, 255, 1, label="dropped pixel value"),
    ), p=0.3, enabled=True, fixed={"per_channel": False},
        doc="random pixels replaced by a constant (dust, snow)"),
    TransformSpec("CoarseDropout", A.CoarseDropout, (
        Param("num_holes_range", "int_range", (2, 5), 1, 12, 1, label="holes"),
        Param("hole_height_range", "int_range", (3, 8), 1, 16, 1, label="hole height (px)"),
        Param("hole_width_range", "int_range", (3, 8), 1, 32, 1, label="hole width (px)"),
        Param("fill", "gray", 200, 0, 255, 1, label="fill value"),
    ), p=0.2, enabled=True, doc="rectangles cut out of the plate (stickers, mud spots)"),
    TransformSpec("GaussNoise", A.GaussNoise, (
        Param("std_range", "float_range", SEED_NOISE_STD_RANGE, 0.0, 0.5, 0.005,
              label="noise std (fraction of 255)"),
        Param("per_channel", "bool", True, label="independent noise per channel"),
    ), p=0.5, enabled=True, fixed={"mean_range": (0.0, 0.0)}, doc="sensor noise"),
    TransformSpec("ColorJitter", A.ColorJitter, (
        Param("brightness", "float_range", (0.5, 1.1), 0.0, 2.0, 0.05),
        Param("contrast", "float_range", (0.8, 1.2), 0.0, 2.0, 0.05),
        Param("saturation", "float_range", (0.8, 1.2), 0.0, 2.0, 0.05),
        Param("hue", "float_range", (-0.2, 0.2), -0.5, 0.5, 0.01),
    ), p=0.7, enabled=True, doc="dark photos and colour casts"),
    TransformSpec("RGBShift", A.RGBShift, (
        Param("r_shift_limit", "int_range", (-20, 20), -80, 80, 1, label="red shift"),
        Param("g_shift_limit", "int_range", (-20, 20), -80, 80, 1, label="green shift"),
        Param("b_shift_limit", "int_range", (-20, 20), -80, 80, 1, label="blue shift"),
    ), p=0.3, doc="per-channel colour shift"),
    TransformSpec("RandomBrightnessContrast", A.RandomBrightnessContrast, (
        Param("brightness_limit", "float_range", (-0.2, 0.2), -0.8, 0.8, 0.05, label="brightness"),
        Param("contrast_limit", "float_range", (-0.2, 0.2), -0.8, 0.8, 0.05, label="contrast"),
    ), p=0.5, doc="exposure and contrast changes"),
    TransformSpec("Blur", A.Blur, (
        Param("blur_limit", "int_range", (3, 5), 3, 15, 2, label="kernel size (odd)"),
    ), p=0.2, doc="box blur (out of focus)"),
    TransformSpec("MotionBlur", A.MotionBlur, (
        Param("blur_limit", "int_range", (3, 7), 3, 21, 2, label="kernel size (odd)"),
        Param("angle_range", "float_range", (0.0, 360.0), 0.0, 360.0, 5.0, label="angle (degrees)"),
    ), p=0.2, doc="a moving car or camera"),
    TransformSpec("Downscale", A.Downscale, (
        Param("scale_range", "float_range", (0.4, 0.8), 0.1, 0.99, 0.01, label="scale"),
    ), p=0.2, doc="low-resolution capture, upscaled again"),
    TransformSpec("ImageCompression", A.ImageCompression, (
        Param("quality_range", "int_range", (30, 90), 1, 100, 1, label="quality"),
        Param("compression_type", "choice", "jpeg", options=("jpeg", "webp"), label="codec"),
    ), p=0.3, doc="compression artefacts"),
    TransformSpec("BottomEdgeOcclusion", BottomEdgeOcclusion, (
        Param("max_height_frac", "float", 0.3, 0.0, 0.5, 0.01, label="max band height (fraction)"),
        Param("color_mode", "choice", "random", options=("random", "snow", "dirt"), label="band"),
    ), p=0.3, doc="dirt or snow along the bottom edge of the plate"),
    TransformSpec("Affine", A.Affine, (
        Param("rotate", "float_range", (-5.0, 5.0), -30.0, 30.0, 0.5, label="rotation (degrees)"),
        Param("shear", "float_range", (-5.0, 5.0), -30.0, 30.0, 0.5, label="shear (degrees)"),
        Param("scale", "float_range", (0.9, 1.1), 0.5, 1.5, 0.01),
        Param("translate_percent", "float_range", (-0.05, 0.05), -0.3, 0.3, 0.01,
              label="translate (fraction)"),
    ), p=0.3, fixed={"border_mode": cv2.BORDER_CONSTANT, "fill": 0}, doc="rotation, shear, zoom and shift"),
    TransformSpec("Perspective", A.Perspective, (
        Param("scale", "float_range", (0.05, 0.1), 0.0, 0.3, 0.01, label="distortion scale"),
    ), p=0.5, enabled=True, fixed={
        "keep_size": True, "fit_output": False, "interpolation": cv2.INTER_LINEAR,
        "border_mode": cv2.BORDER_CONSTANT, "fill": 0,
    }, doc="camera angle; black fill, same size"),
)
SPEC_BY_NAME: dict[str, TransformSpec] = {t.name: t for t in SPEC}


# ---- values: widget <-> constructor argument ---------------------------------------------------------

def to_argument(param: Param, value: Any) -> Any:
    """The constructor argument for a widget value."""
    if param.kind == "float":
        return float(value)
    if param.kind == "int":
        return int(value)
    if param.kind == "float_range":
        return (float(value[0]), float(value[1]))
    if param.kind == "int_range":
        return (int(value[0]), int(value[1]))
    if param.kind == "bool":
        return bool(value)
    if param.kind == "gray":
        return (float(value),) * 3
    return value


def _clamp(param: Param, value: float) -> float:
    return min(max(value, param.low), param.high)


def to_widget_value(param: Param, value: Any) -> Any:
    """The widget value for a constructor argument read from a saved pipeline, clamped to the widget range."""
    if isinstance(value, dict):  # Affine stores per-axis ranges as {"x": ..., "y": ...}
        value = value.get("x")
    if value is None:
        return param.default
    if param.kind in ("float_range", "int_range"):
        pair = list(value) if isinstance(value, (list, tuple)) else [-abs(value), abs(value)]
        cast = float if param.kind == "float_range" else int
        low, high = sorted(cast(_clamp(param, float(v))) for v in pair[:2])
        return (low, high)
    if param.kind == "float":
        return float(_clamp(param, float(value)))
    if param.kind == "int":
        return int(_clamp(param, float(value)))
    if param.kind == "gray":
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        return int(round(_clamp(param, sum(float(v) for v in values) / len(values))))
    if param.kind == "bool":
        return bool(value)
    return value if value in param.options else param.default


# ---- settings -----------------------------------------------------------------------------------------

def default_settings() -> dict[str, Any]:
    """The lab's starting settings: the training default pipeline, the other transforms switched off."""
    return {
        "transforms": {
            t.name: {"enabled": t.enabled, "p": t.p, "params": {p.name: p.default for p in t.params}}
            for t in SPEC
        },
        "extra": [],
    }


def build_transform(spec: TransformSpec, probability: float, params: Mapping[str, Any]) -> A.BasicTransform:
    """One transform of the spec with the given probability and widget values."""
    arguments = dict(spec.fixed)
    for param in spec.params:
        arguments[param.name] = to_argument(param, params.get(param.name, param.default))
    return spec.cls(**arguments, p=float(probability))


def build_pipeline(settings: Mapping[str, Any]) -> A.Compose:
    """The A.Compose of the enabled transforms, in spec order, then any extra (loaded) transforms."""
    transforms: list[Any] = []
    configured = settings.get("transforms", {})
    for spec in SPEC:
        entry = configured.get(spec.name)
        if entry and entry.get("enabled"):
            transforms.append(build_transform(spec, entry.get("p", spec.p), entry.get("params", {})))
    for extra in settings.get("extra", []):
        transforms.extend(pipeline_from_dict({"transform": copy.deepcopy(extra)}).transforms)
    return A.Compose(transforms)


def settings_from_pipeline(pipeline: A.Compose) -> tuple[dict[str, Any], list[str]]:
    """Lab settings for a pipeline (e.g. loaded from JSON) and the names of the transforms kept as extras.

    A transform that the lab's widgets reproduce exactly (same class, fixed arguments and values in the
    widget ranges) sets that entry's switch, probability and widgets; anything else (an unknown class, a
    second copy, other fixed arguments, a nested OneOf) is kept verbatim and appended after the lab's
    transforms, so loading never changes what a saved pipeline does.
    """
    settings = default_settings()
    for entry in settings["transforms"].values():
        entry["enabled"] = False
    by_fullname = {t.fullname: t for t in SPEC}
    taken: set[str] = set()
    extras: list[str] = []
    for node in pipeline_to_dict(pipeline)["transform"].get("transforms", []):
        spec = by_fullname.get(node.get("__class_fullname__", ""))
        entry = None
        if spec is not None and spec.name not in taken:
            params = {p.name: to_widget_value(p, node.get(p.name)) for p in spec.params}
            entry = {"enabled": True, "p": float(node.get("p", spec.p)), "params": params}
            rebuilt = pipeline_to_dict(A.Compose([build_transform(spec, entry["p"], params)]))
            if rebuilt["transform"]["transforms"][0] != node:
                entry = None
        if entry is None:
            settings["extra"].append(node)
            extras.append(str(node.get("__class_fullname__", "?")).rsplit(".", 1)[-1])
            continue
        taken.add(spec.name)
        settings["transforms"][spec.name] = entry
    return settings, extras


# ---- settings <-> widget keys ------------------------------------------------------------------------

def widget_key(transform: str, what: str) -> str:
    """The session-state key of one widget: ``what`` is ``enabled``, ``p`` or a parameter name."""
    return f"{KEY_PREFIX}:{transform}:{what}"


def settings_to_widget_state(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values (by key) that show ``settings``."""
    state: dict[str, Any] = {}
    configured = settings.get("transforms", {})
    for spec in SPEC:
        entry = configured.get(spec.name) or {}
        state[widget_key(spec.name, "enabled")] = bool(entry.get("enabled", spec.enabled))
        state[widget_key(spec.name, "p")] = float(entry.get("p", spec.p))
        params = entry.get("params", {})
        for param in spec.params:
            value = params.get(param.name, param.default)
            state[widget_key(spec.name, param.name)] = tuple(value) if isinstance(value, list) else value
    return state


def settings_from_widget_state(
    state: Mapping[str, Any], extra: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Settings from widget values (missing keys fall back to the spec defaults)."""
    defaults = settings_to_widget_state(default_settings())
    transforms = {}
    for spec in SPEC:
        def value(what: str, _spec: TransformSpec = spec) -> Any:
            key = widget_key(_spec.name, what)
            return state[key] if key in state else defaults[key]

        transforms[spec.name] = {
            "enabled": bool(value("enabled")),
            "p": float(value("p")),
            "params": {p.name: value(p.name) for p in spec.params},
        }
    return {"transforms": transforms, "extra": list(extra or [])}


# Drawn values that say nothing useful to a person looking at one draw (constants, matrices, seeds).
_HIDDEN_DRAW_PARAMS = frozenset({
    "matrix", "bbox_matrix", "matrix_bbox", "emboss_matrix", "drop_mask", "drop_values", "mask_drop_mask",
    "mask_drop_values", "fill", "fill_mask", "interpolation", "seed", "grain_seed", "order", "output_shape",
    "max_height", "max_width", "image_type", "phase", "cycles", "amplitude_frac", "amplitude_px", "color",
    "height_frac",
})


def _format_value(key: str, value: Any) -> str | None:
    if value is None or key in _HIDDEN_DRAW_PARAMS:
        return None
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        if "array_shape" in value:  # a summarised array (noise maps, masks)
            return None
        parts = [f"{k}: {text}" for k, v in value.items() if (text := _format_value(str(k), v)) is not None]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            # Nested lists are kernels and boxes: only a count of boxes (CoarseDropout's holes) reads well.
            return str(len(value)) if key == "holes" else None
        return "(" + ", ".join(str(_format_value(key, v)) for v in value) + ")"
    return str(value)


def format_draw(described: list[dict[str, Any]]) -> list[str]:
    """One short line per applied transform of a draw (``describe_replay`` output): ``Blur: kernel=5``."""
    lines = []
    for item in described:
        shown = [f"{k}={text}" for k, v in item["params"].items()
                 if (text := _format_value(k, v)) is not None]
        lines.append(item["name"] + (": " + ", ".join(shown) if shown else ""))
    return lines


def distinct_draws(pipeline: A.Compose, image: np.ndarray, n: int, seed: int, tries: int = 12) -> list[dict[str, Any]]:
    """``n`` replayed draws of ``pipeline`` on ``image`` (ReplayCompose results), reproducible for a seed.

    A draw that equals the image or an earlier draw (a pipeline whose transforms all missed their
    probability) is drawn again, up to ``tries`` times, so a row of previews shows ``n`` different
    outcomes wherever the pipeline can give them.
    """
    replay = as_replay(pipeline, seed=seed)
    seen = {hashlib.sha1(image.tobytes()).digest()}
    results: list[dict[str, Any]] = []
    for _ in range(n):
        for _ in range(tries):
            result = replay(image=image)
            digest = hashlib.sha1(result["image"].tobytes()).digest()
            if digest not in seen:
                break
        seen.add(digest)
        results.append(result)
    return results
