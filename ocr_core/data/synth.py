"""Synthetic licence-plate crops: Chinese blue (CCPD), Chinese green new-energy and Russian plates.

Glyphs come from the bundled Noto Sans CJK SC subset (drawn with PIL, because OpenCV cannot draw CJK),
condensed into the plate's character slots (glyph masks come from a 160 px rendering, area-downsampled).
The plate is composed at 64-140 px tall (at least 2.6x the output height, chosen per output size so the
float work stays small) and then degraded the way real 94x24 CCPD/LPRNet crops are: perspective and
loose/tight crop boxes with some car body around the plate, colour casts, low contrast, uneven light,
blur, sharpening halos, noise and JPEG. Each glyph is followed through those degradations, and a draw
that cuts a glyph off or washes it out is redrawn, so every crop still shows its label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr_core.atomic import atomic_path
from ocr_core.data import captcha

PROVINCES: str = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
PLATE_LETTERS: str = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PLATE_DIGITS: str = "0123456789"
PLATE_ALNUM: str = PLATE_LETTERS + PLATE_DIGITS
RU_LETTERS: str = "ABEKMHOPCTYX"
RU_ALPHABET = "0123456789ABEKMHOPCTYX"
STYLES: tuple[str, ...] = ("ccpd", "ccpd-green", "ru")
# Text-line styles that are not plates (ocr_core.data.captcha); ALL_STYLES is what synth accepts.
CAPTCHA_STYLES: tuple[str, ...] = ("captcha",)
ALL_STYLES: tuple[str, ...] = STYLES + CAPTCHA_STYLES
PROVINCE_SKEWS: tuple[str, ...] = ("uniform", "ccpd")

FONT_PATH: Path = Path(__file__).parent.parent / "assets" / "fonts" / "NotoSansCJKsc-Bold-plates.otf"

# Relative frequency of each style when several are requested (ccpd 80% / green 20% when both).
_STYLE_WEIGHTS: dict[str, float] = {"ccpd": 4.0, "ccpd-green": 1.0, "ru": 4.0, "captcha": 4.0}
# Real plates use more digits than letters in the serial (about 2:1 in CCPD).
_DIGIT_SHARE = 0.62
# Plates are composed at one of these heights (>= 1.3x the 2x working height), then degraded.
_COMPOSE_HEIGHTS: tuple[int, ...] = (64, 96, 140)
_BASE_OUT_W, _BASE_OUT_H = 94, 24
_GLYPH_FONT_SIZE = 160
# Share of Chinese plates whose letters and digits use condensed Noto instead of the drawn plate font;
# a second typeface keeps a model from overfitting one glyph design.
_NOTO_SHARE = 0.3


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"Unknown plate style {style!r}; choose one of {', '.join(STYLES)}.")


def style_charset(style: str) -> str:
    """Return every character the style can emit, in a fixed order (a vocabulary preset)."""
    if style == "captcha":
        return captcha.CAPTCHA_ALPHABET
    _check_style(style)
    if style == "ru":
        return RU_ALPHABET
    return PROVINCES + PLATE_LETTERS + PLATE_DIGITS


def province_weights(skew: str = "uniform") -> np.ndarray:
    """Return sampling probabilities over PROVINCES: "uniform", or "ccpd" (about 92% 皖, rest spread)."""
    n = len(PROVINCES)
    if skew == "uniform":
        return np.full(n, 1.0 / n)
    if skew == "ccpd":
        # Beyond 皖, CCPD's next provinces are its neighbours; a mild decay keeps every province present.
        rest = 1.0 / np.arange(1, n) ** 0.5
        weights = np.concatenate([[0.0], 0.08 * rest / rest.sum()])
        weights[0] = 0.92
        return weights
    raise ValueError(f"Unknown province skew {skew!r}; choose one of {', '.join(PROVINCE_SKEWS)}.")


def _serial_char(rng: np.random.Generator) -> str:
    if rng.random() < _DIGIT_SHARE:
        return PLATE_DIGITS[int(rng.integers(len(PLATE_DIGITS)))]
    return PLATE_LETTERS[int(rng.integers(len(PLATE_LETTERS)))]


def random_label(style: str, rng: np.random.Generator, provinces: np.ndarray | None = None) -> str:
    """Draw a plausible plate label for the style; provinces optionally weights the first CJK glyph."""
    _check_style(style)
    if style == "ru":
        letters = [RU_LETTERS[int(i)] for i in rng.integers(len(RU_LETTERS), size=3)]
        digits = "".join(str(int(d)) for d in rng.integers(10, size=3))
        if digits == "000":
            digits = "001"
        if rng.random() < 0.6:
            region = f"{int(rng.integers(1, 100)):02d}"
        else:
            # Three-digit regions in use start with 1, 2 or 7 (e.g. 116, 250, 777).
            region = f"{int(rng.choice([1, 2, 7]))}{int(rng.integers(0, 100)):02d}"
        return letters[0] + digits + letters[1] + letters[2] + region
    weights = province_weights("uniform") if provinces is None else np.asarray(provinces, dtype=np.float64)
    if weights.shape != (len(PROVINCES),):
        raise ValueError(f"provinces must have {len(PROVINCES)} weights, got shape {weights.shape}.")
    province = PROVINCES[int(rng.choice(len(PROVINCES), p=weights / weights.sum()))]
    city = PLATE_LETTERS[int(rng.integers(len(PLATE_LETTERS)))]
    if style == "ccpd":
        return province + city + "".join(_serial_char(rng) for _ in range(5))
    # New-energy small cars: D (electric) or F (hybrid), one letter/digit, then four digits.
    energy = "DF"[int(rng.integers(2))]
    tail = "".join(str(int(d)) for d in rng.integers(10, size=4))
    return province + city + energy + _serial_char(rng) + tail


# ----------------------------------------------------------------------------------------------
# Glyphs


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        raise FileNotFoundError(
            f"{FONT_PATH} is missing; rebuild it with python -m ocr_core.assets.make_font_subset."
        )
    return ImageFont.truetype(str(FONT_PATH), size=_GLYPH_FONT_SIZE)


@lru_cache(maxsize=256)
def _glyph_ink(char: str) -> np.ndarray:
    """Return the glyph's ink rendered at the reference size, cropped to its bounding box."""
    return font_ink(_font(), char)


def font_ink(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray:
    """Return char's ink drawn in font (read-only uint8), cropped to its bounding box."""
    left, top, right, bottom = font.getbbox(char)
    pad = 4
    image = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(image).text((pad - left, pad - top), char, fill=255, font=font)
    ink = np.asarray(image)
    ys, xs = np.nonzero(ink > 16)
    if ys.size == 0:
        raise ValueError(f"{font.getname()[0]} has no visible glyph for {char!r}.")
    cropped = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()
    cropped.flags.writeable = False
    return cropped


# Stroke-weight variants, as erosion kernels (width, height) applied at _GLYPH_REF_H px glyph height.
# Noto Sans CJK Bold condensed into a plate slot has horizontal bars of ~0.17 and stems of ~0.125 of the
# glyph height; the GA 36 plate font strokes are ~0.11 (10 mm of 90 mm), so "plate" thins the bars most.
_GLYPH_REF_H = 160
_LATIN_WEIGHT_KERNELS: tuple[tuple[int, int] | None, ...] = (None, (3, 9), (5, 11))
_CJK_WEIGHT_KERNELS: tuple[tuple[int, int] | None, ...] = (None, (1, 3), (3, 5))
GLYPH_WEIGHTS: tuple[str, ...] = ("bold", "plate", "light")
# Stroke widths (mm on the 45x90 mm glyph box) of the drawn plate font for each weight.
_STROKE_MM: tuple[float, ...] = (11.5, 10.0, 8.5)
# Latin/digit glyph sources: the drawn GA 36-style plate font, or condensed Noto Sans CJK Bold.
GLYPH_FONTS: tuple[str, ...] = ("plate", "noto")

# A GA 36-style plate font as stroke centre-lines on the 45x90 mm glyph box (y down, 10 mm strokes).
# Noto's Latin has elliptical bowls and thick/thin contrast; real plates have uniform strokes and
# straight-sided "stadium" bowls, and a model trained on Noto alone confuses M/H, G/6, 3/S and 1/T on them.
_L, _R, _T, _B, _CX, _CY, _RR = 5.0, 40.0, 5.0, 85.0, 22.5, 45.0, 17.5
_Polyline = tuple[tuple[float, float], ...]
_Ellipse = tuple[float, float, float, float, float, float]
_Stroke = tuple[str, "_Polyline | _Ellipse"]


def _pl(*points: tuple[float, float]) -> _Stroke:
    return ("line", points)


def _el(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> _Stroke:
    # cv2.ellipse angles: degrees clockwise from +x in image coordinates (y down).
    return ("arc", (cx, cy, rx, ry, start, end))


def _stadium_sides() -> tuple[_Stroke, ...]:
    return (
        _pl((_L, _T + _RR), (_L, _B - _RR)),
        _pl((_R, _T + _RR), (_R, _B - _RR)),
        _el(_CX, _T + _RR, _RR, _RR, 180, 360),
        _el(_CX, _B - _RR, _RR, _RR, 0, 180),
    )


_PLATE_STROKES: dict[str, tuple[_Stroke, ...]] = {
    "0": _stadium_sides(),
    "1": (_pl((_CX + 1, _T), (_CX + 1, _B)),),
    "2": (_el(_CX, _T + _RR, _RR, _RR, 180, 375), _pl((_R - 0.6, _T + _RR + 4.5), (_L, _B), (_R, _B))),
    # GA 36 threes are flat-topped: a bar, a diagonal into the middle, then the lower bowl.
    "3": (_pl((_L + 1, _T), (_R, _T), (16.5, 42.3)), _el(_CX, 63, _RR, 22, 250, 520)),
    "4": (_pl((_R - 7, _B), (_R - 7, _T), (_L, 62), (_R + 1, 62)),),
    "5": (_pl((_R, _T), (_L + 1, _T), (_L + 1.6, 52.7)), _el(_CX, 62, _RR, 22, 205, 520)),
    "6": (_el(_CX, 61.5, _RR, 23.5, 0, 360), _pl((_L, 61.5), (_L, _T + _RR)), _el(_CX, _T + _RR, _RR, _RR, 180, 320)),
    "7": (_pl((_L, _T), (_R, _T), (_CX - 3, _B)),),
    "8": (_el(_CX, 24.5, 15.5, 19.5, 0, 360), _el(_CX, 64.5, _RR, 20.5, 0, 360)),
    "9": (_el(_CX, 28.5, _RR, 23.5, 0, 360), _pl((_R, 28.5), (_R, _B - _RR)), _el(_CX, _B - _RR, _RR, _RR, 0, 140)),
    "A": (_pl((_L, _B), (_CX - 2, _T), (_CX + 2, _T), (_R, _B)), _pl((10.8, 62), (34.2, 62))),
    "B": (
        _pl((_R - 13, _T), (_L, _T), (_L, _B), (_R - 11, _B)),
        _el(_R - 13, 24.5, 13, 19.5, 270, 450),
        _pl((_L, 44), (_R - 13, 44)),
        _el(_R - 11, 64.5, 11, 20.5, 270, 450),
    ),
    # C and G are stadiums whose right side stays mostly closed (the opening is only the middle third).
    "C": (
        _pl((_R, 27), (_R, _T + _RR)),
        _el(_CX, _T + _RR, _RR, _RR, 180, 360),
        _pl((_L, _T + _RR), (_L, _B - _RR)),
        _el(_CX, _B - _RR, _RR, _RR, 0, 180),
        _pl((_R, _B - _RR), (_R, 63)),
    ),
    "D": (
        _pl((_R - 15, _T), (_L, _T), (_L, _B), (_R - 15, _B)),
        _el(_R - 15, _T + 15, 15, 15, 270, 360),
        _pl((_R, _T + 15), (_R, _B - 15)),
        _el(_R - 15, _B - 15, 15, 15, 0, 90),
    ),
    "E": (_pl((_R, _T), (_L, _T), (_L, _B), (_R, _B)), _pl((_L, _CY), (_R - 3, _CY))),
    "F": (_pl((_R, _T), (_L, _T), (_L, _B)), _pl((_L, _CY), (_R - 3, _CY))),
    "G": (
        _pl((_R, 27), (_R, _T + _RR)),
        _el(_CX, _T + _RR, _RR, _RR, 180, 360),
        _pl((_L, _T + _RR), (_L, _B - _RR)),
        _el(_CX, _B - _RR, _RR, _RR, 0, 180),
        _pl((_R, _B - _RR), (_R, 50), (_CX, 50)),
    ),
    "H": (_pl((_L, _T), (_L, _B)), _pl((_R, _T), (_R, _B)), _pl((_L, _CY), (_R, _CY))),
    "J": (_pl((_R, _T), (_R, _B - _RR)), _el(_CX, _B - _RR, _RR, _RR, 0, 165)),
    "K": (_pl((_L, _T), (_L, _B)), _pl((_R, _T), (_L, 58)), _pl((_L + 11, 46), (_R, _B))),
    "L": (_pl((_L, _T), (_L, _B), (_R, _B)),),
    "M": (_pl((_L, _B), (_L, _T), (_CX, 56), (_R, _T), (_R, _B)),),
    "N": (_pl((_L, _B), (_L, _T), (_R, _B), (_R, _T)),),
    "P": (_pl((_L, _B), (_L, _T), (_R - 13, _T)), _el(_R - 13, 25, 13, 20, 270, 450), _pl((_R - 13, 45), (_L, 45))),
    "Q": _stadium_sides() + (_pl((_CX + 4, 64), (_R + 1, _B + 1)),),
    "R": (
        _pl((_L, _B), (_L, _T), (_R - 13, _T)),
        _el(_R - 13, 25, 13, 20, 270, 450),
        _pl((_R - 13, 45), (_L, 45)),
        _pl((_CX - 1, 45), (_R, _B)),
    ),
    "S": (_el(_CX, 25, 16.5, 20, 90, 340), _el(_CX, 65, _RR, 20, 270, 520)),
    "T": (_pl((_L - 1, _T), (_R + 1, _T)), _pl((_CX, _T), (_CX, _B))),
    "U": (_pl((_L, _T), (_L, _B - _RR)), _el(_CX, _B - _RR, _RR, _RR, 0, 180), _pl((_R, _B - _RR), (_R, _T))),
    "V": (_pl((_L, _T), (_CX, _B), (_R, _T)),),
    "W": (_pl((_L - 1, _T), (_L + 7, _B), (_CX, _T + 22), (_R - 7, _B), (_R + 1, _T)),),
    "X": (_pl((_L, _T), (_R, _B)), _pl((_R, _T), (_L, _B))),
    "Y": (_pl((_L, _T), (_CX, 47)), _pl((_R, _T), (_CX, 47)), _pl((_CX, 47), (_CX, _B))),
    "Z": (_pl((_L, _T), (_R, _T), (_L, _B), (_R, _B)),),
}
_SHIFT = 4  # OpenCV fixed-point bits, so strokes land on sub-pixel positions


def _draw_plate_glyph(char: str, px_per_mm: float, stroke_mm: float) -> np.ndarray:
    """Draw char from the stroke plate font on a 45x90 mm box at px_per_mm (uint8 mask)."""
    one = 1 << _SHIFT
    image = np.zeros((round(90 * px_per_mm), round(45 * px_per_mm)), np.uint8)
    thickness = max(1, round(stroke_mm * px_per_mm))
    for kind, spec in _PLATE_STROKES[char]:
        if kind == "line":
            polyline = cast(_Polyline, spec)
            points = np.array([[round(x * px_per_mm * one), round(y * px_per_mm * one)] for x, y in polyline],
                              np.int32)
            cv2.polylines(image, [points], False, 255, thickness, cv2.LINE_AA, _SHIFT)
        else:
            cx, cy, rx, ry, start, end = cast(_Ellipse, spec)
            centre = (round(cx * px_per_mm * one), round(cy * px_per_mm * one))
            axes = (round(rx * px_per_mm * one), round(ry * px_per_mm * one))
            cv2.ellipse(image, centre, axes, 0, start, end, 255, thickness, cv2.LINE_AA, _SHIFT)
    return image


@lru_cache(maxsize=1024)
def _glyph_master(char: str, ref_w: int, weight: int, font: int) -> np.ndarray:
    """Return char fitted to ref_w x _GLYPH_REF_H in the given font and stroke weight (read-only)."""
    ref_h = _GLYPH_REF_H
    if GLYPH_FONTS[font] == "plate" and char in _PLATE_STROKES:
        drawn = _draw_plate_glyph(char, ref_h / 90.0, _STROKE_MM[weight])
        master = cv2.resize(drawn, (ref_w, ref_h), interpolation=cv2.INTER_AREA)
    elif char == "1":
        # Plate fonts draw 1 as a plain bar; Noto's flagged and footed 1 would fill the whole slot.
        master = np.zeros((ref_h, ref_w), np.uint8)
        stem = round(ref_h * (0.125, 0.11, 0.09)[weight])
        x0 = (ref_w - stem) // 2
        master[:, x0 : x0 + stem] = 255
    else:
        master = cv2.resize(_glyph_ink(char), (ref_w, ref_h), interpolation=cv2.INTER_AREA)
        kernels = _LATIN_WEIGHT_KERNELS if ord(char) < 0x2E80 else _CJK_WEIGHT_KERNELS
        kernel = kernels[weight]
        if kernel is not None:
            master = cv2.erode(master, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
    master.flags.writeable = False
    return master


@lru_cache(maxsize=8192)
def _glyph_mask(char: str, width: int, height: int, weight: int = 1, font: int = 0) -> np.ndarray:
    """Return a read-only uint8 mask of char fitted to exactly width x height pixels."""
    ref_w = max(4, round(_GLYPH_REF_H * width / height))
    mask = cv2.resize(_glyph_master(char, ref_w, weight, font), (width, height), interpolation=cv2.INTER_AREA)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=64)
def _text_mask(text: str, height: int) -> np.ndarray:
    """Return a mask of a short Latin string at its natural proportions (for the "RUS" caption)."""
    parts = [_glyph_ink(ch) for ch in text]
    scaled = [cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height)) for p in parts]
    gap = np.zeros((height, max(1, height // 6)), np.uint8)
    pieces: list[np.ndarray] = []
    for i, s in enumerate(scaled):
        if i:
            pieces.append(gap)
        pieces.append(s)
    mask = np.hstack(pieces)
    mask.flags.writeable = False
    return mask


# ----------------------------------------------------------------------------------------------
# Layout (millimetres on the physical plate; scaled to pixels at render time)


@dataclass(frozen=True)
class _Slot:
    char: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class _Layout:
    width: float
    height: float
    slots: tuple[_Slot, ...]
    dot: tuple[float, float, float] | None  # centre x, centre y, radius
    rivets: tuple[tuple[float, float], ...]


def _layout_cn(label: str, green: bool, width_scale: float) -> _Layout:
    if green:
        # GA 36-2018 new-energy plate: 480x140 mm, first glyph 45 mm wide, others 43 mm, 9 mm gaps.
        plate_w, widths, gap, dot_gap = 480.0, [45.0] + [43.0] * 7, 9.0, 49.0
    else:
        # GA 36-2007 small-car plate: 440x140 mm, 45x90 mm glyphs, 12 mm gaps, 34 mm gap holding the dot.
        plate_w, widths, gap, dot_gap = 440.0, [45.0] * 7, 12.0, 34.0
    widths = [w * width_scale for w in widths]
    total = sum(widths) + gap * (len(widths) - 2) + dot_gap
    x = (plate_w - total) / 2
    slots: list[_Slot] = []
    dot_x = 0.0
    for i, (ch, w) in enumerate(zip(label, widths)):
        slots.append(_Slot(ch, x, 25.0, w, 90.0))
        x += w
        if i == 1:
            dot_x = x + dot_gap / 2
            x += dot_gap
        else:
            x += gap
    rivet_y = 11.0
    return _Layout(
        plate_w, 140.0, tuple(slots), (dot_x, 70.0, 5.0), ((plate_w * 0.29, rivet_y), (plate_w * 0.71, rivet_y))
    )


def _layout_ru(label: str, width_scale: float) -> _Layout:
    # GOST R 50577 type 1: 520x112 mm, digits 76 mm tall, letters 58 mm, region box on the right.
    region = label[6:]
    widths = {"L": 50.0 * width_scale, "D": 54.0 * width_scale}
    heights = {"L": 58.0, "D": 76.0}
    bottom = 96.0
    kinds = "LDDDLL"
    gaps = [12.0, 6.0, 6.0, 12.0, 6.0]
    total = sum(widths[k] for k in kinds) + sum(gaps)
    x = 14.0 + (392.0 - total) / 2
    slots: list[_Slot] = []
    for i, (ch, kind) in enumerate(zip(label[:6], kinds)):
        slots.append(_Slot(ch, x, bottom - heights[kind], widths[kind], heights[kind]))
        x += widths[kind] + (gaps[i] if i < len(gaps) else 0.0)
    box_x0, box_x1 = 410.0, 512.0
    rw = (40.0 if len(region) == 2 else 29.0) * width_scale
    rgap = 5.0
    rtotal = rw * len(region) + rgap * (len(region) - 1)
    rx = box_x0 + (box_x1 - box_x0 - rtotal) / 2
    for ch in region:
        slots.append(_Slot(ch, rx, 10.0, rw, 58.0))
        rx += rw + rgap
    return _Layout(520.0, 112.0, tuple(slots), None, ((100.0, 9.0), (420.0, 9.0)))


# ----------------------------------------------------------------------------------------------
# Colours


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Convert OpenCV-scale HSV (h in 0..180, s and v in 0..255) to an RGB float triple."""
    hsv = [min(max(h, 0.0), 179.0), min(max(s, 0.0), 255.0), min(max(v, 0.0), 255.0)]
    pixel = np.array([[hsv]], np.uint8)
    return cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _plate_colours(style: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (top background, bottom background, ink, frame) RGB colours for the plate paint."""
    if style == "ccpd":
        # Hue/saturation/value spread measured on real CCPD crops: cyan-ish to navy, some washed out.
        bg = _hsv_to_rgb(rng.normal(108.5, 4), rng.uniform(190, 255), rng.uniform(160, 250))
        bottom = bg * rng.uniform(0.85, 1.1)
        ink = _hsv_to_rgb(rng.normal(105, 5), rng.uniform(0, 45), rng.uniform(220, 255))
        frame = ink * rng.uniform(0.85, 1.0)
        return bg, bottom, ink, frame
    if style == "ccpd-green":
        top = _hsv_to_rgb(rng.normal(55, 6), rng.uniform(10, 60), rng.uniform(215, 255))
        bottom = _hsv_to_rgb(rng.normal(60, 6), rng.uniform(140, 230), rng.uniform(150, 230))
        ink = _hsv_to_rgb(rng.uniform(0, 179), rng.uniform(0, 40), rng.uniform(10, 60))
        frame = top * rng.uniform(0.8, 1.0)
        return top, bottom, ink, frame
    paper = _hsv_to_rgb(rng.uniform(0, 179), rng.uniform(0, 25), rng.uniform(200, 255))
    ink = _hsv_to_rgb(rng.uniform(0, 179), rng.uniform(0, 40), rng.uniform(5, 55))
    return paper, paper * rng.uniform(0.88, 1.02), ink, ink


_CAR_COLOURS = np.array(
    [[20, 20, 22], [45, 45, 50], [90, 92, 96], [150, 150, 155], [200, 200, 205], [235, 235, 235],
     [140, 20, 20], [20, 40, 110], [60, 70, 60], [120, 100, 80], [180, 170, 150]],
    np.float32,
)


# ----------------------------------------------------------------------------------------------
# Rendering


_THIN_LUT = np.clip((np.arange(256, dtype=np.float32) - 70.0) * (255.0 / 185.0), 0, 255).astype(np.uint8)
_BOLD_LUT = np.clip(np.arange(256, dtype=np.float32) * 1.8, 0, 255).astype(np.uint8)


# The share of its slot the province glyph fills, drawn per plate. bench/province_proxy.py varies it.
_PROVINCE_FILLS: tuple[float, ...] = (0.86, 0.93, 1.0)


def _compose_plate(
    label: str, style: str, height: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the clean plate (float32 RGB, height px tall) with glyphs, dot, frame and rivets.

    Also returns the glyph ink (uint8 mask) and each glyph's box (x0, y0, x1, y1 in plate pixels),
    which the legibility check follows through the degradations.
    """
    width_scale = float(rng.choice([0.9, 0.95, 1.0, 1.05]))
    if style == "ru":
        layout = _layout_ru(label, width_scale)
    else:
        layout = _layout_cn(label, style == "ccpd-green", width_scale)
    scale = height / layout.height
    h, w = height, round(layout.width * scale)
    top, bottom, ink_rgb, frame_rgb = _plate_colours(style, rng)

    t = np.linspace(0.0, 1.0, h, dtype=np.float32)
    if style == "ccpd-green":
        # New-energy plates fade from near white at the top to green at the bottom.
        t = t ** np.float32(rng.uniform(0.6, 1.4))
    column = top[None, :] * (1 - t[:, None]) + bottom[None, :] * t[:, None]
    # Low-frequency blotches stand in for dirt, wear and reflections on the paint.
    blotch = cv2.resize(
        rng.uniform(0.86, 1.08, size=(3, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    background = column[:, None, :] * blotch[:, :, None]

    weight = int(rng.choice(len(GLYPH_WEIGHTS), p=[0.25, 0.5, 0.25]))
    # Russian plates use a different (wider) typeface, so they always take the condensed Noto glyphs.
    font = 1 if style == "ru" or rng.random() < _NOTO_SHARE else 0
    ink = np.zeros((h, w), np.uint8)
    boxes = np.zeros((len(layout.slots), 4), np.float32)
    # The province glyph's ink often sits a little inside its slot on real plates; a few discrete
    # sizes keep the glyph cache small.
    province_fill = float(rng.choice(_PROVINCE_FILLS)) if style != "ru" else 1.0
    for i, slot in enumerate(layout.slots):
        fill = province_fill if i == 0 else 1.0
        gw, gh = max(2, round(slot.w * scale * fill)), max(2, round(slot.h * scale * fill))
        cx, cy = slot.x + slot.w / 2 + rng.normal(0, 1.0), slot.y + slot.h / 2 + rng.normal(0, 1.0)
        x0 = min(max(0, round(cx * scale - gw / 2)), w - gw)
        y0 = min(max(0, round(cy * scale - gh / 2)), h - gh)
        region = ink[y0 : y0 + gh, x0 : x0 + gw]
        np.maximum(region, _glyph_mask(slot.char, gw, gh, weight, font), out=region)
        boxes[i] = (x0, y0, x0 + gw, y0 + gh)
    # Sub-pixel stroke jitter on top of the weight variant (cheap: a lookup table on the mask).
    tone = rng.random()
    if tone < 0.2:
        ink = cv2.LUT(ink, _THIN_LUT)
    elif tone > 0.9:
        ink = cv2.LUT(ink, _BOLD_LUT)

    if layout.dot is not None:
        cx, cy, r = layout.dot
        cv2.circle(ink, (round(cx * scale), round(cy * scale)), max(1, round(r * scale)), 255, -1, cv2.LINE_AA)

    frame = np.zeros((h, w), np.uint8)
    if style == "ru":
        inset, thick = round(4 * scale), max(1, round(rng.uniform(2.0, 3.5) * scale))
        cv2.rectangle(ink, (inset, inset), (w - 1 - inset, h - 1 - inset), 255, thick, cv2.LINE_AA)
        sep_x = round(404 * scale)
        cv2.line(ink, (sep_x, inset), (sep_x, h - 1 - inset), 255, thick, cv2.LINE_AA)
        rus = _text_mask("RUS", max(3, round(15 * scale)))
        rx, ry = round(422 * scale), round(80 * scale)
        cut = ink[ry : ry + rus.shape[0], rx : rx + rus.shape[1]]
        np.maximum(cut, rus[: cut.shape[0], : cut.shape[1]], out=cut)
    elif rng.random() < 0.9:
        thick = max(1, round(rng.uniform(2.0, 6.0) * scale))
        cv2.rectangle(frame, (0, 0), (w - 1, h - 1), 255, thick)

    alpha = ink.astype(np.float32) * np.float32(1.0 / 255.0)
    plate = background + (ink_rgb - background) * alpha[:, :, None]
    if style != "ru" and frame.any():
        fa = frame.astype(np.float32)[:, :, None] * np.float32(1.0 / 255.0)
        plate += (frame_rgb - plate) * fa

    if style == "ru":
        # The tricolour sits right of "RUS"; a few pixels at 24 px, but it is a strong cue on real plates.
        fx, fy = round(466 * scale), round(81 * scale)
        fw, fh = max(3, round(26 * scale)), max(3, round(15 * scale))
        stripes = ((250.0, 250.0, 250.0), (30.0, 60.0, 170.0), (200.0, 30.0, 30.0))
        for k, colour in enumerate(stripes):
            plate[fy + k * fh // 3 : fy + (k + 1) * fh // 3, fx : fx + fw] = colour

    if rng.random() < 0.85:
        metal = float(rng.uniform(60, 235))
        for rx_mm, ry_mm in layout.rivets:
            centre = (round((rx_mm + rng.normal(0, 4)) * scale), round((ry_mm + rng.normal(0, 1)) * scale))
            radius = max(1, round(rng.uniform(3.0, 5.5) * scale))
            colour = (metal, metal, metal * float(rng.uniform(0.85, 1.05)))
            cv2.circle(plate, centre, radius, colour, -1, cv2.LINE_AA)
    return plate, ink, boxes


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Return a float32 RGB car-body/bumper backdrop made of horizontal bands and a gradient."""
    base = _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))] * rng.uniform(0.6, 1.2)
    rows = np.empty((h, 3), np.float32)
    rows[:] = base
    for _ in range(int(rng.integers(0, 4))):
        y0 = int(rng.integers(0, h))
        band = int(rng.integers(2, max(3, h // 4)))
        rows[y0 : y0 + band] = rows[y0 : y0 + band] * rng.uniform(0.3, 1.6) + rng.normal(0, 15, 3)
    gradient = np.linspace(rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2), w, dtype=np.float32)
    canvas = rows[:, None, :] * gradient[None, :, None]
    if rng.random() < 0.3:
        # Grille slats: dark vertical bars behind or below the plate.
        period = int(rng.integers(8, 30))
        slats = (np.arange(w) % period < period // 3).astype(np.float32)
        canvas = canvas * (1 - 0.5 * slats[None, :, None])
    return canvas


LOOSE_CROP_SHARE = 0.15  # crops whose detector box leaves a margin around the plate


def _plate_quad(out_w: int, out_h: int, rng: np.random.Generator) -> np.ndarray:
    """Return where the plate's four corners land in the output crop (TL, TR, BR, BL)."""
    # Crop boxes are mostly tight (plate edge at the crop edge), sometimes loose, sometimes cut.
    # The loose branch is calibrated on the real crops, where the plate fills at least ~70% of the
    # crop height: looser boxes shrank the province glyph below what any real crop shows.
    if rng.random() < 1.0 - LOOSE_CROP_SHARE:
        mx = rng.uniform(-0.02, 0.04, size=2) * out_w
        my = rng.uniform(-0.04, 0.10, size=2) * out_h
    else:
        mx = rng.uniform(0.0, 0.08, size=2) * out_w
        my = rng.uniform(0.04, 0.16, size=2) * out_h
    left, right = mx[0], out_w - mx[1]
    top, bottom = my[0], out_h - my[1]
    quad = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    # In-plane rotation, measured in output pixels (the crop stretches the plate, so keep it small).
    angle = math.radians(float(np.clip(rng.normal(0, 3.5), -12, 12)))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
    quad = (quad - [cx, cy]) @ rot.T + [cx, cy]
    # Yaw: one side taller than the other; shear: top shifted against bottom.
    yaw = float(np.clip(rng.normal(0, 0.06), -0.18, 0.18))
    quad[[0, 3], 1] = cy + (quad[[0, 3], 1] - cy) * (1 + yaw)
    quad[[1, 2], 1] = cy + (quad[[1, 2], 1] - cy) * (1 - yaw)
    shear = float(np.clip(rng.normal(0, 0.015), -0.06, 0.06)) * out_w
    quad[[0, 1], 0] += shear / 2
    quad[[2, 3], 0] -= shear / 2
    quad += rng.normal(0, 0.012, size=(4, 2)).astype(np.float32) * [out_w, out_h]
    return quad.astype(np.float32)


def _motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(math.radians(angle_deg)) * c, math.sin(math.radians(angle_deg)) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return kernel / kernel.sum()


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a synthetic plate.")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _output_size(rng: np.random.Generator) -> tuple[int, int]:
    if rng.random() < 0.75:
        return _BASE_OUT_W, _BASE_OUT_H
    factor = rng.uniform(1.05, 2.0)
    aspect = rng.uniform(0.92, 1.08)
    return round(_BASE_OUT_W * factor * aspect), round(_BASE_OUT_H * factor)


def _composition_height(work_h: int) -> int:
    # A few fixed heights keep the glyph-mask cache small; each is >= 1.3x the working height.
    for height in _COMPOSE_HEIGHTS:
        if height >= 1.3 * work_h:
            return height
    return _COMPOSE_HEIGHTS[-1]


def _check_label(label: str, style: str) -> None:
    _check_style(style)
    expected = 8 if style == "ccpd-green" else 7
    if style == "ru":
        if len(label) not in (8, 9):
            raise ValueError(f"A Russian plate label has 8 or 9 characters, got {label!r}.")
    elif len(label) != expected:
        raise ValueError(f"A {style} plate label has {expected} characters, got {label!r}.")
    if style == "ru":
        bad = sorted({ch for ch in label if ch not in RU_ALPHABET})
    else:
        if label[0] not in PROVINCES:
            raise ValueError(f"A {style} plate label starts with a province glyph, got {label!r}.")
        bad = sorted({ch for ch in label[1:] if ch not in PLATE_ALNUM})
    if bad:
        raise ValueError(f"Label {label!r} has characters the {style} style cannot draw: {''.join(bad)}.")


def _photometric(work: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply uneven light, white balance, exposure, contrast, haze and gamma to a uint8 RGB image."""
    work_h, work_w = work.shape[:2]
    img = work.astype(np.float32)
    ys = np.linspace(-0.5, 0.5, work_h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, work_w, dtype=np.float32)[None, :]
    light = 1.0 + np.float32(rng.normal(0, 0.25)) * xs + np.float32(rng.normal(0, 0.2)) * ys
    if rng.random() < 0.15:
        # A soft-edged shadow (car body, tree) across part of the plate.
        edge = np.float32(rng.uniform(-0.4, 0.4))
        side = xs * np.float32(rng.choice([-1.0, 1.0])) + ys * np.float32(rng.normal(0, 0.5))
        light = light * np.where(side > edge, np.float32(rng.uniform(0.45, 0.8)), np.float32(1.0))
    gains = rng.normal(1.0, 0.07, size=3).astype(np.float32)
    img *= light[:, :, None] * gains
    contrast = rng.uniform(0.7, 1.3) if rng.random() < 0.85 else rng.uniform(0.45, 0.7)
    mean = float(img.mean())
    img = (img - mean) * np.float32(contrast) + np.float32(mean * rng.uniform(0.7, 1.3) + rng.normal(0, 8))
    if rng.random() < 0.1:
        haze = np.float32(rng.uniform(0.1, 0.3))
        img = img * (1 - haze) + np.float32(rng.uniform(120, 230)) * haze
    np.clip(img, 0, 255, out=img)
    gamma = rng.uniform(0.7, 1.2)
    return cv2.LUT(img.astype(np.uint8), _gamma_lut(round(gamma * 50)))


@lru_cache(maxsize=64)
def _gamma_lut(gamma_x50: int) -> np.ndarray:
    lut = 255.0 * (np.arange(256) / 255.0) ** (gamma_x50 / 50.0)
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


# A sample whose glyphs are cut off or washed out no longer shows its label, so it would teach (and
# score) noise. Degradations are redrawn until every glyph is at least this visible and this distinct.
MIN_GLYPH_INSIDE = 0.9  # share of each glyph's box inside the crop
MIN_GLYPH_CONTRAST = 25.0  # ink-vs-paint grey-level difference inside each glyph's box
_LEGIBILITY_TRIES = 8


def render_plate(label: str, style: str, rng: np.random.Generator) -> np.ndarray:
    """Render one degraded plate crop of label in style; returns RGB uint8 about 24x94 to 48x188.

    Degradations are redrawn (up to a few times, deterministically) until every glyph passes
    MIN_GLYPH_INSIDE and MIN_GLYPH_CONTRAST; if none passes, the most legible draw is returned.
    """
    return render_plate_with_legibility(label, style, rng)[0]


def render_plate_with_legibility(
    label: str, style: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like render_plate, and also return each glyph's inside share and contrast (glyph_legibility)."""
    _check_label(label, style)
    out_w, out_h = _output_size(rng)
    work_w, work_h = out_w * 2, out_h * 2
    plate, ink, boxes = _compose_plate(label, style, _composition_height(work_h), rng)
    ph, pw = plate.shape[:2]

    margin_y, margin_x = round(ph * 0.45), round(pw * 0.14)
    canvas = _background(ph + 2 * margin_y, pw + 2 * margin_x, rng)
    if rng.random() < 0.5:
        # Plate holder frame around the plate (black plastic or chrome).
        t = max(1, round(rng.uniform(0.02, 0.09) * ph))
        shade = rng.uniform(10, 50) if rng.random() < 0.6 else rng.uniform(120, 230)
        canvas[margin_y - t : margin_y + ph + t, margin_x - t : margin_x + pw + t] = shade
    canvas[margin_y : margin_y + ph, margin_x : margin_x + pw] = plate
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    ink_canvas = np.zeros(canvas.shape[:2], np.uint8)
    ink_canvas[margin_y : margin_y + ph, margin_x : margin_x + pw] = ink
    offset = np.float32([margin_x, margin_y])
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32) + offset
    glyph_corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1)
    glyph_corners = (glyph_corners + offset).reshape(-1, 1, 2)

    best: tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    for _ in range(_LEGIBILITY_TRIES):
        matrix = cv2.getPerspectiveTransform(src, _plate_quad(work_w, work_h, rng))
        out = _degrade(canvas, matrix, (work_w, work_h), (out_w, out_h), rng)
        glyph_quads = cv2.perspectiveTransform(glyph_corners, matrix).reshape(-1, 4, 2)
        glyph_quads *= np.float32([out_w / work_w, out_h / work_h])
        ink_out = cv2.resize(
            cv2.warpPerspective(ink_canvas, matrix, (work_w, work_h), flags=cv2.INTER_LINEAR),
            (out_w, out_h),
            interpolation=cv2.INTER_AREA,
        )
        inside, contrast = glyph_legibility(out, ink_out, glyph_quads)
        if inside.min() >= MIN_GLYPH_INSIDE and contrast.min() >= MIN_GLYPH_CONTRAST:
            return out, inside, contrast
        margin = min(inside.min() / MIN_GLYPH_INSIDE, contrast.min() / MIN_GLYPH_CONTRAST)
        if best is None or margin > best[0]:
            best = (margin, (out, inside, contrast))
    assert best is not None
    return best[1]


def _degrade(
    canvas: np.ndarray, matrix: np.ndarray, work_size: tuple[int, int], out_size: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Warp the plate into a crop box, then light, blur, compress, resize, sharpen and add noise."""
    out_w, out_h = out_size
    work = cv2.warpPerspective(canvas, matrix, work_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    work = _photometric(work, rng)

    blur = rng.random()
    if blur < 0.08:
        work = cv2.filter2D(work, -1, _motion_kernel(int(rng.integers(3, 7)), float(rng.normal(0, 20))))
    elif blur < 0.6:
        work = cv2.GaussianBlur(work, (0, 0), float(rng.uniform(0.3, 1.3)))
    if rng.random() < 0.4:
        # The source photo was itself JPEG compressed before the crop was cut out.
        work = _jpeg(work, int(rng.integers(30, 90)))

    interpolation = cv2.INTER_AREA if rng.random() < 0.4 else cv2.INTER_LINEAR
    out = cv2.resize(work, (out_w, out_h), interpolation=interpolation)
    if rng.random() < 0.6:
        # Real crops are sharpened after resizing (light halos around strokes, high local contrast).
        amount = float(rng.uniform(0.3, 1.5))
        soft = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.8, 1.5)))
        out = cv2.addWeighted(out, 1.0 + amount, soft, -amount, 0)
    noise_sigma = float(rng.uniform(0, 6))
    if noise_sigma > 1:
        # Mostly luminance noise with a weaker per-channel part, like a small camera sensor.
        noise = rng.normal(0, noise_sigma, size=(out_h, out_w, 1)).astype(np.float32)
        noise = noise + rng.normal(0, noise_sigma * 0.4, size=(out_h, out_w, 3)).astype(np.float32)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    # The crop itself is saved as a high-quality JPEG: the real-plates crops' quantisation tables
    # (luma DC 2, mean 5) are those of quality 90-95.
    out = _jpeg(out, int(rng.integers(75, 97)))
    return np.ascontiguousarray(out)


def glyph_legibility(image: np.ndarray, ink: np.ndarray, quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measure how readable each glyph of a rendered crop is.

    image is the RGB crop, ink the glyph mask warped to the crop (uint8), quads the (n, 4, 2) glyph
    boxes in crop pixels. Returns, per glyph, the share of its box inside the crop and the grey-level
    difference between its ink and the paint around it (both 0 when the box is off the crop).
    """
    h, w = image.shape[:2]
    frame = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    alpha = ink.astype(np.float32) * np.float32(1.0 / 255.0)
    inside = np.zeros(len(quads), np.float32)
    contrast = np.zeros(len(quads), np.float32)
    for i, quad in enumerate(np.asarray(quads, np.float32)):
        area = abs(cv2.contourArea(quad))
        overlap, _ = cv2.intersectConvexConvex(quad, frame)
        inside[i] = overlap / area if area > 0 else 0.0
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        a = alpha[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        g = grey[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        ink_weight, paint_weight = float(a.sum()), float(a.size - a.sum())
        if ink_weight < 1 or paint_weight < 1:
            continue
        contrast[i] = abs(float((g * a).sum()) / ink_weight - float((g * (1 - a)).sum()) / paint_weight)
    return inside, contrast


def _choose_style(styles: Sequence[str], rng: np.random.Generator) -> str:
    if len(styles) == 1:
        return styles[0]
    weights = np.array([_STYLE_WEIGHTS[s] for s in styles])
    return styles[int(rng.choice(len(styles), p=weights / weights.sum()))]


def sample_name(index: int, label: str) -> str:
    """Return the file name for a synthetic sample: six-digit index, '-', label, '.png'."""
    return f"{index:06d}-{label}.png"


def render_sample(
    seed: int, index: int, styles: Sequence[str] = ("ccpd",), province_skew: str = "uniform"
) -> tuple[str, np.ndarray]:
    """Return (label, RGB image) of sample index for seed; independent of any other sample."""
    rng = np.random.default_rng([seed, index])
    style = _choose_style(tuple(styles), rng)
    if style in CAPTCHA_STYLES:
        label = captcha.random_captcha_label(rng)
        return label, captcha.render_captcha(label, rng)
    weights = province_weights(province_skew)
    label = random_label(style, rng, weights)
    return label, render_plate(label, style, rng)


def generate(
    out_dir: Path,
    count: int,
    seed: int,
    styles: Sequence[str] = ("ccpd",),
    province_skew: str = "uniform",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write count synthetic plates as NNNNNN-LABEL.png into out_dir (deterministic per seed)."""
    if count < 0:
        raise ValueError(f"count must be zero or more, got {count}.")
    if seed < 0:
        raise ValueError(f"seed must be zero or more, got {seed}.")
    unique = tuple(dict.fromkeys(styles))
    if not unique:
        raise ValueError(f"Pick at least one plate style from {', '.join(ALL_STYLES)}.")
    for style in unique:
        if style not in CAPTCHA_STYLES:
            _check_style(style)
    province_weights(province_skew)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step = max(1, count // 100)
    has_captchas = any(style in CAPTCHA_STYLES for style in unique)
    paths: list[Path] = []
    for index in range(count):
        label, rgb = render_sample(seed, index, unique, province_skew)
        path = out_dir / sample_name(index, label)
        # Grey images (captchas) are written as one-channel PNGs, like the real captcha set.
        grey = has_captchas and (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        ok, buf = cv2.imencode(".png", rgb[..., 0] if grey else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"OpenCV could not PNG-encode {path.name}.")
        with atomic_path(path) as tmp:
            # ndarray.tofile goes through Python's open(), so CJK file names work on every OS.
            buf.tofile(tmp)
        paths.append(path)
        if progress is not None and ((index + 1) % step == 0 or index + 1 == count):
            progress(index + 1, count)
    return paths
