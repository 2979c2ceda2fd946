"""First-run latency: `streamlit run app/main.py`, then Worst predictions in headless Chromium.

    python bench/first_run.py [--runs 1]

Drives Debian's Chromium with playwright. Each run starts from a new empty workspace (cold: generating
the embedded synthetic test set and scoring it with the demo checkpoint), then restarts the server on the
same workspace (the scores come from the on-disk cache). On each server, a second browser session opens
the page once the first has its gallery (a warm server: nothing left to import or decode).

For every page load it reports:

- first paint: from opening the page to the sidebar's title and the page's heading both visible;
- gallery: from opening the page to the first crop of the Worst-predictions gallery;

and, for the first session of a server, the same two from the server's start (which adds the server's own
start-up). Goals: first paint <= 2 s on a warm server and <= 5 s from a cold start, before any scoring;
gallery from an empty workspace <= 30 s.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]
SIDEBAR_TITLE = '[data-testid="stSidebar"] h1'
HEADING = '[data-testid="stMain"] h1'
GALLERY = '[data-testid="stMain"] [data-testid="stImage"] img'


@dataclass
class Row:
    """One page load: seconds to the server being up, to first paint and to the gallery."""

    launch: str
    server_up: float | None  # from the server's start; None for a second session on a running server
    paint: float  # from opening the page
    gallery: float  # from opening the page
    since_start: tuple[float, float] | None  # (paint, gallery) from the server's start, first session only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _open(browser, url: str) -> tuple[float, float, float]:
    """Open the Worst-predictions page in a new session; (opened at, first paint, gallery) in perf_counter."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    opened = time.perf_counter()
    page.goto(f"{url}/worst", wait_until="commit")
    page.wait_for_selector(SIDEBAR_TITLE, timeout=300_000)
    page.wait_for_selector(HEADING, timeout=300_000)
    paint = time.perf_counter()
    page.wait_for_selector(GALLERY, timeout=600_000)
    gallery = time.perf_counter()
    page.close()
    return opened, paint, gallery


def time_server(workspace: Path, name: str) -> list[Row]:
    """Start a server on ``workspace``; time a first and a second browser session."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "PLATELENS_WORKSPACE": str(workspace)}
    start = time.perf_counter()
    server = subprocess.Popen(  # noqa: S603
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
            opened, paint, gallery = _open(browser, url)
            first = Row(name, healthy, paint - opened, gallery - opened, (paint - start, gallery - start))
            opened, paint, gallery = _open(browser, url)
            second = Row(f"{name}, 2nd session", None, paint - opened, gallery - opened, None)
            browser.close()
        return [first, second]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    """Time cold and restarted servers, first and second sessions, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    rows: list[Row] = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Path(tmp) / "workspace"
            rows += time_server(workspace, f"cold #{i + 1} (empty workspace)")
            rows += time_server(workspace, f"restart #{i + 1} (cached scores)")
    print(f"{'launch':<46} {'server up':>9} {'paint':>6} {'gallery':>8} {'paint*':>7} {'gallery*':>9}")
    for row in rows:
        up = f"{row.server_up:.1f}" if row.server_up is not None else "–"
        paint_start, gallery_start = (f"{v:.1f}" for v in row.since_start) if row.since_start else ("–", "–")
        print(f"{row.launch:<46} {up:>9} {row.paint:>6.1f} {row.gallery:>8.1f} {paint_start:>7} {gallery_start:>9}")
    print("seconds; paint and gallery from opening the page, * from the server's start")
    print("goals: first paint <= 2 s on a warm server, <= 5 s from a cold start; cold gallery <= 30 s")


if __name__ == "__main__":
    main()
