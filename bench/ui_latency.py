"""Dashboard latency on a 100,000-row score frame, measured with Streamlit's AppTest (median of runs).

    python bench/ui_latency.py [--rows 100000] [--images 1000] [--repeats 5]

Setup (once, cached in a temporary workspace): synthetic crops, a JSON manifest that lists them over and
over up to --rows entries, and its score frame with the demo checkpoint. Then, with warm caches:
- first render of each page in a new session (goal <= 1.0 s);
- a filter change on Worst predictions (goal <= 0.3 s);
- choosing a confusion pair (goal <= 0.3 s);
- one slider change on Augmentations, re-rendering 8 draws with predictions (goal <= 0.15 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
PAGES = ["overview", "worst", "confusions", "augmentations", "train", "compare"]


def make_manifest(folder: Path, rows: int, images: int) -> Path:
    """A manifest of ``rows`` entries cycling over ``images`` synthetic crops.

    Repeats are hard links (``rows/NNNNNN.png``): the same pixels under distinct file names, since a
    manifest that lists one file twice has the repeat skipped.
    """
    from ocr_core.data import synth

    paths = synth.generate(folder / "crops", images, seed=4242, styles=("ccpd", "ccpd-green"))
    links = folder / "rows"
    links.mkdir(exist_ok=True)
    entries = []
    for i in range(rows):
        path = paths[i % len(paths)]
        link = links / f"{i:06d}.png"
        if not link.exists():
            os.link(path, link)
        entries.append({"file": f"rows/{link.name}", "text": path.stem.split("-", 1)[1]})
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return manifest


def session(manifest: Path):
    """A new AppTest session with the manifest picked in the sidebar."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=1200)
    at.run()
    at.sidebar.selectbox(key="dataset").set_value("__other__").run()
    at.sidebar.text_input(key="dataset_path").set_value(str(manifest)).run()
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


def main() -> None:
    """Build the frame, warm the caches, time each interaction and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLATELENS_WORKSPACE"] = str(Path(tmp) / "workspace")
        os.environ["PLATELENS_DATA_ROOTS"] = tmp  # the manifest lives here, outside the default roots
        manifest = make_manifest(Path(tmp), args.rows, args.images)
        start = time.perf_counter()
        warm = session(manifest)  # decodes and scores the manifest once; later sessions hit the caches
        setup = time.perf_counter() - start
        for page in PAGES:
            warm.switch_page(f"../pages/{page}.py").run()
            assert not warm.exception, (page, warm.exception)

        rows: list[tuple[str, float, float]] = []
        for page in PAGES:
            def first_render(page: str = page) -> float:
                at = session(manifest)
                return timed(lambda: at.switch_page(f"../pages/{page}.py").run())
            rows.append((f"first render: {page}", median_of(args.repeats, first_render), 1.0))

        at = session(manifest)
        at.switch_page("../pages/worst.py").run()
        length = alternating([8], [7])
        rows.append(("filter change (Worst predictions)", median_of(args.repeats, lambda: timed(
            lambda: at.multiselect(key="worst_lengths").set_value(length()).run())), 0.3))

        at = session(manifest)
        at.switch_page("../pages/confusions.py").run()
        labels = at.selectbox(key="confusion_pair").options[1:3]  # formatted "true → pred"
        pair = alternating(*(tuple(label.split(" → ")) for label in labels))
        rows.append(("choose a confusion pair", median_of(args.repeats, lambda: timed(
            lambda: at.selectbox(key="confusion_pair").set_value(pair()).run())), 0.3))

        at = session(manifest)
        at.switch_page("../pages/augmentations.py").run()
        at.slider(key="aug_worst_count").set_value(2).run()  # 2 samples x 4 draws = 8 predictions
        p = alternating(0.7, 0.3)
        rows.append(("slider change (Augmentations, 8 draws)", median_of(args.repeats, lambda: timed(
            lambda: at.slider(key="aug:Perspective:p").set_value(p()).run())), 0.15))

    print(f"rows={args.rows:,} images={args.images} repeats={args.repeats} (setup: decode + score {setup:.0f} s)")
    print(f"{'interaction':<44} {'median s':>9} {'goal s':>7} {'met':>4}")
    for name, seconds, goal in rows:
        print(f"{name:<44} {seconds:>9.3f} {goal:>7.2f} {'yes' if seconds <= goal else 'no':>4}")


if __name__ == "__main__":
    main()
