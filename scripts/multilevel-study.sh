#!/usr/bin/env bash
# Multilevel vs single-level training in the paper's setting (arXiv
# 2504.18590; experiments/train-multilevel-paper.json: 12 blocks of width 256,
# 8 heads, a word-level tokenizer on the fortunes text): for each optimizer
# and seed, the config trained single-level (--mode serial, STEPS steps) and
# as each multilevel variant (1.5 x STEPS steps: an uncorrected cycle of 2
# coarse and 1 fine step costs 2/3 of the single-level FLOPs per step), each
# run its own warmup + cosine schedule. Two runs at a time (one rank and one
# thread each); a finished run is kept and an interrupted one resumed, so a
# rerun continues the study. Then scripts/multilevel-report.sh tables the
# FLOPs each variant took to the single-level run's final losses and plots
# the curves.
#   scripts/multilevel-study.sh OUT_DIR [STEPS]      (STEPS a multiple of 6; default 450)
# Environment: SEEDS ("1 2 3"), OPTIMIZERS ("sgd adamw"), VARIANTS
# ("alternate alternate-keep alternate-mgopt"; also even, odd, injection,
# average, alternate-corrected), PARALLEL (2), CONFIG (the base config: a
# multilevel config with "restriction": "alternate", "momentum": "restrict",
# "correction": false, "seed": 1 and its optimizer object on one line).
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [STEPS]}
steps=${2:-450}
[ $((steps % 6)) -eq 0 ] || { echo "multilevel-study: STEPS ($steps) must be a multiple of 6" >&2; exit 2; }
seeds=${SEEDS:-1 2 3}
optimizers=${OPTIMIZERS:-sgd adamw}
variants=${VARIANTS:-alternate alternate-keep alternate-mgopt}
parallel=${PARALLEL:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
plait=${PLAIT:-$here/build/apps/plait}
base=${CONFIG:-$here/experiments/train-multilevel-paper.json}
[ -x "$plait" ] || { echo "multilevel-study: $plait is not built (scripts/bootstrap.sh)" >&2; exit 1; }
for anchor in '"restriction": "alternate"' '"momentum": "restrict"' '"correction": false' '"seed": 1,' '"optimizer": {'; do
  grep -q "$anchor" "$base" || { echo "multilevel-study: $base: no $anchor to vary (see the CONFIG note in $0)" >&2; exit 2; }
done
mkdir -p "$out/configs" "$out/logs"

# The solver of each variant, as edits of the base config's solver line.
variant_edit() {
  case $1 in
    alternate) echo 's/^//' ;;
    alternate-keep) echo 's/"momentum": "restrict"/"momentum": "keep"/' ;;
    even | odd | injection | average) echo "s/\"restriction\": \"alternate\"/\"restriction\": \"$1\"/" ;;
    alternate-corrected) echo 's/"correction": false/"correction": true/' ;;
    alternate-mgopt) echo 's/"correction": false/"correction": true, "line_search": true, "coarse_batch": "cycle"/' ;;
    *) echo "multilevel-study: unknown variant \"$1\" (alternate, alternate-keep, even, odd, injection, average, alternate-corrected, alternate-mgopt)" >&2; return 2 ;;
  esac
}
# AdamW: the base SGD's schedule and clipping, AdamW's own step size and decay.
adamw='s/"kind": "sgd", "lr": [^,]*, "momentum": [^,]*, "weight_decay": [^,]*/"kind": "adamw", "lr": 0.002, "weight_decay": 0.01/'

failed="" running=0
declare -A names  # pid -> run name
launch() {  # run directory, config, extra plait options...
  local dir=$1 config=$2 name
  shift 2
  name=$(echo "${dir#"$out"/}" | tr / -)
  if [ -f "$dir/summary.json" ]; then return; fi
  local start=(--force)
  [ -f "$dir/checkpoint/state.json" ] && start=(--resume)
  echo "multilevel-study: $name" >&2
  "$plait" train -n 1 "$config" --out "$dir" "${start[@]}" "$@" > "$out/logs/$name.log" 2>&1 &
  names[$!]=$name
  running=$((running + 1))
  [ $running -lt "$parallel" ] || reap
}
reap() {  # waits for one run
  local pid
  wait -n -p pid || failed+=" $out/logs/${names[$pid]}.log"
  running=$((running - 1))
}

for seed in $seeds; do
  for optimizer in $optimizers; do
    for variant in single-level $variants; do
      config=$out/configs/$optimizer-$variant-seed$seed.json
      edit='s/^//'
      [ "$variant" = single-level ] || edit=$(variant_edit "$variant")
      sed -e "$edit" -e "s/\"seed\": 1,/\"seed\": $seed,/" "$base" > "$config"
      [ "$optimizer" = adamw ] && sed -i "$adamw" "$config"
      grep -q "\"kind\": \"$optimizer\"" "$config" || { echo "multilevel-study: could not set the optimizer in $config" >&2; exit 1; }
      dir=$out/$optimizer/seed$seed/$variant
      if [ "$variant" = single-level ]; then
        launch "$dir" "$config" --mode serial --steps "$steps"
      else
        launch "$dir" "$config" --steps $((steps * 3 / 2))
      fi
    done
  done
done
while [ $running -gt 0 ]; do reap; done
[ -z "$failed" ] || { echo "multilevel-study: runs failed, see$failed" >&2; exit 1; }
"$here/scripts/multilevel-report.sh" "$out"
