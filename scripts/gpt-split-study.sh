#!/bin/bash
# MGRIT against pipeline / tensor / data splits of one GPT on one cluster:
# every split of a grid scheduled (plait schedule), predicted (plait simulate,
# which refuses a split whose ranks do not fit the GPU's memory) and its memory
# per rank estimated (plait inspect --optimizer adamw); a markdown table, a CSV,
# and the best pipeline and the best MGRIT split among those within the GPU's
# 80 GB (74.5 GiB) with Adam's fp32 master weights and moments.
# Usage: scripts/gpt-split-study.sh OUT [NODES] [MODEL]
#   NODES: nodes of 8 GPUs (default 8). MODEL:
#   medium (the default), small: 256 layers at GPT-2 medium (d 1024, 16 heads) or
#     small (d 768, 12 heads) width, sequence 1024, global batch = GPUs, on H100s
#     priced by the kernel model fitted on the A100 steps
#     (docs/gpu/a100-node-fitted.json) with the H100 sheet's peaks: efficiencies,
#     launch and message costs carried over, not measured on an H100, and its
#     per-shape factors (the A100's kernels at the measured shapes) dropped;
#   gpt3-1.3b, gpt3-2.7b, gpt3-6.7b, gpt3-13b: GPT-3's shapes (24-40 layers, d
#     2048-5120), sequence 2048, global batch 512, on A100s (a100-cluster) priced
#     by that fit as it is.
#   fp16, Adam, full activation checkpointing for the pipelines.
# The grid: tensor parallelism 1, 2, 4, 8 (a row says why where the heads do not
# split); stages 1, 4, 16, 64, 256 (GPT-3 shapes: 1, 2, 4, 8); micro-batches of 1
# or 4 samples; data parallelism the rest; MGRIT (2 levels, cf 4, 2 forward and 1
# adjoint iterations) on 4 to 256 ranks a replica (GPT-3 shapes: 4, 8, within a
# 70 GiB memory budget a rank: step graphs beyond it recomputed), tensor
# parallelism 1 or 4.
set -euo pipefail
out=${1:?usage: scripts/gpt-split-study.sh OUT [NODES] [MODEL]}
nodes=${2:-8}
model=${3:-medium}
root=$(cd "$(dirname "$0")/.." && pwd)
plait=$root/build/apps/plait
gpus=$((nodes * 8))
stage_counts=(1 4 16 64 256)
mgrit_ranks=(4 16 64 256)
layers=256 seq=1024 batch=$gpus gpu=h100 mgrit_options=()
case $model in
  medium) dims=(--d-model 1024 --heads 16); label="GPT-2 medium width (d 1024, 16 heads)" ;;
  small) dims=(--d-model 768 --heads 12); label="GPT-2 small width (d 768, 12 heads)" ;;
  gpt3-1.3b) layers=24 dims=(--d-model 2048 --heads 16) ;;
  gpt3-2.7b) layers=32 dims=(--d-model 2560 --heads 32) ;;
  gpt3-6.7b) layers=32 dims=(--d-model 4096 --heads 32) ;;
  gpt3-13b) layers=40 dims=(--d-model 5120 --heads 40) ;;
  *) echo "gpt-split-study: MODEL must be small, medium, gpt3-1.3b, gpt3-2.7b, gpt3-6.7b or gpt3-13b, not $model" >&2; exit 2 ;;
esac
if [[ $model == gpt3-* ]]; then
  label="GPT-3 ${model#gpt3-} (d ${dims[1]}, ${dims[3]} heads)"
  seq=2048 batch=512 gpu=a100
  stage_counts=(1 2 4 8)
  mgrit_ranks=(4 8)
  # MGRIT keeps every fine state and step graph of its share of 512 sequences
  # of 2048 tokens: over the A100's memory unless the graphs over a rank's
  # budget (of its whole memory, under the 74.5 GiB) are recomputed.
  mgrit_options=(--memory-budget 70GiB)
fi
mkdir -p "$out"
if [[ $gpu == h100 ]]; then
  platform=h100-cluster
  profile=$out/h100-from-a100-fit.json
  sed -e 's/"name": "[^"]*"/"name": "h100-sxm peaks, A100 kernel fit"/' \
      -e 's/"peak_flops_fp32": [0-9.e+]*/"peak_flops_fp32": 67e12/' \
      -e 's/"peak_flops_bf16": [0-9.e+]*/"peak_flops_bf16": 989.4e12/' \
      -e 's/"memory_bandwidth": [0-9.e+]*/"memory_bandwidth": 3.35e12/' \
      -e '/"shape_factors": \[/,/^  \],$/d' "$root/docs/gpu/a100-node-fitted.json" > "$profile"
  priced="H100s (h100-cluster --nodes $nodes; A100 kernel fit on H100 peaks)"
else
  platform=a100-cluster
  profile=$root/docs/gpu/a100-node-fitted.json
  priced="A100s (a100-cluster --nodes $nodes; the A100 kernel fit)"
fi
common=(--model gpt --vocab 50304 -N $layers "${dims[@]}" --seq $seq --batch "$batch" --dtype fp16)
table=$out/splits.md
csv=$out/splits.csv
{
  echo "$label, $layers layers, sequence $seq, global batch $batch, fp16, Adam,"
  echo "on $gpus $priced."
  echo
  echo "| split | kind | predicted step | speedup vs 1 GPU | peak memory a rank |"
  echo "|---|---|---:|---:|---:|"
} > "$table"
echo "split,kind,tp,pp,dp,micro_batch,predicted_s,speedup,peak_memory_gib" > "$csv"
# split NAME KIND TP PP DP MICRO [schedule options...]
split() {
  local name=$1 kind=$2 tp=$3 pp=$4 dp=$5 micro=$6
  shift 6
  local base=$out/$(echo "$name" | tr ' ' _)
  if ! "$plait" schedule "${common[@]}" --kind "$kind" --tp "$tp" -P "$pp" --dp "$dp" "$@" -o "$base.json" 2> "$out/error.txt" ||
     ! "$plait" simulate "$base.json" --platform "$platform" --nodes "$nodes" --profile "$profile" --json \
         > "$base.prediction.json" 2> "$out/error.txt"; then
    echo "| $name | $kind | not run: $(sed 's/^plait: //' "$out/error.txt" | head -c 200) | | |" >> "$table"
    rm -f "$base.json"
    return
  fi
  "$plait" inspect "$base.json" --optimizer adamw --json > "$base.inspect.json"
  rm -f "$base.json"  # large, and made again by the same command
  python3 - "$base" "$name" "$kind" "$tp" "$pp" "$dp" "$micro" "$table" "$csv" <<'PY'
import json, sys
base, name, kind, tp, pp, dp, micro, table, csv = sys.argv[1:]
p = json.load(open(base + ".prediction.json"))
ranks = json.load(open(base + ".inspect.json"))["ranks"]
peak = max(r["memory_bytes"]["total"] for r in ranks) / 2**30
with open(table, "a") as out:
    over = " (over the GPU's 74.5 GiB)" if peak > 74.5 else ""
    out.write(f"| {name} | {kind} | {p['predicted_time_s']:.3f} s | {p['speedup']:.2f}x | {peak:.1f} GiB{over} |\n")
with open(csv, "a") as out:
    out.write(f"{name},{kind},{tp},{pp},{dp},{micro},{p['predicted_time_s']:.6g},{p['speedup']:.6g},{peak:.3g}\n")
PY
  echo "$gpus GPUs, $model: $name done" >&2
}
for tp in 1 2 4 8; do
  for pp in "${stage_counts[@]}"; do
    ranks=$((tp * pp))
    ((ranks <= gpus && gpus % ranks == 0)) || continue
    dp=$((gpus / ranks))
    for micro in 1 4; do
      ((batch % dp == 0)) || continue
      per_replica=$((batch / dp))
      ((per_replica % micro == 0)) || continue
      split "TP$tp PP$pp DP$dp mb$micro" 1f1b "$tp" "$pp" "$dp" "$micro" -M $((per_replica / micro)) --recompute
    done
  done
done
for tp in 1 4; do
  for pp in "${mgrit_ranks[@]}"; do
    ranks=$((tp * pp))
    ((ranks <= gpus && gpus % ranks == 0 && batch % (gpus / ranks) == 0)) || continue
    split "MGRIT TP$tp P$pp DP$((gpus / ranks))" mgrit "$tp" "$pp" $((gpus / ranks)) $((batch / (gpus / ranks))) \
      -L 2 --cf 4 --fwd-iters 2 --bwd-iters 1 "${mgrit_options[@]}"
  done
done
python3 - "$csv" >> "$table" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print()
for kind, label in (("1f1b", "best pipeline / tensor / data split"), ("mgrit", "best MGRIT split")):
    # 80 GB (74.5 GiB) a GPU, with Adam's fp32 master weights and moments
    fitting = [r for r in rows if r["kind"] == kind and float(r["peak_memory_gib"]) <= 74.5]
    if not fitting:
        print(f"- {label}: none fits")
        continue
    best = min(fitting, key=lambda r: float(r["predicted_s"]))
    print(f"- {label}: {best['split']}, {float(best['predicted_s']):.3f} s, {float(best['peak_memory_gib']):.1f} GiB a rank")
PY
cat "$table"
