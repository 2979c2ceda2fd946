"""Dashboard latency on a large score frame, measured with Streamlit's AppTest (median of runs).

    python bench/ui_latency.py [--rows 1000000] [--images 2000] [--repeats 5]

Set-up (in a child process, so that its memory is not counted as the app's): ``--images`` distinct
synthetic crops, a JSON manifest of ``--rows`` entries cycling over them through hard links (distinct
file names, the same pixels), and the score frames of the demo checkpoint and its shipped baseline. The
distinct crops are scored once per checkpoint and their frame is tiled over the rows (a crop that repeats
reads the same each time), then saved where the app looks for the score of that checkpoint on that
dataset (``score_cache_key``), so the app loads it and scores nothing; the bench checks that no score
file was added.

Then, with warm caches (one session opens every page first):
- first render of each page in a new session (goal <= 1.5 s);
- Compare with two checkpoints: a new session opens Compare, A = demo.pt, B = baseline.pt (goal <= 1 s);
- a filter change on Worst predictions (goal <= 0.3 s);
- choosing a confusion pair (goal <= 0.3 s);
- one slider change on Augmentations, re-rendering 8 draws with predictions (goal <= 0.15 s);
- peak RSS of this process, which runs the app through AppTest (goal <= 4 GiB; the set-up runs in a
  child process and is not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "app")]
MAIN = str(ROOT / "app" / "main.py")
PAGES = ["overview", "worst", "review", "confusions", "slices", "error_map", "augmentations", "train", "compare",
         "robustness"]
GiB = 1024**3


def make_manifest(folder: Path, rows: int, images: int, seed: int = 4242) -> Path:
    """A manifest of ``rows`` entries cycling over ``images`` synthetic crops (drawn with ``seed``).

    Repeats are hard links (``rows/NNNNNNN.png``): the same pixels under distinct file names, since a
    manifest that lists one file twice has the repeat skipped.
    """
    from ocr_core.data import synth

    paths = synth.generate(folder / "crops", images, seed=seed, styles=("ccpd", "ccpd-green"))
    links = folder / "rows"
    links.mkdir(exist_ok=True)
    entries = []
    for i in range(rows):
        path = paths[i % len(paths)]
        link = links / f"{i:07d}.png"
        if not link.exists():
            os.link(path, link)
        entries.append({"file": f"rows/{link.name}", "text": path.stem.split("-", 1)[1]})
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return manifest


def checkpoints() -> list[Path]:
    """A (the sidebar's default) and B (Compare's default when A is the demo)."""
    from ocr_core import workspace

    return [workspace.DEMO_CHECKPOINT, workspace.DEMO_CHECKPOINT.parent / "baseline.pt"]


def set_up(folder: Path, rows: int, images: int) -> dict:
    """Manifest and cached score frames of both checkpoints; returns what it did and how long it took."""
    import numpy as np
    import torch

    from ocr_core import workspace
    from ocr_core.checkpoint import freeze_for_inference
    from ocr_core.data.dataset import decode_listing
    from ocr_core.data.sources import SourceListing, list_source
    from ocr_core.onnx_io import load_any_model
    from ocr_core.roots import confine_listing
    from ocr_core.score import score_cache_key, score_dataset, write_frame_atomic

    start = time.perf_counter()
    manifest = make_manifest(folder, rows, images)
    made = time.perf_counter() - start
    listing = confine_listing(list_source(manifest))  # as the app lists it
    if len(listing.samples) != rows:
        raise SystemExit(f"the manifest lists {len(listing.samples)} samples, not {rows}")
    distinct = SourceListing(listing.spec, listing.kind, listing.samples[:images], [])
    tile = np.arange(rows) % images
    scored = 0.0
    for checkpoint in checkpoints():
        t0 = time.perf_counter()
        loaded = load_any_model(str(checkpoint))
        freeze_for_inference(loaded.model)
        data = decode_listing(distinct, loaded.input_size)
        with torch.inference_mode():
            frame = score_dataset(loaded, data, device=torch.device("cpu"))
        scored += time.perf_counter() - t0
        if len(frame) != images:
            raise SystemExit(f"{len(frame)} of the {images} distinct crops were scored")
        big = frame.iloc[tile].reset_index(drop=True)
        big["path"] = [s.path for s in listing.samples]
        big["sample"] = np.arange(rows, dtype=np.int32)
        if big["label"].tolist() != [s.label for s in listing.samples]:
            raise SystemExit("the tiled frame's labels do not follow the manifest")
        key = score_cache_key(checkpoint, listing)
        write_frame_atomic(big, workspace.scores_dir() / f"{key}.parquet",
                           meta={"checkpoint": str(checkpoint), "dataset": str(manifest), "n": rows,
                                 "tiled_from": images})
    return {"manifest": str(manifest), "links_s": made, "score_s": scored,
            "total_s": time.perf_counter() - start}


def session(manifest: Path):
    """A new AppTest session with the manifest picked in the sidebar."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=1200)
    # Picked before the first run, so that no session loads the default (embedded) dataset on its way.
    at.session_state["dataset"] = "__other__"
    at.session_state["dataset_path"] = str(manifest)
    at.run()
    assert at.sidebar.text_input(key="dataset_path").value == str(manifest)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def timed(action: Callable[[], object]) -> float:
    """Seconds one rerun takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """Median of ``repeats`` measurements."""
    return statistics.median(measure() for _ in range(repeats))


def alternating(a: object, b: object) -> Callable[[], object]:
    """A function returning a, b, a, b, ... so that every rerun is a real change."""
    state = {"next": a}

    def value() -> object:
        current = state["next"]
        state["next"] = b if current is a else a
        return current

    return value


def peak_rss() -> int:
    """Peak resident memory of this process, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check(at, what: str) -> None:
    """Fail loudly when a page raised or showed an error."""
    assert not at.exception, (what, at.exception)
    assert not at.error, (what, [e.value for e in at.error])


def measure(manifest: Path, repeats: int) -> list[tuple[str, float, float]]:
    """Every timed interaction as (name, median seconds, goal seconds)."""
    from ocr_core import workspace

    scores = workspace.scores_dir()
    before = sorted(p.name for p in scores.glob("*.parquet"))
    start = time.perf_counter()
    warm = session(manifest)  # loads both cached frames; later sessions hit the caches
    for page in PAGES:
        warm.switch_page(f"../pages/{page}.py").run()
        check(warm, page)
    warm_s = time.perf_counter() - start
    after = sorted(p.name for p in scores.glob("*.parquet"))
    if after != before:
        raise SystemExit(f"the app scored again instead of loading the cached frames: {before} -> {after}")
    print(f"warm-up (every page once, caches filled): {warm_s:.1f} s", flush=True)

    rows: list[tuple[str, float, float]] = []
    for page in PAGES:
        def first_render(page: str = page) -> float:
            at = session(manifest)
            seconds = timed(lambda: at.switch_page(f"../pages/{page}.py").run())
            check(at, page)
            return seconds
        rows.append((f"first render: {page}", median_of(repeats, first_render), 1.5))
        print(rows[-1], flush=True)

    baseline = str(checkpoints()[1])

    def compare() -> float:
        at = session(manifest)
        at.switch_page("../pages/compare.py").run()  # B starts empty unless A is the demo
        seconds = 0.0
        if at.selectbox(key="compare_b").value != baseline:
            seconds = timed(lambda: at.selectbox(key="compare_b").set_value(baseline).run())
        else:
            at = session(manifest)
            seconds = timed(lambda: at.switch_page("../pages/compare.py").run())
        check(at, "compare")
        shown = [m.label for m in at.metric]
        assert "Accuracy B" in shown, shown
        return seconds
    rows.append(("Compare, two checkpoints (B = baseline.pt)", median_of(repeats, compare), 1.0))
    print(rows[-1], flush=True)

    at = session(manifest)
    at.switch_page("../pages/worst.py").run()
    length = alternating([8], [7])
    rows.append(("filter change (Worst predictions)", median_of(repeats, lambda: timed(
        lambda: at.multiselect(key="worst_lengths").set_value(length()).run())), 0.3))
    check(at, "worst")

    at = session(manifest)
    at.switch_page("../pages/confusions.py").run()
    labels = at.selectbox(key="confusion_pair").options[1:3]  # formatted "true → pred"
    pair = alternating(*(tuple(label.split(" → ")) for label in labels))
    rows.append(("choose a confusion pair", median_of(repeats, lambda: timed(
        lambda: at.selectbox(key="confusion_pair").set_value(pair()).run())), 0.3))
    check(at, "confusions")

    at = session(manifest)
    at.switch_page("../pages/augmentations.py").run()
    at.slider(key="aug_worst_count").set_value(2).run()  # 2 samples x 4 draws = 8 predictions
    p = alternating(0.7, 0.3)
    rows.append(("slider change (Augmentations, 8 draws)", median_of(repeats, lambda: timed(
        lambda: at.slider(key="aug:Perspective:p").set_value(p()).run())), 0.15))
    check(at, "augmentations")
    return rows


def main() -> None:
    """Set up in a child process, warm the caches, time each interaction and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=2000, help="distinct crops behind the rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--set-up", metavar="DIR", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.set_up:
        print(json.dumps(set_up(Path(args.set_up), args.rows, args.images)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLATELENS_WORKSPACE"] = str(Path(tmp) / "workspace")
        os.environ["PLATELENS_DATA_ROOTS"] = tmp  # the manifest lives here, outside the default roots
        child = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--images", str(args.images),
                                "--set-up", tmp], check=True, capture_output=True, text=True)
        setup = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"set-up: {setup['total_s']:.0f} s (links and manifest {setup['links_s']:.0f} s, "
              f"scoring {args.images:,} distinct crops with 2 checkpoints {setup['score_s']:.0f} s)", flush=True)
        rss_before = peak_rss()
        rows = measure(Path(setup["manifest"]), args.repeats)
        rss = peak_rss()

    print(f"\nrows={args.rows:,} distinct crops={args.images:,} repeats={args.repeats} (AppTest, warm caches)")
    print(f"{'interaction':<44} {'median s':>9} {'goal s':>7} {'met':>4}")
    for name, seconds, goal in rows:
        print(f"{name:<44} {seconds:>9.3f} {goal:>7.2f} {'yes' if seconds <= goal else 'no':>4}")
    print(f"{'peak RSS, GiB (process running AppTest)':<44} {rss / GiB:>9.2f} {4.0:>7.2f} "
          f"{'yes' if rss <= 4 * GiB else 'no':>4}")
    print(f"(peak RSS before the app ran: {rss_before / GiB:.2f} GiB)")


if __name__ == "__main__":
    main()
