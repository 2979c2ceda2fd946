"""Re-save a checkpoint with another ``upscale`` input setting: the weights and all other metadata unchanged.

    python bench/set_upscale.py CHECKPOINT --upscale cubic --out OUT.pt

``upscale`` (``ocr_core.preprocess.InputSpec``) is how crops smaller than the model input are enlarged:
linear (what training uses unless told otherwise) or cubic. It is the one input setting a trained model
can change without retraining, because it only sharpens the enlarged crop a little; whether that helps is a
measurement (``bench/real_accuracy.py --upscale linear`` and ``--upscale cubic`` side by side), not a rule.
The shipped demo is stage 7's weights re-saved with ``--upscale cubic`` (README "Real plates: the province
glyph"). OUT may be CHECKPOINT itself; it is written atomically. A format-1 file is written in format 2,
as ``read_checkpoint`` upgrades it (its head and input settings spelled out; the weights the same).
"""

from __future__ import annotations

import argparse
import sys

from ocr_core.checkpoint import read_checkpoint, save_checkpoint
from ocr_core.errors import InputError
from ocr_core.preprocess import UPSCALE_MODES, InputSpec


def main() -> int:
    """Read the checkpoint, change its input settings' upscale, and write it to --out."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a PlateLens .pt checkpoint")
    parser.add_argument("--upscale", required=True, choices=UPSCALE_MODES)
    parser.add_argument("--out", required=True, help="where to write the re-saved checkpoint (.pt)")
    args = parser.parse_args()
    try:
        checkpoint = read_checkpoint(args.checkpoint)
        before = InputSpec.from_dict(checkpoint["input"])
        checkpoint["input"] = InputSpec.from_dict({**checkpoint["input"], "upscale": args.upscale}).to_dict()
        save_checkpoint(checkpoint, args.out)
    except (InputError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: upscale {before.upscale} -> {args.upscale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
