#!/usr/bin/env bash
# The main job, with this machine as the platform: plait sweep
# experiments/local.json calibrates this machine, then predicts (SimGrid, with
# the profile) and measures (MPI + LibTorch) each of its MGRIT training steps,
# and writes results.csv, PNG plots and report.md to out/local (about 10-20
# minutes on 2 cores). An interrupted run resumes where it stopped.
# Settings (environment): SPEC (experiments/local.json), OUT (out/local), JOBS (2),
# FORCE=1 to replace the results of another spec in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${SPEC:-experiments/local.json}
out=${OUT:-out/local}
args=(sweep "$spec" -o "$out" -j "${JOBS:-2}")
if [[ "${FORCE:-0}" == 1 ]]; then args+=(--force); fi
build/apps/plait "${args[@]}"
printf '\nThe report is %s/report.md (results: %s/results.csv, plots: %s/plots/)\n' "$out" "$out" "$out"
