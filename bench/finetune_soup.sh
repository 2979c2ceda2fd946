#!/usr/bin/env bash
# The README's real-crop fine-tune, once per seed, and the weight average of those runs ("model soup"):
# prints bench/real_accuracy.py's rows for each run and for the average (all 297, both halves of its
# split, 皖 and other crops; the runs train on the train half only).
#
#   bash bench/finetune_soup.sh [INIT.pt] [SEEDS...]     # default: ocr_core/assets/demo.pt, seeds 0 1 2
#
# About 4 min per seed on 2 cores (12.7 min for the default three and the table). Runs go to
# workspace/runs/soup-ft-s<SEED>, the average to workspace/runs/soup-ft.pt. Needs ../shared/data/real-plates.
set -euo pipefail
INIT=${1:-ocr_core/assets/demo.pt}
if [ $# -gt 0 ]; then shift; fi
if [ $# -gt 0 ]; then SEEDS=("$@"); else SEEDS=(0 1 2); fi
DATA=../shared/data/real-plates
if [ ! -d "$DATA" ]; then
  echo "skipped: $DATA is absent (the real crops live in ../shared/data)"
  exit 0
fi
mkdir -p workspace/runs
RUNS=()
for s in "${SEEDS[@]}"; do
  out=workspace/runs/soup-ft-s$s
  rm -rf "$out"
  python -m ocr_core train --data "$DATA" --val-split 0.35 --init "$INIT" \
    --augment ocr_core/assets/demo-augment.json --synth-mix 2000 --epochs 20 --lr 2.5e-4 --batch-size 32 \
    --seed "$s" --out "$out" > "$out.log" 2>&1
  RUNS+=("$out/last.pt")
done
python -m ocr_core average "${RUNS[@]}" --out workspace/runs/soup-ft.pt
for ckpt in "${RUNS[@]}" workspace/runs/soup-ft.pt; do
  echo "== $ckpt"
  python bench/real_accuracy.py --finetuned "$ckpt" | grep -E "^ +(checkpoint|fine-tuned)"
done
