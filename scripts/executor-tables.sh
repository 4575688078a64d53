#!/usr/bin/env bash
# Measures the executor tables of executor/README.md on this machine:
#   speed:    N, ranks, serial and MGRIT step (median of STEPS), ratio, errors, peak memory,
#             with kept graphs and with every adjoint recomputing (plait-exec --recompute);
#   accuracy: output and gradient relative error vs serial for (fwd, bwd) iterations.
# TorchBraid's benchmark settings: d_model 128, 4 heads, MLP 512, seq 64, batch 8,
# no mask, PyTorch's initialisation, 2 levels, cf 4, F-relaxation, skip.
# Usage: scripts/executor-tables.sh [speed|accuracy|all]   (STEPS=7 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
plait=build/apps/plait
steps=${STEPS:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shape=(--model transformer --d-model 128 --heads 4 --seq 64 --batch 8 --mask none --init pytorch)
mgrit=(--kind mgrit --levels 2 --cf 4 --relax F)
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$2"; }
fmt() { printf '%.3g' "$1"; }

speed() {
  echo "| N | ranks | graphs | serial s | MGRIT s | MGRIT / serial | output err | gradient err | peak memory per rank (MiB) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for layers in 32 64; do
    for ranks in 1 2; do
      for graphs in kept recomputed; do
        extra=(); [ "$graphs" = recomputed ] && extra=(--recompute)
        "$plait" schedule "${mgrit[@]}" "${shape[@]}" --layers "$layers" --ranks "$ranks" --fwd-iters 2 --bwd-iters 1 \
          -o "$work/p.json"
        "$plait" run -n "$ranks" "$work/p.json" --steps "$steps" --warmup 1 --check-serial "${extra[@]}" --json > "$work/r.json"
        memory=$(sed -n 's/.*"peak_memory_bytes":\[\([^]]*\)\].*/\1/p' "$work/r.json" |
                 awk -F, '{for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? " / " : ""), $i / 1048576}')
        serial=$(field serial_time_per_step_s "$work/r.json"); time=$(field time_per_step_s "$work/r.json")
        echo "| $layers | $ranks | $graphs | $(fmt "$serial") | $(fmt "$time") | $(fmt "$(echo "$time / $serial" | bc -l)") |" \
             "$(fmt "$(field max_rel_err_output "$work/r.json")") | $(fmt "$(field max_rel_err_grad "$work/r.json")") | $memory |"
      done
    done
  done
}

accuracy() {
  echo "| N | forward its | backward its | output err | gradient err |"
  echo "| --- | --- | --- | --- | --- |"
  for layers in 32 64; do
    for fwd in 1 2 3; do
      for bwd in 1 2; do
        "$plait" schedule "${mgrit[@]}" "${shape[@]}" --layers "$layers" --ranks 1 --fwd-iters "$fwd" --bwd-iters "$bwd" -o "$work/p.json"
        "$plait" run -n 1 "$work/p.json" --steps 1 --warmup 0 --check-serial --json > "$work/r.json"
        echo "| $layers | $fwd | $bwd | $(fmt "$(field max_rel_err_output "$work/r.json")") | $(fmt "$(field max_rel_err_grad "$work/r.json")") |"
      done
    done
  done
}

case "${1:-all}" in
  speed) speed ;;
  accuracy) accuracy ;;
  all) speed; echo; accuracy ;;
  *) echo "usage: $0 [speed|accuracy|all]" >&2; exit 2 ;;
esac
