#!/usr/bin/env bash
# The GPU check: one script, a few minutes on one modern GPU. Run it whenever a CUDA machine is at hand:
#
#   bash bench/gpu_check.sh            # prints one table at the end; exit 1 if any step failed
#
# Steps: CUDA present (fails loudly, never skips), the GPU-relevant tests, a one-epoch AMP training run,
# scoring on cuda, the ONNX export parity check, the scoring bench (B/A and B/C, with seed 000's per-image
# loop as A), the training bench with AMP, and a 2-GPU torchrun smoke run when two GPUs are visible.
# Put the table into bench/RESULTS.md with the date and the GPU's name.
set -uo pipefail  # no -e: every step runs and reports, pipefail keeps a step's own exit code through tee
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rows=()
failed=0

step() {  # step NAME COMMAND...: run it, keep its last output line for the table
  local name=$1
  shift
  local started=$SECONDS
  echo "== $name: $*"
  if "$@" 2>&1 | tee "$work/out.txt"; then
    rows+=("$(printf '%-28s %-6s %5ss  %s' "$name" ok $((SECONDS - started)) "$(tail -n 1 "$work/out.txt" | cut -c1-90)")")
  else
    failed=1
    rows+=("$(printf '%-28s %-6s %5ss  %s' "$name" FAILED $((SECONDS - started)) "$(tail -n 1 "$work/out.txt" | cut -c1-90)")")
  fi
}

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: CUDA was asked for and torch sees no GPU (torch $(python -c 'import torch; print(torch.__version__)')); install a CUDA build of torch (README, GPU) on a machine with a GPU" >&2
  exit 1
fi
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
name=$(python -c "import torch; print(torch.cuda.get_device_name(0))")

python -m ocr_core synth --out "$work/plates" --count 2000 --seed 7 --style ccpd,ccpd-green >/dev/null
step "tests (device-agnostic core)" python -m pytest -q -x tests/test_heads.py tests/test_score.py \
  tests/test_train.py tests/test_onnx.py tests/test_distributed.py
step "train 1 epoch, cuda + AMP" python -m ocr_core train --data "$work/plates" --out "$work/run" --epochs 1 \
  --device cuda --workers 2
step "score on cuda" python -m ocr_core score --checkpoint ocr_core/assets/demo.pt --data "$work/plates" \
  --device cuda
step "onnx export parity" python -m ocr_core export ocr_core/assets/demo.pt --out "$work/demo.onnx" \
  --data "$work/plates"
step "score bench (A, B, C)" python bench/score_throughput.py --device cuda --count 5000 --repeats 3
step "train bench (AMP)" python bench/train_throughput.py --device cuda --count 8000 --workers 2,4
if [ "$gpus" -ge 2 ]; then
  step "torchrun 2 GPUs, train" python -m torch.distributed.run --standalone --nproc-per-node=2 -m ocr_core \
    train --data "$work/plates" --out "$work/run2" --epochs 1 --device cuda --workers 2
  step "torchrun 2 GPUs, score" python -m torch.distributed.run --standalone --nproc-per-node=2 -m ocr_core \
    score --checkpoint ocr_core/assets/demo.pt --data "$work/plates" --out "$work/parts" --device cuda
else
  rows+=("$(printf '%-28s %-6s %5s   %s' "torchrun 2 GPUs" "n/a" "-" "only $gpus GPU visible")")
fi

echo
echo "gpu_check on $name ($gpus visible), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-28s %-6s %6s  %s\n' step result time "last line of its output"
for row in "${rows[@]}"; do echo "$row"; done
exit "$failed"
