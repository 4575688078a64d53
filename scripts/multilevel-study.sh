#!/usr/bin/env bash
# Multilevel vs single-level training, measured: for SGD and for AdamW, the
# single-level twin (experiments/train-single-level-lm.json), the multilevel
# run (experiments/train-multilevel-lm.json: MG/OPT with the first-order
# correction) and the same without the correction, trained side by side (one
# rank and one thread each, all three at once so that they share the machine
# alike), then plotted and tabled by scripts/plot-training.sh against the
# single-level run's final validation loss. The multilevel runs get
# MULTILEVEL_STEPS optimizer steps (default 1.5 x STEPS: the uncorrected cycle
# costs 2/3 of single-level FLOPs per step), each run its own cosine schedule.
#   scripts/multilevel-study.sh OUT_DIR [STEPS [MULTILEVEL_STEPS]]   (multiples of 3; default 900, 1350)
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [STEPS]}
steps=${2:-900}
multilevel_steps=${3:-$((steps * 3 / 2))}
here=$(cd "$(dirname "$0")/.." && pwd)
plait=${PLAIT:-$here/build/apps/plait}
[ -x "$plait" ] || { echo "multilevel-study: $plait is not built (scripts/bootstrap.sh)" >&2; exit 1; }
mkdir -p "$out/configs"
adamw='"optimizer": {"kind": "adamw", "lr": 0.002, "weight_decay": 0.01, "warmup_steps": 30, "min_lr_ratio": 0.1, "clip_norm": 1.0},'
for optimizer in sgd adamw; do
  for run in single-level multilevel multilevel-uncorrected; do
    source_config=$here/experiments/train-multilevel-lm.json
    [ $run = single-level ] && source_config=$here/experiments/train-single-level-lm.json
    config=$out/configs/$optimizer-$run.json
    sed -e "s/\"correction\": true/\"correction\": $([ $run = multilevel-uncorrected ] && echo false || echo true)/" "$source_config" > "$config"
    [ $optimizer = adamw ] && sed -i "s/\"optimizer\": {[^}]*},/$adamw/" "$config"
    grep -q "\"kind\": \"$optimizer\"" "$config" || { echo "multilevel-study: could not set the optimizer in $config" >&2; exit 1; }
  done
  pids=()
  for run in single-level multilevel multilevel-uncorrected; do
    run_steps=$multilevel_steps
    [ $run = single-level ] && run_steps=$steps
    "$plait" train -n 1 "$out/configs/$optimizer-$run.json" --out "$out/$optimizer/$run" --steps "$run_steps" --force \
      > "$out/$optimizer-$run.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || { echo "multilevel-study: a run failed; see $out/*.log" >&2; exit 1; }; done
  "$here/scripts/plot-training.sh" "$out/$optimizer/plots" "$out/$optimizer/single-level" "$out/$optimizer/multilevel" \
    "$out/$optimizer/multilevel-uncorrected"
done
