#!/usr/bin/env bash
# Multilevel training on 2 MPI ranks (MGRIT at each level) with
# --check-correction: every cycle's corrected coarse gradient must equal the
# restricted fine gradient, gathered over both ranks.
#   train_multilevel_two_ranks.sh MPIRUN... -- PLAIT_EXEC CONFIG OUT
set -euo pipefail
mpirun=()
while [ "$1" != "--" ]; do mpirun+=("$1"); shift; done
shift
exec_binary=$1 config=$2 out=$3
"${mpirun[@]}" "$exec_binary" train "$config" --out "$out" --force --check-correction
errors=$(grep -o '"correction_error":[0-9.e+-]*' "$out/metrics.jsonl" | cut -d: -f2)
count=$(echo "$errors" | grep -c . || true)
[ "$count" -eq 2 ] || { echo "FAIL: $count correction checks in $out/metrics.jsonl (expected one per cycle: 2)"; exit 1; }
echo "$errors" | awk '{ if ($1 + 0 > 1e-5) { print "FAIL: correction error " $1 " > 1e-5"; bad = 1 } } END { exit bad }'
levels=$(grep -o '"level":[0-9]' "$out/metrics.jsonl" | cut -d: -f2 | tr -d '\n')
[ "$levels" = "110110" ] || { echo "FAIL: levels by step $levels (expected 110110)"; exit 1; }
echo "multilevel on 2 ranks: correction errors $(echo $errors), levels by step $levels"
