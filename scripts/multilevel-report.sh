#!/usr/bin/env bash
# Tables and plots a multilevel study (scripts/multilevel-study.sh OUT_DIR):
# for each optimizer, variant and seed, the FLOPs a run took to reach the
# single-level run's final training loss and final validation loss (same
# seed), as a fraction of the FLOPs the single-level run took to reach them,
# with the mean and range over seeds; and the validation loss at the
# single-level run's final FLOPs against its final validation loss.
# Training loss is that of the fine network's steps, averaged over a trailing
# window of WINDOW (default 0.1) of the single-level run's FLOPs (one batch
# is a noisy estimate); validation loss is interpolated between evaluations.
# Plots, per optimizer, training and validation loss against FLOPs and
# against training time (the sum of step times), averaged over seeds.
#   scripts/multilevel-report.sh OUT_DIR
# Writes OUT_DIR/report.md (the table, also printed) and OUT_DIR/<optimizer>/*.png.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
window=${WINDOW:-0.1}
command -v gnuplot >/dev/null || { echo "multilevel-report: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
work=$out/.report
rm -rf "$work"
mkdir -p "$work"

# metrics.csv columns: 2 loss, 12 val_loss, 15 level, 17 cumulative_flops, 18 training_time_s.
curves() {  # run directory, reference FLOPs, output stem: writes stem.train (flops time smoothed) and stem.val
  awk -F, -v span="$2" -v window="$window" -v train="$3.train" -v val="$3.val" '
    NR == 1 { next }
    $12 != "" { print $17, $18, $12 > val }
    $15 == 0 {
      n++; f[n] = $17; l[n] = $2
      while (f[first + 1] <= $17 - window * span && first + 1 < n) first++
      sum = 0; for (i = first + 1; i <= n; i++) sum += l[i]
      print $17, $18, sum / (n - first) > train
    }' "$1/metrics.csv"
}
# The first FLOPs and time at which column 3 of a curve falls to `target`
# (interpolated between points); "" if never.
reach() {
  awk -v target="$2" '
    !done && $3 <= target {
      if (NR > 1 && p3 != $3) { w = (p3 - target) / (p3 - $3); print p1 + w * ($1 - p1), p2 + w * ($2 - p2) }
      else print $1, $2
      done = 1
    }
    { p1 = $1; p2 = $2; p3 = $3 }' "$1"
}
ratio() {  # curve, target, reference FLOPs: the FLOPs to the target over the reference, or "none"
  local hit
  hit=$(reach "$1" "$2")
  if [ -n "$hit" ]; then awk -v f="${hit%% *}" -v s="$3" 'BEGIN { printf "%.2f", f / s }'; else echo none; fi
}
value_at() {  # curve, FLOPs: column 3 interpolated there ("" past the curve's end)
  awk -v x="$2" '!done && $1 >= x { if (NR > 1 && $1 != p1) print p3 + ($3 - p3) * (x - p1) / ($1 - p1); else print $3; done = 1 }
                 { p1 = $1; p3 = $3 }' "$1"
}

report=$out/report.md
{
  echo "| optimizer | run | seeds | FLOPs to single-level training loss (per seed) | mean (range) | FLOPs to single-level validation loss (per seed) | mean (range) | validation at single-level FLOPs − single-level (mean) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$report"
for optimizer_dir in "$out"/*/; do
  optimizer=$(basename "$optimizer_dir")
  [ -d "$optimizer_dir/seed1" ] || ls -d "$optimizer_dir"/seed* > /dev/null 2>&1 || continue
  variants=$(for d in "$optimizer_dir"/seed*/*/; do basename "$d"; done | sort -u | grep -v '^single-level$' || true)
  for variant in single-level $variants; do
    train_ratios="" val_ratios="" val_gaps="" seeds=0
    for seed_dir in "$optimizer_dir"/seed*/; do
      seed=$(basename "$seed_dir")
      single=$seed_dir/single-level run=$seed_dir/$variant
      [ -f "$single/metrics.csv" ] && [ -f "$run/metrics.csv" ] || continue
      span=$(awk -F, 'END { print $17 }' "$single/metrics.csv")
      curves "$single" "$span" "$work/$optimizer-single-level-$seed"
      curves "$run" "$span" "$work/$optimizer-$variant-$seed"
      train_target=$(awk 'END { print $3 }' "$work/$optimizer-single-level-$seed.train")
      val_target=$(awk 'END { print $3 }' "$work/$optimizer-single-level-$seed.val")
      # Relative to the FLOPs single-level took to reach the same loss (its
      # smoothed training loss can reach its final value before the end).
      single_train=$(reach "$work/$optimizer-single-level-$seed.train" "$train_target")
      single_val=$(reach "$work/$optimizer-single-level-$seed.val" "$val_target")
      train_ratios+=" $(ratio "$work/$optimizer-$variant-$seed.train" "$train_target" "${single_train%% *}")"
      val_ratios+=" $(ratio "$work/$optimizer-$variant-$seed.val" "$val_target" "${single_val%% *}")"
      at=$(value_at "$work/$optimizer-$variant-$seed.val" "$span")
      [ -n "$at" ] && val_gaps+=" $(awk -v a="$at" -v t="$val_target" 'BEGIN { printf "%.4f", a - t }')"
      seeds=$((seeds + 1))
    done
    [ $seeds -gt 0 ] || continue
    summary() {  # ratios: "mean (min–max)", or a count of seeds that never reached it
      echo "$1" | awk '{ n = 0; miss = 0; for (i = 1; i <= NF; i++) if ($i == "none") miss++; else { v = $i; s += v; n++; if (n == 1 || v < lo) lo = v; if (n == 1 || v > hi) hi = v } }
        END { if (n) printf "%.2f (%.2f–%.2f)", s / n, lo, hi; else printf "–"; if (miss) printf ", %d not reached", miss }'
    }
    gap=$(echo "$val_gaps" | awk '{ for (i = 1; i <= NF; i++) s += $i } END { if (NF) printf "%+.4f", s / NF; else printf "–" }')
    echo "| $optimizer | $variant | $seeds |$train_ratios | $(summary "$train_ratios") |$val_ratios | $(summary "$val_ratios") | $gap |" >> "$report"
  done
  # Curves averaged over seeds (a variant's runs take the same steps at the same FLOPs).
  for variant in single-level $variants; do
    for kind in train val; do
      files=$(ls "$work/$optimizer-$variant"-seed*."$kind" 2>/dev/null || true)
      [ -n "$files" ] || continue
      # shellcheck disable=SC2086
      awk '{ f[FNR] = $1; t[FNR] += $2; l[FNR] += $3; c[FNR]++; if (FNR > n) n = FNR }
           END { for (i = 1; i <= n; i++) print f[i], t[i] / c[i], l[i] / c[i] }' $files > "$work/$optimizer-$variant.$kind"
    done
  done
  draw() {  # kind, x expression, x label, y label, file
    local plots="" index=1
    for variant in single-level $variants; do
      [ -f "$work/$optimizer-$variant.$1" ] || continue
      plots+="'$work/$optimizer-$variant.$1' using $2:3 with lines lw 2 lc $index title '$variant', "
      index=$((index + 1))
    done
    gnuplot <<GNUPLOT
set terminal pngcairo size 900,560
set output '$optimizer_dir/$5'
set key top right
set grid
set xlabel '$3'
set ylabel '$4'
set title '$optimizer, mean over seeds'
plot ${plots%, }
GNUPLOT
  }
  draw train '($1/1e12)' "training FLOPs (10^{12})" "training loss (fine network, smoothed)" training-vs-flops.png
  draw val '($1/1e12)' "training FLOPs (10^{12})" "validation loss" validation-vs-flops.png
  draw train 2 "training time (s, sum of step times)" "training loss (fine network, smoothed)" training-vs-time.png
  draw val 2 "training time (s, sum of step times)" "validation loss" validation-vs-time.png
done
cat "$report"
