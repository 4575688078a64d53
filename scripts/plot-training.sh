#!/usr/bin/env bash
# Plots training runs on one chart each: loss vs step and loss vs wall time
# (training loss as lines, validation loss as points), and validation loss vs
# cumulative training FLOPs and vs training time (the sum of the step times:
# evaluations and checkpoints left out), from each run's metrics.csv (written
# by `plait-exec train`). Then tables, per run, the FLOPs and training time it
# took to reach the first run's final validation loss.
#   scripts/plot-training.sh OUT_DIR RUN_DIR [RUN_DIR...]
# Writes OUT_DIR/loss-vs-step.png, loss-vs-time.png, validation-vs-flops.png,
# validation-vs-time.png and to-reference-loss.txt (the table, also printed).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR RUN_DIR [RUN_DIR...]" >&2
  exit 2
fi
out=$1
shift
command -v gnuplot >/dev/null || { echo "plot-training: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
for run in "$@"; do
  [ -f "$run/metrics.csv" ] || { echo "plot-training: $run/metrics.csv: missing (not a finished training run?)" >&2; exit 1; }
done
mkdir -p "$out"

draw() {  # output file, x label, y label, extra settings, plot clauses (ending in ", ")
  gnuplot <<GNUPLOT
set terminal pngcairo size 900,560
set output '$1'
$4
set key top right
set grid
set xlabel '$2'
set ylabel '$3'
plot ${5%, }
GNUPLOT
}

plot_against() {  # column of x, its label, output file
  local x=$1 label=$2 file=$3 plots="" index=1
  shift 3
  for run in "$@"; do
    local name
    name=$(basename "$run")
    plots+="'$run/metrics.csv' using $x:2 with lines lw 1.5 lc $index title '$name (training)', "
    plots+="'$run/metrics.csv' using $x:(valid(12) ? \$12 : 1/0) with points pt 7 ps 1.5 lc $index title '$name (validation)', "
    index=$((index + 1))
  done
  draw "$file" "$label" "loss (cross-entropy)" "set datafile separator ','" "$plots"
}

validation_against() {  # column of x, its label, output file
  local x=$1 label=$2 file=$3 plots="" index=1
  shift 3
  for run in "$@"; do
    local name
    name=$(basename "$run")
    awk -F, -v x="$x" 'NR > 1 && $12 != "" && $x != "" { print $x, $12 }' "$run/metrics.csv" > "$out/.$name.validation"
    plots+="'$out/.$name.validation' using 1:2 with linespoints lw 2 pt 7 lc $index title '$name', "
    index=$((index + 1))
  done
  draw "$file" "$label" "validation loss (cross-entropy)" "" "$plots"
  for run in "$@"; do rm -f "$out/.$(basename "$run").validation"; done
}

plot_against 1 "optimizer step" "$out/loss-vs-step.png" "$@"
plot_against 5 "wall time (s)" "$out/loss-vs-time.png" "$@"
validation_against 17 "training FLOPs (forward + backward + optimizer, cumulative)" "$out/validation-vs-flops.png" "$@"
validation_against 18 "training time (s, sum of step times)" "$out/validation-vs-time.png" "$@"

# The first run's final validation loss is the target every run is timed to.
target=$(awk -F, 'NR > 1 && $12 != "" { v = $12 } END { print v }' "$1/metrics.csv")
{
  printf "target: the final validation loss of %s, %s\n" "$(basename "$1")" "$target"
  printf "%-28s %12s %12s %11s %14s %12s %10s\n" run final_val steps FLOPs training_s to_target_FLOPs to_target_s
  for run in "$@"; do
    awk -F, -v target="$target" -v name="$(basename "$run")" '
      NR > 1 { steps = $1; flops = $17; seconds = $18
               if ($12 != "") { final = $12; if (!hit && $12 <= target + 0) { hit = 1; hit_flops = $17; hit_s = $18 } } }
      END { if (hit) printf "%-28s %12.4f %12d %11.3g %14.1f %12.3g %10.1f\n", name, final, steps, flops, seconds, hit_flops, hit_s
            else printf "%-28s %12.4f %12d %11.3g %14.1f %12s %10s\n", name, final, steps, flops, seconds, "not reached", "-" }' \
      "$run/metrics.csv"
  done
} | tee "$out/to-reference-loss.txt"
echo "plot-training: wrote $out/loss-vs-step.png, loss-vs-time.png, validation-vs-flops.png, validation-vs-time.png, to-reference-loss.txt"
