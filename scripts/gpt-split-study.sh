#!/bin/bash
# MGRIT against pipeline / tensor / data splits of one GPT on one cluster:
# every split of a grid scheduled (plait schedule), predicted (plait simulate,
# which refuses a split whose ranks do not fit the GPU's memory) and its memory
# per rank estimated (plait inspect --optimizer adamw); a markdown table, a CSV,
# and the best pipeline and the best MGRIT split.
# Usage: scripts/gpt-split-study.sh OUT [NODES] [WIDTH]
#   NODES: nodes of 8 H100s (default 8); WIDTH: medium (d 1024, 16 heads; the
#   default) or small (d 768, 12 heads). 256 layers, sequence 1024, global
#   batch = GPUs, fp16, Adam, full activation checkpointing for the pipelines.
# The grid: tensor parallelism 1, 2, 4, 8 (a row says why where the heads do not
# split); stages 1, 4, 16, 64, 256; micro-batches of 1 or 4 samples; data
# parallelism the rest; MGRIT (2 levels, cf 4, 2 forward and 1 adjoint
# iterations) on 4 to 256 ranks a replica, tensor parallelism 1 or 4.
# The H100 is priced by the kernel model fitted on the A100 steps
# (docs/gpu/a100-node-fitted.json) with the H100 sheet's peaks: efficiencies,
# launch and message costs carried over, not measured on an H100.
set -euo pipefail
out=${1:?usage: scripts/gpt-split-study.sh OUT [NODES] [WIDTH]}
nodes=${2:-8}
width=${3:-medium}
root=$(cd "$(dirname "$0")/.." && pwd)
plait=$root/build/apps/plait
case $width in
  medium) dims=(--d-model 1024 --heads 16); label="GPT-2 medium width (d 1024, 16 heads)" ;;
  small) dims=(--d-model 768 --heads 12); label="GPT-2 small width (d 768, 12 heads)" ;;
  *) echo "gpt-split-study: WIDTH must be small or medium, not $width" >&2; exit 2 ;;
esac
mkdir -p "$out"
profile=$out/h100-from-a100-fit.json
sed -e 's/"name": "[^"]*"/"name": "h100-sxm peaks, A100 kernel fit"/' \
    -e 's/"peak_flops_fp32": [0-9.e+]*/"peak_flops_fp32": 67e12/' \
    -e 's/"peak_flops_bf16": [0-9.e+]*/"peak_flops_bf16": 989.4e12/' \
    -e 's/"memory_bandwidth": [0-9.e+]*/"memory_bandwidth": 3.35e12/' "$root/docs/gpu/a100-node-fitted.json" > "$profile"
gpus=$((nodes * 8))
layers=256
common=(--model gpt --vocab 50304 -N $layers "${dims[@]}" --seq 1024 --batch "$gpus" --dtype fp16)
table=$out/splits.md
csv=$out/splits.csv
{
  echo "$label, $layers layers, sequence 1024, global batch $gpus, fp16, Adam,"
  echo "on $gpus H100s (h100-cluster --nodes $nodes; A100 kernel fit on H100 peaks)."
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
     ! "$plait" simulate "$base.json" --platform h100-cluster --nodes "$nodes" --profile "$profile" --json \
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
    out.write(f"| {name} | {kind} | {p['predicted_time_s']:.3f} s | {p['speedup']:.2f}x | {peak:.1f} GiB |\n")
with open(csv, "a") as out:
    out.write(f"{name},{kind},{tp},{pp},{dp},{micro},{p['predicted_time_s']:.6g},{p['speedup']:.6g},{peak:.3g}\n")
PY
  echo "$gpus GPUs, $width: $name done" >&2
}
for tp in 1 2 4 8; do
  for pp in 1 4 16 64 256; do
    ranks=$((tp * pp))
    ((ranks <= gpus && gpus % ranks == 0)) || continue
    dp=$((gpus / ranks))
    for micro in 1 4; do
      per_replica=$((gpus / dp))
      ((per_replica % micro == 0)) || continue
      split "TP$tp PP$pp DP$dp mb$micro" 1f1b "$tp" "$pp" "$dp" "$micro" -M $((per_replica / micro)) --recompute
    done
  done
done
for tp in 1 4; do
  for pp in 4 16 64 256; do
    ranks=$((tp * pp))
    ((ranks <= gpus && gpus % ranks == 0)) || continue
    split "MGRIT TP$tp P$pp DP$((gpus / ranks))" mgrit "$tp" "$pp" $((gpus / ranks)) $((gpus / (gpus / ranks))) \
      -L 2 --cf 4 --fwd-iters 2 --bwd-iters 1
  done
done
python3 - "$csv" >> "$table" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print()
for kind, label in (("1f1b", "best pipeline / tensor / data split"), ("mgrit", "best MGRIT split")):
    fitting = [r for r in rows if r["kind"] == kind]
    if not fitting:
        print(f"- {label}: none fits")
        continue
    best = min(fitting, key=lambda r: float(r["predicted_s"]))
    print(f"- {label}: {best['split']}, {float(best['predicted_s']):.3f} s, {float(best['peak_memory_gib']):.1f} GiB a rank")
PY
cat "$table"
