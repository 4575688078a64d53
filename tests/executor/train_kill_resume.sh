#!/usr/bin/env bash
# A training run killed (SIGKILL) mid-run resumes from its last checkpoint,
# losing at most one checkpoint interval, and ends with every step's metrics once.
#   train_kill_resume.sh PLAIT_EXEC CONFIG OUT_DIR
set -euo pipefail
exec_binary=$1 config=$2 out=$3
rm -rf "$out"
"$exec_binary" train "$config" --out "$out" --steps 400 >"$out.log" 2>&1 &
pid=$!
# Kill it once a checkpoint after step 2 exists (the first one may be written very fast).
for _ in $(seq 600); do
  if [ -f "$out/checkpoint/state.json" ] && ! grep -q '"step": 2,' "$out/checkpoint/state.json"; then break; fi
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null || { echo "FAIL: the run ended before it could be killed"; exit 1; }
wait "$pid" 2>/dev/null || true
saved=$(sed -n 's/^  "step": \([0-9]*\),$/\1/p' "$out/checkpoint/state.json")
last=$(tail -n 1 "$out/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
echo "killed after step $last; checkpoint at step $saved"
[ $((last - saved)) -le 2 ] || { echo "FAIL: lost more than one interval (2 steps)"; exit 1; }
[ ! -e "$out/checkpoint.partial" ] || ls "$out/checkpoint.partial"  # may be left by the kill; the resume removes it
"$exec_binary" train "$config" --out "$out" --steps 400 --resume >>"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
steps=$(sed 's/.*"step":\([0-9]*\).*/\1/' "$out/metrics.jsonl" | tr '\n' ' ')
expected=$(seq -s ' ' 1 400)
[ "$steps" = "$expected " ] || { echo "FAIL: metrics steps are not 1..400 once each: $steps"; exit 1; }
echo "resumed from step $saved and finished: 400 steps, each once"
