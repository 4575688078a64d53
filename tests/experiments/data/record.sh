#!/usr/bin/env bash
# Re-records the 2-rank measured trace the replay tests use (run on a quiet
# machine with 2 cores): a 16-layer, 2-level MGRIT step of a small transformer.
# Usage: tests/experiments/data/record.sh [build dir with apps/plait and apps/plait-exec]
set -euo pipefail
cd "$(dirname "$0")"
build=${1:-../../../build}
"$build/apps/plait" schedule --layers 16 --levels 2 --cf 2 --relax F --fwd-iters 2 --bwd-iters 1 --ranks 2 \
  --d-model 64 --heads 2 --seq 32 --batch 2 -o program-2rank.json
"$build/apps/plait" run --exec "$build/apps/plait-exec" -n 2 program-2rank.json --steps 3 --warmup 1 \
  --trace measured-2rank.json --json
