#!/usr/bin/env bash
# Regenerates residual_histories.json: per-iteration residual norms of MGRIT
# solves of the reference problems, pinned so that a change to the cycle's
# layout cannot change what an iteration computes (the lean cycle kept them).
# Usage: tests/schedule/data/regen_residual_histories.sh build/apps/plait
set -euo pipefail
plait=${1:?path to the plait binary}
out="$(dirname "$0")/residual_histories.json"
configs=(
  # problem layers levels cf relax ranks iters skip
  "mlp 32 2 4 F 1 4 skip"
  "mlp 32 2 4 F 2 4 no-skip"
  "mlp 64 3 2 FCF 3 3 skip"
  "mlp 100 3 3 F 7 4 skip"
  "mlp 45 2 4 FCF 2 3 no-skip"
  "linear 256 4 2 F 4 5 skip"
  "linear 1000 3 4 FCF 5 4 no-skip"
)
{
  echo "["
  for i in "${!configs[@]}"; do
    read -r problem layers levels cf relax ranks iters skip <<<"${configs[$i]}"
    flags=(--problem "$problem" --layers "$layers" --levels "$levels" --cf "$cf" --relax "$relax"
           --ranks "$ranks" --iters "$iters" --json)
    [ "$skip" = no-skip ] && flags+=(--no-skip)
    result=$("$plait" solve "${flags[@]}")
    separator=","; [ "$i" -eq $((${#configs[@]} - 1)) ] && separator=""
    printf '  {"problem": "%s", "layers": %s, "levels": %s, "cf": %s, "relax": "%s", "ranks": %s, "iterations": %s, "skip": %s,\n   "solve": %s}%s\n' \
      "$problem" "$layers" "$levels" "$cf" "$relax" "$ranks" "$iters" \
      "$([ "$skip" = skip ] && echo true || echo false)" "$result" "$separator"
  done
  echo "]"
} > "$out"
echo "wrote $out"
