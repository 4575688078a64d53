#!/bin/bash
# MGRIT against pipeline / tensor / data splits for one GPT on one cluster:
# each split scheduled (plait schedule), predicted (plait simulate) and its
# memory per rank estimated (plait inspect --optimizer adamw); a markdown table.
# Usage: scripts/gpt-split-study.sh OUT [NODES]   (8 GPUs a node; default 8 nodes;
# a split the cluster or the depth cannot take is a row saying why)
# The H100 is priced by the kernel model fitted on the A100 steps
# (docs/gpu/a100-node-fitted.json) with the H100 sheet's peaks: efficiencies,
# launch and message costs carried over, not measured on an H100.
set -euo pipefail
out=${1:?usage: scripts/gpt-split-study.sh OUT [NODES]}
nodes=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
plait=$root/build/apps/plait
mkdir -p "$out"
profile=$out/h100-from-a100-fit.json
sed -e 's/"name": "[^"]*"/"name": "h100-sxm peaks, A100 kernel fit"/' \
    -e 's/"peak_flops_fp32": [0-9.e+]*/"peak_flops_fp32": 67e12/' \
    -e 's/"peak_flops_bf16": [0-9.e+]*/"peak_flops_bf16": 989.4e12/' \
    -e 's/"memory_bandwidth": [0-9.e+]*/"memory_bandwidth": 3.35e12/' "$root/docs/gpu/a100-node-fitted.json" > "$profile"
gpus=$((nodes * 8))
common=(--model gpt --vocab 50304 -N 256 --d-model 1024 --heads 16 --seq 1024 --batch "$gpus" --dtype fp16)
table=$out/splits.md
{
  echo "GPT-2 medium width (d 1024, 16 heads), 256 layers, sequence 1024, global batch $gpus, fp16, Adam,"
  echo "on $gpus H100s (h100-cluster --nodes $nodes; A100 kernel fit on H100 peaks)."
  echo
  echo "| split | kind | predicted step | speedup vs 1 GPU | peak memory a rank |"
  echo "|---|---|---:|---:|---:|"
} > "$table"
split() {
  local name=$1 kind=$2
  shift 2
  if ! "$plait" schedule "${common[@]}" --kind "$kind" "$@" -o "$out/$name.json" 2> "$out/error.txt"; then
    echo "| $name | $kind | not built: $(sed 's/^plait: //' "$out/error.txt") | | |" >> "$table"
    return
  fi
  "$plait" simulate "$out/$name.json" --platform h100-cluster --nodes "$nodes" --profile "$profile" --json > "$out/$name.prediction.json"
  "$plait" inspect "$out/$name.json" --optimizer adamw --json > "$out/$name.inspect.json"
  python3 - "$out/$name" "$name" "$kind" >> "$table" <<'PY'
import json, sys
base, name, kind = sys.argv[1:]
p = json.load(open(base + ".prediction.json"))
ranks = json.load(open(base + ".inspect.json"))["ranks"]
peak = max(r["memory_bytes"]["total"] for r in ranks)
print(f"| {name} | {kind} | {p['predicted_time_s']:.3f} s | {p['speedup']:.2f}x | {peak / 2**30:.1f} GiB |")
PY
  echo "$name done" >&2
}
stages=$gpus
split "TP1 PP$stages" 1f1b -P "$stages" -M "$gpus" --recompute
split "TP8 PP$((gpus / 8))" 1f1b --tp 8 -P $((gpus / 8)) -M "$gpus" --recompute
split "TP4 PP$((gpus / 4))" 1f1b --tp 4 -P $((gpus / 4)) -M "$gpus" --recompute
split "TP2 PP8 DP$((gpus / 16))" 1f1b --tp 2 -P 8 --dp $((gpus / 16)) -M 16 --recompute
split "TP1 PP8 DP$((gpus / 8))" 1f1b -P 8 --dp $((gpus / 8)) -M 8 --recompute
split "MGRIT P$stages" mgrit -P "$stages" -L 2 --cf 4 --fwd-iters 2 --bwd-iters 1
split "MGRIT TP8 P$((gpus / 8))" mgrit --tp 8 -P $((gpus / 8)) -L 2 --cf 4 --fwd-iters 2 --bwd-iters 1
split "MGRIT P8 DP$((gpus / 8))" mgrit -P 8 --dp $((gpus / 8)) -L 2 --cf 4 --fwd-iters 2 --bwd-iters 1
cat "$table"
