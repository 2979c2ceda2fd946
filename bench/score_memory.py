"""Peak memory of scoring: the whole dataset decoded first, against streamed chunks, at two dataset sizes.

    python bench/score_memory.py [--counts 2000,8000] [--chunk 1024]

Each way runs in a fresh process (peak RSS from getrusage), on the same synthetic crops and the shipped
demo checkpoint. "whole" is the pipeline before streaming (``load_dataset`` then ``score_dataset``);
"streamed" is ``score_listing`` as ``python -m ocr_core score`` runs it. Goal: the streamed peak does not
grow with the dataset beyond the frame's own rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ocr_core.data import synth

CHILD = """
import json, resource, sys, torch
from ocr_core.checkpoint import load_model
from ocr_core.data.dataset import load_dataset
from ocr_core.data.sources import list_source
from ocr_core.score import score_dataset, score_listing
from ocr_core.workspace import DEMO_CHECKPOINT
way, folder, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(2)
loaded = load_model(DEMO_CHECKPOINT)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.inference_mode():
    if way == "whole":
        frame = score_dataset(loaded, load_dataset(folder, loaded.input_size))
    else:
        frame = score_listing(loaded, list_source(folder), chunk_size=chunk).frame
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(frame), "base_mib": base / 1024, "peak_mib": peak / 1024}))
"""


def measure(way: str, folder: Path, chunk: int) -> dict:
    """Peak RSS of one way in a fresh process."""
    done = subprocess.run([sys.executable, "-c", CHILD, way, str(folder), str(chunk)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate each size once, measure both ways on it, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="2000,8000")
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(c) for c in args.counts.split(",")):
            folder = Path(tmp) / f"crops-{count}"
            synth.generate(folder, count, seed=99, styles=("ccpd", "ccpd-green"))
            for way in ("whole", "streamed"):
                result = measure(way, folder, args.chunk)
                rows.append((count, way, result["peak_mib"], result["peak_mib"] - result["base_mib"]))
    print(f"chunk={args.chunk}; peak RSS of a fresh process (MiB), and its growth after loading the model")
    print(f"{'crops':>7} {'way':<9} {'peak MiB':>9} {'growth MiB':>11}")
    for count, way, peak, growth in rows:
        print(f"{count:>7} {way:<9} {peak:>9.0f} {growth:>11.0f}")


if __name__ == "__main__":
    main()
