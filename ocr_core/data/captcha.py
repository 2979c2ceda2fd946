"""Synthetic 5-character captchas in the look of captcha_images_v2 (seed notebook 004's data).

The real set (200x50 grey PNGs, labels from ``CAPTCHA_ALPHABET``) shows near-black glyphs that overlap
their neighbours, a grey "hairy" halo around each stroke (the text drawn again, shifted and speckled),
a black strike line that starts with a few erratic strokes left of the text and runs to the right
edge, and a background that goes from light grey on one side to white on the other. ``render_captcha``
draws that with Pillow and OpenCV from the bundled Noto Sans CJK SC Bold subset
(``assets/fonts/NotoSansCJKsc-Bold-captcha.otf``, the 19 characters and the single-storey g U+0261,
SIL OFL 1.1); nothing is downloaded. Where Noto's shapes differ from the real font (its g, the m's
stems, the x-height), ``_text_mask`` draws them as the real train split shows (README "Captchas",
``bench/captcha_glyphs.py``).

Labels: ``random_captcha_label`` draws each character independently, ``n`` twice as often as the
others (as in the real set), so about 20% of labels hold a doubled character (real: 18%).

``captcha_split`` is the fixed held-out split of a real captcha folder used in the README's figures.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTCHA_ALPHABET: str = "2345678bcdefgmnpwxy"
CAPTCHA_LENGTH = 5
CAPTCHA_SIZE: tuple[int, int] = (50, 200)  # (height, width), as the real set
CAPTCHA_FONT_PATH: Path = Path(__file__).parent.parent / "assets" / "fonts" / "NotoSansCJKsc-Bold-captcha.otf"
# Relative weight of each character; the real set has about twice as many n as any other character.
_CHAR_WEIGHTS = np.array([2.0 if c == "n" else 1.0 for c in CAPTCHA_ALPHABET])
_FONT_PX = 64  # glyphs are rendered once at this size and scaled per sample
# Height of a digit's ink at _FONT_PX (Noto Sans CJK SC Bold figures are 0.733 em tall).
_DIGIT_PX = 0.733 * _FONT_PX
_SS = 2  # supersampling factor: the captcha is drawn at 2x and area-downsampled
# Glyphs drawn for a label character where the bundled face's own differs from the real font's: the real
# captchas draw a single-storey g, Noto's g is double-storey; U+0261 is the face's single-storey g.
_DRAWN_AS: dict[str, str] = {"g": "\u0261"}
# Chance of a hairy fringe by character position (times a per-captcha share of 0.6-1.0): the real set's
# mid-grey share rises from about 0.05 over its first glyph to 0.12 over its last ones.
_HALO_BY_POSITION = (0.05, 0.35, 0.8, 1.0, 1.0)
_TALL_X = "cemnx"  # x-height letters without descenders, drawn 5-15% taller (see _text_mask)


def random_captcha_label(rng: np.random.Generator) -> str:
    """Five characters of CAPTCHA_ALPHABET, each drawn independently (``n`` twice as likely)."""
    p = _CHAR_WEIGHTS / _CHAR_WEIGHTS.sum()
    return "".join(CAPTCHA_ALPHABET[int(i)] for i in rng.choice(len(CAPTCHA_ALPHABET), size=CAPTCHA_LENGTH, p=p))


def check_captcha_label(label: str) -> None:
    """Raise ValueError unless label is 5 characters of CAPTCHA_ALPHABET."""
    bad = sorted({c for c in label if c not in CAPTCHA_ALPHABET})
    if len(label) != CAPTCHA_LENGTH or bad:
        raise ValueError(f"A captcha label has {CAPTCHA_LENGTH} characters of {CAPTCHA_ALPHABET}, got {label!r}.")


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    if not CAPTCHA_FONT_PATH.is_file():
        raise FileNotFoundError(f"{CAPTCHA_FONT_PATH} is missing; rebuild it with "
                                "python -m ocr_core.assets.make_captcha_font.")
    return ImageFont.truetype(str(CAPTCHA_FONT_PATH), size=_FONT_PX)


@lru_cache(maxsize=64)
def _glyph(char: str) -> tuple[np.ndarray, int]:
    """The glyph's ink at _FONT_PX (cropped horizontally, full line height) and its baseline row."""
    font = _font()
    ascent, descent = font.getmetrics()
    drawn = _DRAWN_AS.get(char, char)
    left, _, right, _ = font.getbbox(drawn)
    image = Image.new("L", (right - left + 8, ascent + descent + 8), 0)
    ImageDraw.Draw(image).text((4 - left, 4), drawn, fill=255, font=font)
    ink = np.asarray(image)
    xs = np.flatnonzero(ink.max(axis=0) > 16)
    cropped = ink[:, xs.min(): xs.max() + 1].copy()
    cropped.flags.writeable = False
    return cropped, 4 + ascent


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth left-to-right ramp from light grey to near white (real: about 193 to 250, the bottom
    rows a few levels lighter); one in five draws gets a wider range or the ramp reversed."""
    dark, light = rng.normal(193, 3), rng.normal(250, 2)
    if rng.random() < 0.2:
        dark, light = rng.uniform(170, 235), rng.uniform(225, 255)
        if rng.random() < 0.3:
            dark, light = light, dark
    ramp = np.linspace(0, 1, w, dtype=np.float32)
    bg = np.repeat((dark + (light - dark) * ramp)[None, :], h, axis=0)
    bg += np.linspace(0, 1, h, dtype=np.float32)[:, None] * rng.uniform(0, 6)
    return bg.astype(np.float32)


def _text_mask(label: str, h: int, w: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Float masks (0..1) of the label's glyphs and of their hairy fringe, at (h, w), and each glyph's
    (left, right) ink columns at (h, w).

    Glyphs are about 26-31 px tall (digits) at 50 px captcha height, advance 20-25 px and overlap
    their neighbours a little; each is jittered and slightly rotated. The first glyph's left ink edge
    sits at 28-31 px of 200 in four draws of five (the real set draws it at about 29 every time; the
    fifth draw anywhere from 16 to 32 px). Glyphs get a fringe (their outline drawn again a few times,
    shifted 1-3 px, through a sparse speckle: the real set's halo) more often the further right they
    are, as in the real set, whose first glyph is nearly always crisp and whose last ones are hairy.
    The m is squeezed into its cell and then thickened sideways (``_thick_m``).
    """
    mask = np.zeros((h, w), np.float32)
    fringe = np.zeros((h, w), np.float32)
    digit_h = rng.uniform(0.52, 0.62) * h
    scale = digit_h / _DIGIT_PX
    squeeze = rng.uniform(0.95, 1.15)
    advance = rng.uniform(0.40, 0.50) * h * rng.uniform(0.95, 1.05)
    baseline = rng.uniform(0.80, 0.91) * h  # low: descenders (g, p, y) are often cut short, as in the real set
    real_layout = rng.random() < 0.8
    first_left = rng.uniform(0.14, 0.155) * w if real_layout else rng.uniform(0.08, 0.16) * w
    x = 0.0
    thin = int(rng.choice([0, 0, 0, 0, 0, 1, 1, 2]))  # the real strokes are 4 px (of 128) in nearly every file
    halo_share = rng.uniform(0.6, 1.0)
    boxes: list[tuple[int, int]] = []
    for index, char in enumerate(label):
        ink, base = _glyph(char)
        gh, gw = ink.shape
        # The real set's m is squeezed into its character cell; its w keeps more of its width.
        natural = gw * scale * squeeze
        cell = advance * (rng.uniform(0.85, 1.1) if char == "m" else rng.uniform(1.05, 1.35))
        # The real font's x-height is taller than Noto's: its c, e, m, n, x reach 1-3 rows (of 32) higher.
        tall = rng.uniform(1.05, 1.15) if char in _TALL_X else 1.0
        sw, sh = max(2, round(min(natural, cell))), max(2, round(gh * scale * tall))
        if char == "m":
            glyph = _thick_m(ink, sw, sh, rng)
        else:
            glyph = cv2.resize(ink, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if index == 0:
            x = first_left - (advance - sw) / 2
        if thin:
            glyph = cv2.erode(glyph, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thin + 1, thin + 1)))
        pad = max(sw, sh) // 3
        glyph = cv2.copyMakeBorder(glyph, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        centre = (glyph.shape[1] / 2, glyph.shape[0] / 2)
        glyph = cv2.warpAffine(glyph, cv2.getRotationMatrix2D(centre, rng.normal(0, 4), 1.0), glyph.shape[::-1],
                               flags=cv2.INTER_LINEAR)
        top = round(baseline - base * scale * tall - pad + rng.normal(0, 0.02 * h))
        left = round(x + (advance - sw) / 2 - pad)
        _paste_max(mask, glyph, top, left)
        boxes.append((left + pad, left + pad + sw))
        if rng.random() < halo_share * (_HALO_BY_POSITION[index] if real_layout else 0.8):
            edge = cv2.morphologyEx(glyph, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
            for _ in range(int(rng.integers(2, 6))):
                dx, dy = rng.normal(0, 1.8 * _SS, size=2)
                # Speckles of one output pixel (_SS x _SS here): the real halo is dark single pixels.
                coarse = rng.random((-(-glyph.shape[0] // _SS), -(-glyph.shape[1] // _SS))) < rng.uniform(0.2, 0.6)
                speckle = np.kron(coarse, np.ones((_SS, _SS)))[: glyph.shape[0], : glyph.shape[1]].astype(np.float32)
                _paste_max(fringe, edge * speckle * rng.uniform(0.5, 1.0), round(top + dy), round(left + dx))
        x += advance * rng.uniform(0.9, 1.1)
    return mask, fringe, boxes


def _thick_m(ink: np.ndarray, sw: int, sh: int, rng: np.random.Generator) -> np.ndarray:
    """The m at (sw, sh) as the real font draws it: squeezed, but with stems as thick as the n's and
    counters of only 2-3 px at 200 px wide (a plain squeeze thins the stems and keeps wider counters)."""
    grow = int(rng.integers(2, 5))  # supersampled px added to each stem
    narrow = cv2.resize(ink, (max(2, sw - grow), sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    narrow = cv2.copyMakeBorder(narrow, 0, 0, grow // 2, grow - grow // 2, cv2.BORDER_CONSTANT, value=0)
    return cv2.dilate(narrow, np.ones((1, grow + 1), np.uint8))


def _paste_max(canvas: np.ndarray, part: np.ndarray, top: int, left: int) -> None:
    h, w = canvas.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + part.shape[0], h), min(left + part.shape[1], w)
    if y1 > y0 and x1 > x0:
        window = canvas[y0:y1, x0:x1]
        np.maximum(window, part[y0 - top: y1 - top, x0 - left: x1 - left], out=window)


def _strike_line(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A black polyline: a few erratic strokes at the left, then a long run to the right edge (0..1).

    In four draws of five the strokes start 17-26 px of 200 from the left, just before the first glyph,
    stay left of 38 px and the run ends at 175-181 px, as in the real set (no ink left of 17 px or right
    of 181 px there); the fifth draw spreads them wider."""
    layer = np.zeros((h, w), np.uint8)
    if rng.random() < 0.8:
        start, erratic, end = (0.085, 0.13), (0.085, 0.19), (0.875, 0.905)
    else:
        start, erratic, end = (0.02, 0.16), (0.04, 0.24), (0.82, 0.93)
    points = [(rng.uniform(*start) * w, rng.uniform(0.1, 0.9) * h)]
    for _ in range(int(rng.integers(1, 4))):
        points.append((rng.uniform(*erratic) * w, rng.uniform(0.1, 0.9) * h))
    end_x = rng.uniform(*end) * w
    mid_y = rng.uniform(0.25, 0.75) * h
    for t in np.linspace(0, 1, int(rng.integers(2, 5)))[1:]:
        x = points[-1][0] + (end_x - points[-1][0]) * t if t < 1 else end_x
        points.append((x, float(np.clip(mid_y + rng.normal(0, 0.12) * h, 0.1 * h, 0.9 * h))))
    thickness = max(1, round(rng.uniform(1.0, 1.9) * _SS))
    pts = np.array([[round(x * 16), round(y * 16)] for x, y in points], np.int32)
    cv2.polylines(layer, [pts], False, 255, thickness, cv2.LINE_AA, 4)
    return layer.astype(np.float32) / 255.0


def render_captcha(label: str, rng: np.random.Generator) -> np.ndarray:
    """Render label as a 50x200 captcha; returns RGB uint8 with three equal channels (a grey image)."""
    return render_captcha_with_boxes(label, rng)[0]


def render_captcha_with_boxes(label: str, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``render_captcha``'s image (same pixels for the same rng state) and each character's (left, right)
    ink columns in the 200-pixel-wide image, before rotation (for ``bench/captcha_glyphs.py``)."""
    check_captcha_label(label)
    h, w = CAPTCHA_SIZE[0] * _SS, CAPTCHA_SIZE[1] * _SS
    bg = _background(h, w, rng)
    mask, halo, boxes = _text_mask(label, h, w, rng)
    line = _strike_line(h, w, rng)
    ink_level = rng.uniform(0, 25)
    halo_level = rng.uniform(0, 60)
    img = bg * (1 - halo) + halo_level * halo
    img = img * (1 - mask) + ink_level * mask
    img = img * (1 - line) + rng.uniform(0, 20) * line
    img = cv2.resize(img, (CAPTCHA_SIZE[1], CAPTCHA_SIZE[0]), interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(1.5, 4.5)
    if sigma > 0.5:
        img = img + rng.normal(0, sigma, size=img.shape).astype(np.float32)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    grey = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2), [(a / _SS, b / _SS) for a, b in boxes]


# ----------------------------------------------------------------------------------------------
# The held-out split of the real captchas

CAPTCHA_TEST_FRACTION = 0.3
CAPTCHA_SPLIT_SALT = "captcha-test"


def is_captcha_test(name: str, fraction: float = CAPTCHA_TEST_FRACTION, salt: str = CAPTCHA_SPLIT_SALT) -> bool:
    """Whether a real captcha file (by its file name) is in the held-out test split.

    sha1(f"{salt}:{name}"), first 8 bytes as a fraction of 2**64, below ``fraction``: test.
    """
    digest = hashlib.sha1(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def captcha_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(train, test) image paths of a real captcha folder, in name order, by ``is_captcha_test``."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    test = [p for p in paths if is_captcha_test(p.name)]
    train = [p for p in paths if not is_captcha_test(p.name)]
    return train, test
