"""Decoding image files of any kind into RGB uint8, and resizing them to the model input."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocr_core.errors import InputError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, progressive, lossless ...) carry the size; C4 (DHT), C8 (JPG) and
# CC (DAC) sit in the same range but are tables.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})

# Refuse to decode images whose pixel count could exhaust memory; larger plates are not plausible crops.
MAX_PIXELS = 64_000_000


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Normalize a decoded array (gray, gray+alpha, BGR, BGRA; 8 or 16 bit; float) to RGB uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        scaled = image.astype(np.float32)
        if scaled.size and float(np.nanmax(scaled)) <= 1.0:
            scaled = scaled * 255.0
        image = np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file (non-ASCII paths included) as RGB uint8.

    Raises:
        InputError: the file is missing, empty, too large or not a decodable image.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}; check the path and permissions") from None
    if not data:
        raise InputError(f"image {path} is an empty (zero-byte) file; remove or replace it", reason="zero-byte file")
    _refuse_huge(path, _header_size(data))
    with np.errstate(all="ignore"):
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(f"{path} is not a decodable image (truncated or not a picture); remove or replace it")
    _refuse_huge(path, (image.shape[1], image.shape[0]))
    return to_rgb_uint8(image)


def _header_size(data: bytes) -> tuple[int, int] | None:
    # The size is read from the header, so a huge image is refused before anything is decoded.
    # PNG and JPEG sizes are read directly instead of through Pillow's header parser, which holds the
    # GIL for about as long as OpenCV takes to decode a whole small crop, and so serialised the decoding
    # threads (bench/decode_throughput.py). A PNG must start with its IHDR chunk, at a fixed offset.
    if len(data) >= 24 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == _JPEG_SOI:
        size = jpeg_frame_size(data)
        if size is not None:
            return size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                return header.size
    except Exception:  # noqa: BLE001 - not every format cv2 reads is one Pillow knows; cv2 decides then
        return None


def image_file_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) of an image file from its header, without decoding it; None when unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    size = _header_size(head)
    return (size[1], size[0]) if size else None


def jpeg_frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame segment, or None where the markers do not lead to one."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            i += 2
            continue
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            # A height of 0 means it is defined later (DNL marker); let Pillow and OpenCV decide then.
            return (int(width), int(height)) if width and height else None
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        i += 2 + length
    return None


def _refuse_huge(path: Path, size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise InputError(
            f"image {path} is {size[0]}x{size[1]} pixels, over the {MAX_PIXELS:,} pixel limit; crop the plate first",
            reason=f"{size[0]}x{size[1]} pixels, over the pixel limit",
        )


_UPSCALE_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def resize_to_input(image: np.ndarray, height: int, width: int, upscale: str = "linear") -> np.ndarray:
    """Resize an RGB crop to the model input size: area averaging when shrinking, else ``upscale``
    (``InputSpec.upscale``: "linear" or "cubic")."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = image.shape[0] > height or image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else _UPSCALE_INTERPOLATION[upscale]
    return cv2.resize(image, (width, height), interpolation=interpolation)

