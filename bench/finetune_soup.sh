#!/usr/bin/env bash
# The README's real-crop fine-tune, once per seed, and the weight average of those runs ("model soup"):
# prints bench/real_accuracy.py's rows for each run and for the average (all 297, both halves of its
# split, 皖 and other crops; the runs train on the train half only).
#
#   bash bench/finetune_soup.sh [INIT.pt] [SEEDS...] [-- TRAIN ARGS...]
#
# Defaults: ocr_core/assets/demo.pt, seeds 0 1 2. Train arguments after -- are appended to the recipe's and
# override them (argparse keeps the last), as in bench/finetune_cv.py.
#
# About 4 min per seed on 2 cores (12.7 min for the default three and the table). Runs go to
# workspace/runs/soup-ft-s<SEED>, the average to workspace/runs/soup-ft.pt. Needs ../shared/data/real-plates.
set -euo pipefail
OWN=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do OWN+=("$1"); shift; done
if [ $# -gt 0 ]; then shift; fi
EXTRA=("$@")
INIT=${OWN[0]:-ocr_core/assets/demo.pt}
if [ ${#OWN[@]} -gt 1 ]; then SEEDS=("${OWN[@]:1}"); else SEEDS=(0 1 2); fi
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
    --seed "$s" "${EXTRA[@]}" --out "$out" > "$out.log" 2>&1
  RUNS+=("$out/last.pt")
done
READ=("${RUNS[@]}")
if [ ${#RUNS[@]} -gt 1 ]; then  # one seed has nothing to average
  python -m ocr_core average "${RUNS[@]}" --out workspace/runs/soup-ft.pt
  READ+=(workspace/runs/soup-ft.pt)
fi
for ckpt in "${READ[@]}"; do
  echo "== $ckpt"
  python bench/real_accuracy.py --finetuned "$ckpt" | grep -E "^ +(checkpoint|fine-tuned)"
done
