"""The raw CCPD2019 file naming: plate indices, the plate's four vertices, brightness and blurriness."""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

# The lists of the CCPD documentation; "O" is CCPD's own placeholder entry, kept so indices stay aligned.
CCPD_PROVINCES = "皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学O"
CCPD_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZO"
CCPD_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789O"

_POINT = r"(\d+)&(\d+)"
_RAW_NAME = re.compile(
    rf"^(?P<area>\d+)-(?P<tilt_h>\d+)_(?P<tilt_v>\d+)-{_POINT}_{_POINT}-"
    rf"{_POINT}_{_POINT}_{_POINT}_{_POINT}-(?P<indices>\d+(?:_\d+){{6,7}})-(?P<brightness>\d+)-(?P<blur>\d+)$"
)

# Warped crops keep the plate's own aspect (440 x 140 mm) at a height that preserves CCPD detail.
CROP_HEIGHT = 48
CROP_WIDTH = 150


@dataclass(frozen=True)
class CcpdName:
    """The fields of one raw CCPD file name."""

    label: str
    vertices: tuple[tuple[float, float], ...]  # bottom-right, bottom-left, top-left, top-right
    brightness: int
    blur: int
    tilt_h: int
    tilt_v: int
    area: int


def parse_ccpd_name(stem: str) -> CcpdName | None:
    """Decode a raw CCPD file stem, or return None when the stem is not in that naming."""
    match = _RAW_NAME.match(stem)
    if match is None:
        return None
    numbers = [int(g) for g in match.groups()[3:15]]
    vertices = tuple((float(numbers[i]), float(numbers[i + 1])) for i in range(4, 12, 2))
    indices = [int(i) for i in match["indices"].split("_")]
    try:
        chars = [CCPD_PROVINCES[indices[0]], CCPD_LETTERS[indices[1]]]
        chars += [CCPD_ALNUM[i] for i in indices[2:]]
    except IndexError:
        return None
    return CcpdName(
        label="".join(chars),
        vertices=vertices,
        brightness=int(match["brightness"]),
        blur=int(match["blur"]),
        tilt_h=int(match["tilt_h"]),
        tilt_v=int(match["tilt_v"]),
        area=int(match["area"]),
    )


def warp_plate(image: np.ndarray, vertices: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Crop the plate by warping its four vertices (bottom-right first, clockwise) to a rectangle."""
    src = np.array(vertices, dtype=np.float32)
    w, h = CROP_WIDTH, CROP_HEIGHT
    dst = np.array([[w - 1, h - 1], [0, h - 1], [0, 0], [w - 1, 0]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
