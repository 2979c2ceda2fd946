"""First-run latency: an empty workspace, `streamlit run app/main.py`, until Worst predictions shows its gallery.

    python bench/first_run.py [--runs 1]

Drives Debian's Chromium with playwright. Each run starts from a new empty workspace, so it includes
generating the embedded synthetic test set and scoring it with the demo checkpoint. A second, warm
launch on the same workspace is timed too (scores come from the on-disk cache). Goal: cold <= 30 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]
GALLERY = '[data-testid="stMain"] [data-testid="stImage"] img'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_launch(workspace: Path) -> tuple[float, float]:
    """Seconds from server start to a healthy server, and to the Worst-predictions gallery."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "PLATELENS_WORKSPACE": str(workspace)}
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        healthy = time.perf_counter() - start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/worst")
            page.wait_for_selector(GALLERY, timeout=300_000)
            gallery = time.perf_counter() - start
            browser.close()
        return healthy, gallery
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    """Time cold and warm launches and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Path(tmp) / "workspace"
            rows.append((f"cold #{i + 1} (empty workspace)", *time_launch(workspace)))
            rows.append((f"warm #{i + 1} (same workspace)", *time_launch(workspace)))
    print(f"{'launch':<32} {'server up s':>12} {'gallery s':>10}")
    for name, healthy, gallery in rows:
        print(f"{name:<32} {healthy:>12.1f} {gallery:>10.1f}")
    print("goal: cold gallery <= 30 s")


if __name__ == "__main__":
    main()
