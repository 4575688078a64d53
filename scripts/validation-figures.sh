#!/usr/bin/env bash
# Reruns the checks docs/validation.md states that need only the public data and
# plait: the A100 kernel fit (k-fold by row and by shape), the 1,440-row SimGrid
# sweep, and the all-reduce fit. Each command's output lands in OUT.
# Usage: scripts/validation-figures.sh [DATA (../shared/data)] [OUT (out/validation)]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
out=${2:-out/validation}
plait=${PLAIT:-build/apps/plait}
steps=$data/vtrain-a100/single_node_steps.csv
[[ -f $steps ]] || { echo "validation-figures: $steps: not found (pass the shared data folder)" >&2; exit 1; }
mkdir -p "$out"

echo "validation-figures: the A100 kernel fit (about 35 s)"
"$plait" calibrate --from-steps "$steps" --platform a100-node --folds 5 -o "$out/a100-fitted.json" \
  --report "$out/fit.md" --predictions "$out/held-out.csv" > "$out/fit.txt"

echo "validation-figures: every row simulated (about 1 min)"
spec=$out/a100-node.json
sed "s#\"csv\": *\"[^\"]*\"#\"csv\": \"$(realpath "$steps")\"#" experiments/a100-node.json > "$spec"
"$plait" sweep "$spec" -o "$out/a100-node" -j 2 --force > "$out/sweep.txt"

echo "validation-figures: the all-reduce fit (a few seconds)"
measured=()
for g in 2 3 4 5 6 7 8; do measured+=(--measured "$g=$data/vtrain-a100/allreduce/a100_${g}gpu_allreduce.csv"); done
"$plait" allreduce-check --platform a100-node --fit 2,8 "${measured[@]}" > "$out/allreduce.txt"

tail -n 3 "$out/sweep.txt"
tail -n 1 "$out/allreduce.txt"
echo "validation-figures: outputs in $out (fit.md, sweep.txt, allreduce.txt)"
