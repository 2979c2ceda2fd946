"""A quick screen for renderer changes to the province glyph: a small classifier trained from scratch on
the province region of a renderer variant's plates, read on the real crops.

    python bench/province_proxy.py [VARIANT ...] [--count 40000] [--seeds 2] [--first-seed 0]
                                   [--epochs 6] [--width 16] [--data-seed 7001]
    python bench/province_proxy.py VARIANT --write-set DIR --count 12000 --data-seed 701

A renderer change is otherwise measured by training the CRNN (an hour from scratch on 2 cores, and a
seed moves it by several points). Here each variant renders --count ccpd + ccpd-green plates (uniform
provinces), resizes them to the model's 128x32 input (cubic, as the demo reads) and keeps the left 40
columns: the province glyph and the start of the letter. A five-layer CNN learns the 31 provinces from
them (--epochs, one-cycle AdamW, 1-2 px sideways jitter) once per seed, and reads the same region of the
297 real crops. It prints, per seed, the accuracy on 2,000 fresh plates of the variant, on the real
train half (the half to decide on) and the validation half, then the mean over the seeds.

VARIANT is ``shipped`` (today's renderer) or parts joined by ``+``:
  fills=A,B,...   the sizes the province glyph takes in its slot, drawn uniformly (shipped: 0.86,0.93,1.0)
  cjk-dilate=W.H  every CJK glyph dilated by a W x H px rectangle at the 160 px reference height, in
                  place of its stroke weight's erosion
  cjk-erode=W.H   the same, eroded
  cjk-plain       Noto Sans CJK Bold as it is, without the weight's erosion
  cjk-monoline=R  every CJK glyph redrawn with strokes of one width: the morphological skeleton of Noto
                  Bold dilated by a disc of radius R px (at the 160 px reference height), as plate
                  lettering has no thick and thin strokes (that skeleton is broken into pieces, with spurs)
  cjk-thin=R[,R2,R3]
                  the same with a connected skeleton (scikit-image's thinning of the glyph, one pixel wide)
                  dilated by a disc of radius R px; three radii give each stroke weight its own (bold,
                  plate, light). The GA 36 plate font's 10 mm strokes on its 90 mm glyph are R 8.4
  cjk-weights=X,Y,Z
                  the three stroke weights' morphs (bold 25% of plates, plate 50%, light 25%), each 0 (as
                  drawn), dW.H (dilated) or eW.H (eroded); the shipped renderer is 0,e1.3,e3.5
  cjk-font=PATH[@WGHT],...
                  every CJK glyph drawn from another font file (a collection's first font; @WGHT sets a
                  variable font's weight axis) that has the 31 provinces, with the weights' erosion unless
                  a morph is given too; with several fonts, the plate's stroke weight picks one (weight
                  w takes font w mod n: two fonts share the plates about half and half)
  downscale=LOW,HIGH
                  the crop is resized from a working image LOW-HIGH times its size (drawn per plate)
                  instead of the renderer's 2 times: below 2 the crops come out softer, above 2 crisper
                  and aliased by the linear resize (it changes every glyph and the later draws)
  cut-left=D      on half the crops the crop's left edge cuts into the plate by up to D of the crop width
                  (drawn uniformly), and a glyph needs only half its box inside the crop instead of 0.9: the
                  real crops' province glyph starts at their edge in half of them (bench/province_glyphs.py)
  warm=P          on P of the crops, a strong warm colour cast and less light after the renderer's own
                  photometry (sodium street lamps at about 2,000 K or tungsten light at 2,700-3,200 K, seen
                  with a daylight white balance): red x1.1-1.7, green x0.85-1.15, blue x0.2-0.7, exposure
                  x0.45-0.9. The renderer's white balance moves each channel by about 7% only
Otherwise Latin glyphs and every other draw stay as they are. 1.5-2.5 min to render 40,000 plates on 2
cores and 2-3 min per seed. Exits 0 with a note when ../shared/data is absent. --write-set writes a variant's
plates as a data set instead, so that a screened variant can be tried in the CRNN (`python -m ocr_core
train --data DIR ...`); it needs no real crops.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from fontTools.ttLib import TTFont, TTLibError
from PIL import ImageFont
from real_plates import VAL_FRACTION, real_listing, skipped_line
from torch import nn
from tqdm import tqdm

from ocr_core.data import synth
from ocr_core.data.image_io import read_rgb, resize_to_input

INPUT_H, INPUT_W, REGION_W = 32, 128, 40
STYLES = ("ccpd", "ccpd-green")
FRESH = 2000  # fresh plates of each variant, rendered with --data-seed + 500


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """Lantuejoul's morphological skeleton of a uint8 mask (0/1): what each erosion step leaves unopened."""
    rest = (mask > 127).astype(np.uint8)
    skeleton = np.zeros_like(rest)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    while rest.any():
        eroded = cv2.erode(rest, cross)
        skeleton |= rest & (1 - cv2.dilate(eroded, cross))
        rest = eroded
    return skeleton


def _thinned(mask: np.ndarray) -> np.ndarray:
    """A connected, one pixel wide skeleton (uint8 0/1) of a uint8 mask, by scikit-image's thinning."""
    from skimage.morphology import skeletonize  # only this variant needs scikit-image

    return skeletonize(mask > 127).astype(np.uint8)


def _font_ink(spec: str, char: str) -> np.ndarray:
    """A glyph's ink at the reference size from a font file spec ``PATH`` or ``PATH@WGHT`` (a variable font's
    weight axis), cropped to its bounding box as synth draws Noto's."""
    path, _, wght = spec.partition("@")
    return synth.font_ink(_load_font(path, int(wght) if wght else 0), char)


@lru_cache(maxsize=8)
def _covers_provinces(path: str) -> bool:
    """Whether path is a font file (a collection's first font) with a glyph for each of the 31 provinces."""
    try:
        cmap = TTFont(path, fontNumber=0, lazy=True).getBestCmap()
    except (OSError, TTLibError):  # no such file, or not a font
        return False
    return all(ord(char) in cmap for char in synth.PROVINCES)


@lru_cache(maxsize=8)
def _load_font(path: str, wght: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(path, size=synth._GLYPH_FONT_SIZE)
    if wght:
        font.set_variation_by_axes([wght])
    return font


Morph = tuple[str, int, int]  # ("dilate" | "erode" | "plain" | "monoline" | "thin", width, height) at 160 px


def _glyph_master_with(morphs: tuple[Morph, ...] | None,
                       fonts: tuple[str, ...] = ()) -> Callable[[str, int, int, int], np.ndarray]:
    """synth._glyph_master, with CJK glyphs changed: drawn from fonts (the stroke weight w picks
    fonts[w % len(fonts)], so two fonts share the plates about half and half) and changed by morphs[w] in
    place of the weight's erosion (morphs None keeps the erosion)."""
    shipped = synth._glyph_master

    @lru_cache(maxsize=1024)
    def master(char: str, ref_w: int, weight: int, font: int) -> np.ndarray:
        if ord(char) < 0x2E80:
            return shipped(char, ref_w, weight, font)
        ink = _font_ink(fonts[weight % len(fonts)], char) if fonts else synth._glyph_ink(char)
        glyph = cv2.resize(ink, (ref_w, synth._GLYPH_REF_H), interpolation=cv2.INTER_AREA)
        morph = morphs[weight] if morphs is not None else None
        if morph is None:
            kernel = synth._CJK_WEIGHT_KERNELS[weight]
            if kernel is not None:
                glyph = cv2.erode(glyph, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        elif morph[0] in ("monoline", "thin"):
            skeleton = _skeleton(glyph) if morph[0] == "monoline" else _thinned(glyph)
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * morph[1] + 1, 2 * morph[1] + 1))
            glyph = cv2.GaussianBlur(cv2.dilate(skeleton * 255, disc), (0, 0), 1.5)
        elif morph[0] != "plain":
            kernel = cv2.getStructuringElement(cv2.MORPH_RECT, morph[1:])
            glyph = cv2.dilate(glyph, kernel) if morph[0] == "dilate" else cv2.erode(glyph, kernel)
        glyph.flags.writeable = False
        return glyph

    return master


class Variant(NamedTuple):
    """A renderer variant: the province glyph's fills, CJK morphs per stroke weight, CJK fonts, the
    downscale range, how deep the crop's left edge may cut into the plate and the share of crops with a
    warm cast (0: as shipped)."""

    fills: tuple[float, ...]
    morphs: tuple[Morph, ...] | None
    fonts: tuple[str, ...]
    downscale: tuple[float, float] | None
    cut_left: float = 0.0
    warm: float = 0.0


def _weight_morph(text: str) -> Morph:
    """One stroke weight's morph of cjk-weights: 0 (as drawn), dW.H (dilated) or eW.H (eroded)."""
    if text == "0":
        return ("plain", 0, 0)
    w, h = (int(v) for v in text[1:].split("."))
    if text[:1] not in ("d", "e") or w < 1 or h < 1:
        raise ValueError
    return ("dilate" if text[0] == "d" else "erode", w, h)


def parse_variant(name: str) -> Variant:
    """The Variant a VARIANT name describes; ValueError names a bad part."""
    fills: tuple[float, ...] = synth._PROVINCE_FILLS
    morphs: tuple[Morph, ...] | None = None
    weights = len(synth.GLYPH_WEIGHTS)
    fonts: tuple[str, ...] = ()
    downscale: tuple[float, float] | None = None
    cut_left = 0.0
    warm = 0.0
    for part in name.split("+"):
        key, _, value = part.partition("=")
        try:
            if part == "shipped":
                continue
            if key == "fills":
                fills = tuple(float(v) for v in value.split(","))
                if not all(0.3 <= f <= 1.3 for f in fills):
                    raise ValueError
            elif key in ("cjk-dilate", "cjk-erode"):
                w, h = (int(v) for v in value.split("."))
                if w < 1 or h < 1:
                    raise ValueError
                morphs = ((key[4:], w, h),) * weights
            elif key == "cjk-monoline":
                radius = int(value)
                if radius < 1:
                    raise ValueError
                morphs = (("monoline", radius, radius),) * weights
            elif key == "cjk-thin":
                radii = [int(v) for v in value.split(",")]
                if len(radii) not in (1, weights) or min(radii) < 1:
                    raise ValueError
                morphs = tuple(("thin", r, r) for r in radii * (weights // len(radii)))
            elif part == "cjk-plain":
                morphs = (("plain", 0, 0),) * weights
            elif key == "cjk-weights":
                morphs = tuple(_weight_morph(v) for v in value.split(","))
                if len(morphs) != weights:
                    raise ValueError
            elif key == "cjk-font":
                fonts = tuple(value.split(","))
                for spec in fonts:
                    path, _, wght = spec.partition("@")
                    if int(wght or 0) < 0 or not _covers_provinces(path):
                        raise ValueError
            elif key == "downscale":
                low, high = (float(v) for v in value.split(","))
                if not 1.0 <= low <= high <= 6.0:
                    raise ValueError
                downscale = (low, high)
            elif key == "cut-left":
                cut_left = float(value)
                if not 0.0 < cut_left <= 0.2:
                    raise ValueError
            elif key == "warm":
                warm = float(value)
                if not 0.0 < warm <= 1.0:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"variant part {part!r} is not one of fills=A,B,..., cjk-dilate=W.H, "
                             "cjk-erode=W.H, cjk-monoline=R, cjk-thin=R[,R2,R3], cjk-plain, "
                             "cjk-weights=X,Y,Z, cjk-font=PATH[@WGHT],... (font files with the 31 "
                             "provinces), downscale=LOW,HIGH (1-6), cut-left=D (0-0.2), warm=P (0-1) "
                             "or shipped (see --help)") from None
    return Variant(fills, morphs, fonts, downscale, cut_left, warm)


def _degrade_downscaled(low: float, high: float) -> Callable[..., np.ndarray]:
    """synth._degrade with the photo-to-crop factor drawn from [low, high] instead of the renderer's 2: the
    plate is warped into a working image that much larger than the crop, and resized down as shipped
    (area averaging on 40% of the crops, otherwise linear, which aliases beyond a factor of 2)."""
    shipped = synth._degrade

    def degrade(canvas: np.ndarray, matrix: np.ndarray, work_size: tuple[int, int], out_size: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
        scale = rng.uniform(low, high) / 2.0
        scaled = np.diag([scale, scale, 1.0]) @ matrix
        size = (round(work_size[0] * scale), round(work_size[1] * scale))
        return shipped(canvas, scaled, size, out_size, rng)

    return degrade


CUT_LEFT_SHARE = 0.5  # cut-left: the share of crops whose left edge cuts into the plate
CUT_MIN_INSIDE = 0.5  # cut-left: the share of each glyph's box that has to be inside the crop


def _plate_quad_cut_left(depth: float) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    """synth._plate_quad, then on CUT_LEFT_SHARE of the crops the plate's left corners moved out of the crop
    by up to depth of its width: the crop's left edge cuts into the plate."""
    shipped = synth._plate_quad

    def plate_quad(out_w: int, out_h: int, rng: np.random.Generator) -> np.ndarray:
        quad = shipped(out_w, out_h, rng)
        if rng.random() < CUT_LEFT_SHARE:
            quad[[0, 3], 0] -= np.float32(rng.uniform(0.0, depth) * out_w)
        return quad

    return plate_quad


WARM_GAINS = ((1.1, 1.7), (0.85, 1.15), (0.2, 0.7))  # warm: the red, green and blue gains' ranges
WARM_EXPOSURE = (0.45, 0.9)


def _photometric_warm(share: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """synth._photometric, then on share of the crops a warm cast and less light (the warm variant)."""
    shipped = synth._photometric

    def photometric(work: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = shipped(work, rng)
        if rng.random() >= share:
            return out
        gains = np.array([rng.uniform(*g) for g in WARM_GAINS], np.float32)
        gains *= np.float32(rng.uniform(*WARM_EXPOSURE))
        return np.clip(out.astype(np.float32) * gains, 0, 255).astype(np.uint8)

    return photometric


@contextmanager
def renderer_variant(name: str) -> Iterator[None]:
    """Patch ocr_core.data.synth to draw VARIANT name inside the block, and restore it after."""
    variant = parse_variant(name)
    saved = (synth._PROVINCE_FILLS, synth._glyph_master, synth._degrade, synth._plate_quad,
             synth.MIN_GLYPH_INSIDE, synth._photometric)
    synth._PROVINCE_FILLS = variant.fills
    if variant.morphs is not None or variant.fonts:
        synth._glyph_master = _glyph_master_with(variant.morphs, variant.fonts)  # type: ignore[assignment]
    if variant.downscale is not None:
        synth._degrade = _degrade_downscaled(*variant.downscale)
    if variant.cut_left:
        synth._plate_quad = _plate_quad_cut_left(variant.cut_left)
        synth.MIN_GLYPH_INSIDE = CUT_MIN_INSIDE
    if variant.warm:
        synth._photometric = _photometric_warm(variant.warm)
    synth._glyph_mask.cache_clear()
    try:
        yield
    finally:
        (synth._PROVINCE_FILLS, synth._glyph_master, synth._degrade, synth._plate_quad,
         synth.MIN_GLYPH_INSIDE, synth._photometric) = saved
        synth._glyph_mask.cache_clear()


def province_region(rgb: np.ndarray) -> np.ndarray:
    """The left REGION_W columns of a crop at the model's input size (cubic enlarging, as the demo reads)."""
    return resize_to_input(rgb, INPUT_H, INPUT_W, "cubic")[:, :REGION_W]


def _render_part(job: tuple[str, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    variant, seed, start, stop = job
    regions, provinces = [], []
    with renderer_variant(variant):
        for index in range(start, stop):
            label, rgb = synth.render_sample(seed, index, STYLES)
            regions.append(province_region(rgb))
            provinces.append(synth.PROVINCES.index(label[0]))
    return np.stack(regions), np.array(provinces)


def render_regions(variant: str, seed: int, count: int, processes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 40, 3) uint8 province regions and (N,) province indices of count plates of variant."""
    chunk = max(1, -(-count // (processes * 4)))
    jobs = [(variant, seed, start, min(count, start + chunk)) for start in range(0, count, chunk)]
    if processes <= 1:
        parts = [_render_part(job) for job in jobs]
    else:
        with Pool(processes) as pool:
            parts = pool.map(_render_part, jobs)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def classifier(width: int) -> nn.Module:
    """Five 3x3 conv layers (width, width, 2w, 2w, 4w), three 2x2 poolings, a linear layer to 31 provinces."""
    def conv(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *conv(3, width), *conv(width, width), nn.MaxPool2d(2),
        *conv(width, 2 * width), *conv(2 * width, 2 * width), nn.MaxPool2d(2),
        *conv(2 * width, 4 * width), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(4 * width * (INPUT_H // 8) * (REGION_W // 8), len(synth.PROVINCES)),
    )


def _as_input(regions: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(regions).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def train_and_read(regions: np.ndarray, provinces: np.ndarray, reads: list[np.ndarray], seed: int,
                   epochs: int, width: int, batch_size: int = 256) -> list[np.ndarray]:
    """Train the classifier from scratch on (regions, provinces); return its readings of each of reads."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = classifier(width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * -(-len(regions) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    inputs, targets = _as_input(regions), torch.from_numpy(provinces)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(regions))
        for start in range(0, len(regions), batch_size):
            rows = torch.from_numpy(order[start : start + batch_size])
            # Real crops start a little before or inside the plate, so the region moves by up to 2 px.
            batch = torch.roll(inputs[rows], int(rng.integers(-2, 3)), dims=3)
            loss = nn.functional.cross_entropy(model(batch), targets[rows], label_smoothing=0.05)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return [torch.cat([model(_as_input(part[s : s + 512])).argmax(1)
                           for s in range(0, len(part), 512)]).numpy() for part in reads]


def write_set(variant: str, out_dir: Path, count: int, seed: int) -> int:
    """Write count plates of variant (renderer seed) into out_dir with synth.generate, as `synth` does."""
    with renderer_variant(variant), tqdm(total=count, desc=f"{variant} -> {out_dir}", unit="plate") as bar:
        synth.generate(out_dir, count, seed, STYLES, progress=lambda done, total: bar.update(done - bar.n))
    print(f"{count} plates of {variant} (seed {seed}) in {out_dir}")
    return 0


def main() -> int:
    """Render, train and read each variant once per seed; print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=["shipped"], metavar="VARIANT")
    parser.add_argument("--count", type=int, default=40000, help="training plates a variant (default 40000)")
    parser.add_argument("--seeds", type=int, default=2, help="classifiers trained per variant (default 2)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=int, default=16, help="channels of the first layers (default 16)")
    parser.add_argument("--data-seed", type=int, default=7001, help="renderer seed of the training plates")
    parser.add_argument("--write-set", metavar="DIR", type=Path,
                        help="instead of screening, write --count ccpd + ccpd-green plates of the one "
                             "VARIANT (renderer seed --data-seed) into DIR as a data set for `python -m "
                             "ocr_core train`")
    args = parser.parse_args()
    try:
        for variant in args.variants:
            parse_variant(variant)
    except ValueError as exc:
        parser.error(str(exc))
    if args.count < 256 or args.seeds < 1 or args.epochs < 1 or args.width < 1:
        parser.error("--count must be at least 256, and --seeds, --epochs and --width at least 1")
    if args.first_seed < 0 or args.data_seed < 0:
        parser.error("--first-seed and --data-seed must be zero or more")
    if args.write_set is not None:
        if len(args.variants) != 1:
            parser.error("--write-set writes one VARIANT; name exactly one")
        try:
            return write_set(args.variants[0], args.write_set, args.count, args.data_seed)
        except OSError as exc:
            parser.error(f"could not write the data set to {args.write_set} ({exc.strerror or exc}); "
                         "pass a new or writable folder")
    skipped = skipped_line()
    if skipped:
        print(skipped)
        return 0
    torch.set_num_threads(2)
    listing, val_paths = real_listing()
    real = np.stack([province_region(read_rgb(s.path)) for s in listing.samples])
    real_provinces = np.array([synth.PROVINCES.index(s.label[0]) for s in listing.samples])
    in_val = np.array([s.path in val_paths for s in listing.samples])
    in_train = ~in_val
    print(f"province glyph read by a {args.width}-wide classifier from the left {REGION_W} columns at "
          f"{INPUT_H}x{INPUT_W}; {args.count} training plates a variant, {args.epochs} epochs; real crops "
          f"split {1 - VAL_FRACTION:.2f}/{VAL_FRACTION:.2f} by split_by_hash")
    print(f"{'variant':32s} {'seed':>4s}  {'fresh':>6s}  {'real train half (n)':>20s}  {'val half':>8s}  "
          f"{'time':>6s}")
    for variant in args.variants:
        started = time.monotonic()
        regions, provinces = render_regions(variant, args.data_seed, args.count)
        fresh, fresh_provinces = render_regions(variant, args.data_seed + 500, FRESH)
        right = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            fresh_read, real_read = train_and_read(regions, provinces, [fresh, real], seed, args.epochs,
                                                   args.width)
            ok = real_read == real_provinces
            right.append(ok)
            print(f"{variant:32s} {seed:4d}  {(fresh_read == fresh_provinces).mean():6.4f}  "
                  f"{ok[in_train].mean():13.4f} ({ok[in_train].sum():3d})  {ok[in_val].mean():8.4f}  "
                  f"{time.monotonic() - started:5.0f}s", flush=True)
        every = np.stack(right)
        print(f"{variant:32s} {'mean':>4s}  {'':6s}  {every[:, in_train].mean():13.4f} "
              f"({every[:, in_train].sum(1).mean():5.1f})  {every[:, in_val].mean():8.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
