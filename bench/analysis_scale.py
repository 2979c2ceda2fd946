"""The analysis functions the pages call, at a million rows: the former row-by-row code against today's.

    python bench/analysis_scale.py [--rows 1000000] [--wrong 0.15] [--repeats 3]

The frame is random but realistic for a CCPD-sized test set: distinct 7- and 8-character plates (province
glyph first), ``--wrong`` of them misread by one substitution, insertion, deletion or doubled character,
written to Parquet and read back as the app reads a cached score frame (Arrow-backed strings). The former
implementations are the reference copies in tests/test_analysis_scale.py. Median seconds of the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ocr_core import analysis
from ocr_core.analysis import PROVINCE_GLYPHS
from ocr_core.frame import build_frame

ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def plate_frame(n: int, wrong: float, seed: int = 0) -> pd.DataFrame:
    """A score frame of ``n`` random plates, ``wrong`` of them misread."""
    rng = np.random.default_rng(seed)
    provinces = np.array(list(PROVINCE_GLYPHS[:31]))
    alnum = np.array(list(ALNUM))
    lengths = np.where(rng.random(n) < 0.2, 8, 7)
    body = alnum[rng.integers(0, len(alnum), (n, 7))]
    first = provinces[rng.integers(0, len(provinces), n)]
    labels = [first[i] + "".join(body[i, :lengths[i] - 1]) for i in range(n)]
    preds = list(labels)
    bad = np.nonzero(rng.random(n) < wrong)[0]
    kinds, where = rng.integers(0, 4, len(bad)), rng.random(len(bad))
    chars = alnum[rng.integers(0, len(alnum), len(bad))]
    for j, i in enumerate(bad):
        t, k, c = labels[i], int(where[j] * len(labels[i])), chars[j]
        preds[i] = (t[:k] + c + t[k + 1:], t[:k] + c + t[k:], t[:k] + t[k + 1:], t[:k] + c + c + t[k + 2:])[kinds[j]]
    table = pd.DataFrame({"path": [f"/data/rows/{i:07d}.png" for i in range(n)], "label": labels, "pred": preds,
                          "confidence": rng.random(n)})
    return build_frame(table)


def seconds(repeats: int, work: Callable[[], object]) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Build the frame, time both implementations of each function, print the table."""
    import test_analysis_scale as old

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--wrong", type=float, default=0.15)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plate_frame(args.rows, args.wrong).to_parquet(Path(tmp) / "frame.parquet", index=False)
        frame = pd.read_parquet(Path(tmp) / "frame.parquet")
    # B: frame A with a third of its misreadings fixed and as many right readings broken.
    rng = np.random.default_rng(1)
    flip = rng.random(len(frame)) < 0.05
    pred_b = np.where(flip, frame["label"].to_numpy(object), frame["pred"].to_numpy(object))
    other = frame.assign(pred=pred_b, correct=pred_b == frame["label"].to_numpy(object))
    edits = analysis.edit_table(frame)
    pairs = [
        ("edit_table", lambda: old.old_edit_table(frame), lambda: analysis.edit_table(frame)),
        ("confusion_table", lambda: old.old_confusion_table(frame, edits),
         lambda: analysis.confusion_table(frame, edits)),
        ("position_accuracy", lambda: old.old_position_accuracy(frame), lambda: analysis.position_accuracy(frame)),
        ("repeats (doubled characters)", lambda: old.old_repeats(frame["label"]),
         lambda: analysis.repeats(frame["label"])),
        ("is_plate_domain", lambda: old.old_is_plate_domain(frame["label"].tolist()),
         lambda: analysis.is_plate_domain(frame["label"].tolist())),
        ("compare_frames (Compare's join)", lambda: old.old_compare_frames(frame, other),
         lambda: analysis.compare_frames(frame, other)),
    ]
    print(f"rows={len(frame):,} misread={int((~frame['correct']).sum()):,} edits={len(edits):,} "
          f"repeats={args.repeats} (median s)")
    print(f"{'function':<34} {'before s':>9} {'now s':>7} {'speed-up':>9}")
    for name, before, now in pairs:
        b, n = seconds(args.repeats, before), seconds(args.repeats, now)
        print(f"{name:<34} {b:>9.2f} {n:>7.2f} {b / n:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
