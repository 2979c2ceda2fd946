"""Concurrent users: N real browser sessions on one server, on a 100,000-row score frame.

    python bench/concurrent_users.py [--sessions 5] [--rows 100000] [--images 1000] [--rounds 3]

Starts `streamlit run app/main.py` on a temporary workspace, points every session's sidebar at a manifest
of --rows entries (cycling over --images synthetic crops), then in each round every session changes the
Worst-predictions outcome filter and an Augmentations slider without waiting for the others. It checks
that no session shows an error, that every session ends on its own filter choice, and reports the
server's peak resident memory (VmHWM of the server process) and interaction latencies.
Needs Chromium (/usr/bin/chromium) and the playwright package; Linux (reads /proc).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_latency import make_manifest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
MAIN = '[data-testid="stMain"]'
IDLE = "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"
OUTCOMES = ["all", "correct", "wrong"]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(workspace: Path, roots: Path, port: int) -> subprocess.Popen:
    """A headless streamlit server on ``port`` over ``workspace``, reading only inside ``roots``."""
    env = {**os.environ, "PLATELENS_WORKSPACE": str(workspace), "PLATELENS_DATA_ROOTS": str(roots)}
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def wait_idle(page, timeout_ms: int) -> None:
    """Wait for the session's script run to finish."""
    page.wait_for_timeout(150)  # let the rerun start before asking whether it ended
    page.wait_for_function(IDLE, timeout=timeout_ms)


def pick_dataset(page, manifest: Path, timeout_ms: int) -> None:
    """Choose the manifest in the sidebar's dataset picker (Other folder or manifest… + its path)."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="Other folder or manifest…").click()
    box = sidebar.get_by_label("Dataset path")
    box.fill(str(manifest))
    box.press("Enter")
    page.locator(MAIN).get_by_text("samples match").first.wait_for(timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def match_line(page) -> str:
    """Worst predictions' "N of M samples match" line."""
    return page.locator(MAIN).get_by_text("samples match").first.inner_text().split(",  worst")[0]


def errors_on(page) -> int:
    """Error boxes and tracebacks shown in the page."""
    return (page.locator('[data-testid="stException"]').count()
            + page.locator('[data-testid="stAlert"]').filter(has_text="rror").count())


def main() -> None:
    """Run the sessions and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8599)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_manifest(Path(tmp), args.rows, args.images)
        server = start_server(Path(tmp) / "workspace", Path(tmp), args.port)
        url = f"http://127.0.0.1:{args.port}"
        latencies: list[float] = []
        leaks = errors = 0
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
                pages = [browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                         for _ in range(args.sessions)]
                start = time.perf_counter()
                for page in pages:
                    page.goto(f"{url}/worst", timeout=120_000)
                    page.locator(MAIN).get_by_text("samples match").first.wait_for(timeout=600_000)
                pick_dataset(pages[0], manifest, timeout_ms=1_800_000)  # decodes and scores the 100,000 rows
                setup = time.perf_counter() - start
                for page in pages[1:]:
                    pick_dataset(page, manifest, timeout_ms=600_000)
                for round_ in range(args.rounds):
                    choices = [OUTCOMES[(i + round_) % len(OUTCOMES)] for i in range(len(pages))]
                    began = time.perf_counter()
                    for page, outcome in zip(pages, choices):  # all sessions at once
                        page.locator(f'{MAIN} [data-testid="stRadio"]').get_by_text(outcome, exact=True).click()
                    lines = {}
                    for page, outcome in zip(pages, choices):
                        wait_idle(page, 600_000)
                        latencies.append(time.perf_counter() - began)
                        lines.setdefault(outcome, set()).add(match_line(page))
                    # Sessions with the same choice must agree, sessions with different choices must differ.
                    leaks += sum(len(v) - 1 for v in lines.values())
                    leaks += len(lines) - len({next(iter(v)) for v in lines.values()})
                    errors += sum(errors_on(page) for page in pages)
                for page in pages:
                    page.locator('[data-testid="stSidebarNav"]').get_by_text("Augmentations", exact=True).click()
                for page in pages:
                    page.locator(MAIN).locator('[data-testid="stImage"] img').first.wait_for(timeout=600_000)
                    wait_idle(page, 600_000)
                for round_ in range(args.rounds):
                    began = time.perf_counter()
                    for page in pages:
                        slider = page.locator(MAIN).get_by_role("slider").first
                        slider.focus()
                        slider.press("ArrowRight" if round_ % 2 == 0 else "ArrowLeft")
                    for page in pages:
                        wait_idle(page, 600_000)
                        latencies.append(time.perf_counter() - began)
                    errors += sum(errors_on(page) for page in pages)
                browser.close()
            rss = peak_rss_mb(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    print(f"sessions={args.sessions} rows={args.rows:,} images={args.images} rounds={args.rounds} "
          f"(first session: decode + score {setup:.0f} s)")
    print(f"{'measure':<46} {'value':>10}")
    for name, value in (
        ("errors shown in any session", f"{errors}"),
        ("sessions that saw another's filter", f"{leaks}"),
        ("interaction latency, median (s, all sessions)", f"{statistics.median(latencies):.2f}"),
        ("interaction latency, max (s)", f"{max(latencies):.2f}"),
        ("server peak RSS (MiB, VmHWM)", f"{rss:.0f}"),
    ):
        print(f"{name:<46} {value:>10}")


if __name__ == "__main__":
    main()
