"""``python -m ocr_core score`` of a very large dataset on this machine: img/s, peak RSS and B/C.

    python bench/score_million.py [--rows 1000000] [--distinct 5000] [--threads 2]

The dataset is a JSON manifest of ``--rows`` hard links (distinct file names) cycling over ``--distinct``
synthetic crops: every row is decoded and scored, but the files' bytes come from the page cache after
their first read. B is the CLI end to end (``score --data manifest.json --out frame.parquet``, run as a
child process: listing, streamed decoding and scoring, chunk files for resuming, the Parquet frame), timed
from its start to its exit; its peak RSS is the child's own (``wait4``). C is the forward pass alone on
pre-loaded crops at the scorer's batch size (as in ``bench/score_throughput.py``), on the distinct crops,
measured in this process before and after B (median of the runs). B/C is B's img/s over C's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ui_latency import make_manifest  # the bench folder is on sys.path, not a package


def forward_rate(folder: Path, threads: int, repeats: int = 3) -> float:
    """C: img/s of the served model's batched forward passes on the distinct crops, pre-loaded."""
    import torch

    from ocr_core.checkpoint import load_model
    from ocr_core.data.dataset import load_dataset
    from ocr_core.device import default_batch_size
    from ocr_core.workspace import DEMO_CHECKPOINT
    from score_throughput import forward_only

    torch.set_num_threads(threads)
    loaded = load_model(DEMO_CHECKPOINT)
    device = torch.device("cpu")
    images = load_dataset(folder, loaded.input_size).images
    batch = default_batch_size(device, inference=True)
    forward_only(loaded.model, loaded.input, images[:batch * 4], device, batch)  # warm the kernels
    return statistics.median(len(images) / forward_only(loaded.model, loaded.input, images, device, batch)
                             for _ in range(repeats))


def main() -> None:
    """Build the manifest, time C, run B as a child process, time C again, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from ocr_core.workspace import DEMO_CHECKPOINT

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        manifest = make_manifest(folder, args.rows, args.distinct, seed=1717)
        print(f"manifest of {args.rows:,} links over {args.distinct:,} crops: {time.perf_counter() - start:.0f} s",
              flush=True)
        c_before = forward_rate(folder / "crops", args.threads)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        out = folder / "frame.parquet"
        command = [sys.executable, "-m", "ocr_core", "score", "--checkpoint", str(DEMO_CHECKPOINT),
                   "--data", str(manifest), "--out", str(out), "--device", "cpu"]
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        summary = child.stdout.read().strip() if child.stdout else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"score failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
        c_after = forward_rate(folder / "crops", args.threads)
        import pandas as pd

        rows = len(pd.read_parquet(out, columns=["sample"]))
    b = rows / seconds
    c = statistics.median([c_before, c_after])
    print(f"\nrows={rows:,} distinct crops={args.distinct:,} threads={args.threads} cores={os.cpu_count()}")
    print(f"score summary: {summary}")
    print(f"{'measure':<52} {'value':>12}")
    print(f"{'B: score CLI wall time, s':<52} {seconds:>12.0f}")
    print(f"{'B: img/s (rows / wall time)':<52} {b:>12.0f}")
    print(f"{'B: peak RSS of the score process, MiB':<52} {usage.ru_maxrss / 1024:>12.0f}")
    print(f"{'C: forward only, img/s (before / after B)':<52} {c_before:>5.0f} / {c_after:>4.0f}")
    print(f"{'B/C (goal >= 0.8 in bench/score_throughput.py)':<52} {b / c:>12.2f}")


if __name__ == "__main__":
    main()
