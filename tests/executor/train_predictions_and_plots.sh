#!/usr/bin/env bash
# `plait train -n 2 --profile`: predicts every solver setting the run may use,
# the metrics carry the prediction of the setting in force, and
# scripts/plot-training.sh draws the run.
#   train_predictions_and_plots.sh PLAIT CONFIG BENCH_JSON PINGPONG_JSON WORK_DIR PLOT_SCRIPT
set -euo pipefail
plait=$1 config=$2 bench=$3 pingpong=$4 work=$5 plot=$6
rm -rf "$work"
mkdir -p "$work"
"$plait" calibrate --bench-json "$bench" --pingpong-json "$pingpong" -o "$work/profile.json" --json >/dev/null
"$plait" train -n 2 "$config" --profile "$work/profile.json" --out "$work/run" --force
count=$(grep -c '"predicted_step_s"' "$work/run/predictions.json")
[ "$count" -ge 2 ] || { echo "FAIL: $work/run/predictions.json holds $count predictions (expected the MGRIT and the serial setting)"; exit 1; }
with=$(grep -c '"predicted_step_s":[0-9]' "$work/run/metrics.jsonl")
lines=$(wc -l < "$work/run/metrics.jsonl")
[ "$with" -eq "$lines" ] || { echo "FAIL: $with of $lines metrics lines carry predicted_step_s"; exit 1; }
"$plot" "$work/plots" "$work/run"
for png in loss-vs-step.png loss-vs-time.png validation-vs-flops.png validation-vs-time.png; do
  [ "$(head -c 4 "$work/plots/$png" | tail -c 3)" = "PNG" ] || { echo "FAIL: $png is not a PNG"; exit 1; }
done
grep -q "^run  *final_val" "$work/plots/to-reference-loss.txt" || { echo "FAIL: no table in to-reference-loss.txt"; exit 1; }
echo "predictions: $count settings, in all $lines metrics lines; plots written"
