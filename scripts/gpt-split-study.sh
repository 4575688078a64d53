#!/bin/bash
# Every split of one GPT on one cluster, searched, sized and ranked by `plait plan`
# (all kinds: GPipe, 1F1B, interleaved, ZB-H1, MGRIT with its gradient error under
# 1e-2; TP, PP, DP, micro-batch, recompute), the best three simulated with SimGrid.
# Usage: scripts/gpt-split-study.sh OUT [NODES] [MODEL]
#   NODES: nodes of 8 GPUs (default 8). MODEL:
#   medium (the default), small: 256 layers at GPT-2 medium (d 1024, 16 heads) or
#     small (d 768, 12 heads) width, sequence 1024, global batch = GPUs, on H100s
#     priced by the kernel model fitted on the A100 steps
#     (docs/gpu/a100-node-fitted.json) with the H100 sheet's peaks: efficiencies,
#     host overhead and message costs carried over, not measured on an H100, and
#     its per-shape factors (the A100's kernels at the measured shapes) dropped;
#   gpt3-1.3b, gpt3-2.7b, gpt3-6.7b, gpt3-13b: GPT-3's shapes (24-40 layers, d 2048-5120),
#     sequence 2048, global batch 512, on A100s (a100-cluster) priced by that fit.
# Writes OUT/plan.csv and OUT/report.md (plait plan's), and prints the table.
set -euo pipefail
out=${1:?usage: scripts/gpt-split-study.sh OUT [NODES] [MODEL]}
nodes=${2:-8}
model=${3:-medium}
root=$(cd "$(dirname "$0")/.." && pwd)
plait=$root/build/apps/plait
gpus=$((nodes * 8))
case $model in
  medium) shape=(--model gpt --layers 256 --d-model 1024 --heads 16 --seq 1024 --vocab 50304) ;;
  small) shape=(--model gpt --layers 256 --d-model 768 --heads 12 --seq 1024 --vocab 50304) ;;
  gpt3-1.3b | gpt3-2.7b | gpt3-6.7b | gpt3-13b) shape=(--model "$model") ;;
  *) echo "gpt-split-study: MODEL must be small, medium, gpt3-1.3b, gpt3-2.7b, gpt3-6.7b or gpt3-13b, not $model" >&2; exit 2 ;;
esac
mkdir -p "$out"
if [[ $model == gpt3-* ]]; then
  priced=(--global-batch 512 --platform a100-cluster --profile "$root/docs/gpu/a100-node-fitted.json")
else
  profile=$out/h100-from-a100-fit.json
  sed -e 's/"name": "[^"]*"/"name": "h100-sxm peaks, A100 kernel fit"/' \
      -e 's/"peak_flops_fp32": [0-9.e+]*/"peak_flops_fp32": 67e12/' \
      -e 's/"peak_flops_bf16": [0-9.e+]*/"peak_flops_bf16": 989.4e12/' \
      -e 's/"memory_bandwidth": [0-9.e+]*/"memory_bandwidth": 3.35e12/' \
      -e '/"shape_factors": \[/,/^  \],$/d' "$root/docs/gpu/a100-node-fitted.json" > "$profile"
  priced=(--global-batch "$gpus" --platform h100-cluster --profile "$profile")
fi
"$plait" plan "${shape[@]}" "${priced[@]}" --gpus "$gpus" --top 3 -j 2 -o "$out"
