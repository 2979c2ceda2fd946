"""Peak memory of a real ``streamlit run`` server holding a large score frame, driven by a browser.

    python bench/server_rss.py [--rows 1000000] [--images 2000]

The same set-up as ``bench/ui_latency.py`` (a manifest of hard links and both checkpoints' tiled score
frames in the app's score cache; nothing is scored). A headless Chromium session picks the manifest in
the sidebar, then opens every page through the sidebar navigation, Compare last (A = demo.pt, B =
baseline.pt), waiting for each run to finish. Reports the server process's peak resident memory
(VmHWM from /proc) and the seconds each page took on this first, cold visit. Needs Chromium and playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from concurrent_users import CHROMIUM, MAIN, errors_on, peak_rss_mb, pick_dataset, start_server, wait_idle

TITLES = ["Overview", "Worst predictions", "Review labels", "Confusions", "Worst slices", "Error map",
          "Augmentations", "Train", "Robustness", "Compare"]


def main() -> None:
    """Set up, drive one browser session over every page, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8597)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PLATELENS_WORKSPACE=str(Path(tmp) / "workspace"), PLATELENS_DATA_ROOTS=tmp)
        child = subprocess.run([sys.executable, str(Path(__file__).with_name("ui_latency.py")), "--rows",
                                str(args.rows), "--images", str(args.images), "--set-up", tmp],
                               check=True, capture_output=True, text=True, env=env)
        manifest = Path(json.loads(child.stdout.strip().splitlines()[-1])["manifest"])
        scores = sorted((Path(tmp) / "workspace" / "scores").glob("*.parquet"))
        server = start_server(Path(tmp) / "workspace", Path(tmp), args.port)
        visits: list[tuple[str, float]] = []
        errors = 0
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                page.goto(f"http://127.0.0.1:{args.port}/worst", timeout=300_000)
                page.locator(MAIN).get_by_text("samples match").first.wait_for(timeout=600_000)
                start = time.perf_counter()
                pick_dataset(page, manifest, timeout_ms=1_800_000)
                visits.append(("pick the manifest (Worst predictions, cold)", time.perf_counter() - start))
                for title in TITLES:
                    start = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
                    wait_idle(page, 1_800_000)
                    visits.append((f"{title} (first visit)", time.perf_counter() - start))
                    errors += errors_on(page)
                browser.close()
            rss = peak_rss_mb(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        # The first page load scores the default (embedded) dataset; the manifest must not be scored again.
        added = set((Path(tmp) / "workspace" / "scores").glob("*.parquet")) - set(scores)
        rescored = [p for p in added
                    if json.loads(p.with_suffix(".json").read_text(encoding="utf-8")).get("n") == args.rows]
    print(f"rows={args.rows:,} distinct crops={args.images:,}; manifest rescored: {'yes' if rescored else 'no'}; "
          f"errors shown: {errors}")
    print(f"{'step (one browser session, cold caches)':<48} {'seconds':>8}")
    for name, seconds in visits:
        print(f"{name:<48} {seconds:>8.1f}")
    print(f"{'server peak RSS, GiB (VmHWM; goal <= 4)':<48} {rss / 1024:>8.2f}")


if __name__ == "__main__":
    main()
