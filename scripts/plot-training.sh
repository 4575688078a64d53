#!/usr/bin/env bash
# Plots training runs on one chart each: loss vs step and loss vs wall time
# (training loss as lines, validation loss as points), from each run's
# metrics.csv (written by `plait-exec train`).
#   scripts/plot-training.sh OUT_DIR RUN_DIR [RUN_DIR...]
# Writes OUT_DIR/loss-vs-step.png and OUT_DIR/loss-vs-time.png.
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
  gnuplot <<GNUPLOT
set terminal pngcairo size 900,560
set output '$file'
set datafile separator ','
set key top right
set grid
set xlabel '$label'
set ylabel 'loss (cross-entropy)'
plot ${plots%, }
GNUPLOT
}

plot_against 1 "optimizer step" "$out/loss-vs-step.png" "$@"
plot_against 5 "wall time (s)" "$out/loss-vs-time.png" "$@"
echo "plot-training: wrote $out/loss-vs-step.png and $out/loss-vs-time.png"
