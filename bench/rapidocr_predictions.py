"""A worked example: another OCR system's readings of a folder, as a predictions file PlateLens can analyse.

    pip install rapidocr            # optional: PP-OCR models inside the wheel, run by onnxruntime, offline
    python bench/rapidocr_predictions.py --data ../shared/data/real-plates --out rapidocr.csv
    python -m ocr_core import-predictions rapidocr.csv --data ../shared/data/real-plates --out rapidocr.parquet

RapidOCR's recogniser reads each crop as one text line (no detection); its separator dot between the
province block and the serial (``沪A·MS087``) and spaces are dropped, as a team would normalise readings
before comparing them with plate labels. The file holds ``file, pred, confidence`` and nothing from
PlateLens; labels come from the dataset at import time.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from tqdm import tqdm

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def main() -> None:
    """Read every image of ``--data`` with RapidOCR and write the predictions CSV."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of crops")
    parser.add_argument("--out", required=True, help="the predictions CSV to write")
    args = parser.parse_args()
    try:
        from rapidocr import RapidOCR
    except ImportError:
        raise SystemExit("this example needs the optional package rapidocr: pip install rapidocr") from None
    engine = RapidOCR()
    images = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "pred", "confidence"])
        for image in tqdm(images, unit="img"):
            result = engine(str(image), use_det=False, use_cls=False, use_rec=True)
            text = "".join(result.txts or ()).replace("·", "").replace(" ", "")
            score = float(result.scores[0]) if result.scores else ""
            writer.writerow([os.path.relpath(image, out.parent), text, score])
    os.replace(tmp, out)
    print(f"wrote {out}: {len(images)} readings")


if __name__ == "__main__":
    main()
