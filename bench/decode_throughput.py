"""Decoding throughput: files -> resized uint8 crops, by thread count, task size and header check.

    python bench/decode_throughput.py [--count 5000] [--threads 1,2,4] [--repeats 3] [--real ../shared/data/real-plates]

Three ways of running ``decode_listing`` on the same files, interleaved in each round:
``chunks``: what ``ocr_core`` does: each thread task decodes a run of ``DECODE_CHUNK`` crops, and a PNG's size
  is read from its IHDR chunk (every file's size is checked against ``MAX_PIXELS`` before it is decoded).
``per-image``: one thread task per crop, as ``ocr_core`` did before; a task's hand-over (future, queue, GIL
  switch) costs about as much as decoding a small crop.
``pillow``: chunks, but every header read by Pillow's parser, which holds the GIL, as ``ocr_core`` did
  before the IHDR read.
Timed on synthetic PNG crops and, when the folder exists, on the real JPEG crops (read several times over,
as many files as the synthetic set).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from real_plates import REAL_PLATES

from ocr_core.data import image_io, synth
from ocr_core.data.dataset import DECODE_CHUNK, decode_listing
from ocr_core.data.sources import SourceListing, list_source


def pillow_header_size(data: bytes) -> tuple[int, int] | None:
    """The size of any image from Pillow's header parser (the previous check)."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            return header.size
    except Exception:  # noqa: BLE001 - as in ocr_core: cv2 decides about what Pillow cannot read
        return None


@contextlib.contextmanager
def pillow_headers() -> Iterator[None]:
    """Within the block, ``ocr_core`` reads every image header through Pillow, as it did before."""
    original = image_io._header_size
    image_io._header_size = pillow_header_size
    try:
        yield
    finally:
        image_io._header_size = original


WAYS: dict[str, tuple[int, bool]] = {  # name: (chunk_size, Pillow headers)
    "chunks": (DECODE_CHUNK, False),
    "per-image": (1, False),
    "pillow": (DECODE_CHUNK, True),
}


def decode_seconds(listing: SourceListing, threads: int, chunk_size: int, pillow: bool) -> float:
    """Seconds of one ``decode_listing`` run, with every header read by Pillow when ``pillow`` is set."""
    with pillow_headers() if pillow else contextlib.nullcontext():
        start = time.perf_counter()
        decode_listing(listing, threads=threads, chunk_size=chunk_size)
        return time.perf_counter() - start


def main() -> None:
    """Print crops/s for each set, thread count and way."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--threads", default="1,2,4", help="comma-separated thread counts (default: 1,2,4)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--real", default=str(REAL_PLATES), help="a folder of real crops (skipped when absent)")
    args = parser.parse_args()
    try:
        thread_counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads must be comma-separated integers, not {args.threads!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "crops"
        synth.generate(folder, args.count, seed=777, styles=("ccpd", "ccpd-green"))
        sets = {f"synthetic PNG ({args.count:,})": list_source(folder)}
        if Path(args.real).is_dir():
            real = list_source(args.real)
            # The real set is small, so it is read several times over to time as many files as the synthetic one.
            rounds = max(1, args.count // len(real.samples))
            sets[f"real JPEG ({len(real.samples)}x{rounds})"] = dataclasses.replace(real, samples=real.samples * rounds)
        else:
            print(f"{args.real} not found: the real crops are skipped")
        print(f"repeats={args.repeats} (median crops/s; rounds interleave the ways)")
        print(f"{'set':<22} {'threads':>7} " + " ".join(f"{name:>10}" for name in WAYS)
              + f" {'chunks/per-image':>17} {'chunks/pillow':>14}")
        for set_name, listing in sets.items():
            decode_listing(listing)  # warm the page cache
            for threads in thread_counts:
                seconds: dict[str, list[float]] = {name: [] for name in WAYS}
                for _ in range(args.repeats):
                    for name, (chunk_size, pillow) in WAYS.items():
                        seconds[name].append(decode_seconds(listing, threads, chunk_size, pillow))
                rate = {name: len(listing.samples) / statistics.median(s) for name, s in seconds.items()}
                print(f"{set_name:<22} {threads:>7} " + " ".join(f"{rate[name]:>10.0f}" for name in WAYS)
                      + f" {rate['chunks'] / rate['per-image']:>17.2f} {rate['chunks'] / rate['pillow']:>14.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
