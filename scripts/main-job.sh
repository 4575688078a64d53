#!/usr/bin/env bash
# The main job on this machine as the platform: compile a training step, solve
# the test problem, calibrate, predict, measure, compare. Writes into out/.
# Settings (environment): LAYERS (32), RANKS (2), D_MODEL (128), SEQ (64), BATCH (4).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/apps
out=out
mkdir -p "$out"
layers=${LAYERS:-32}
ranks=${RANKS:-2}
shape=(--model transformer --d-model "${D_MODEL:-128}" --heads 4 --seq "${SEQ:-64}" --batch "${BATCH:-4}")
step() { printf '\n== %s\n' "$*"; }

step "schedule: MGRIT (2 levels, cf 4, F, 2 forward + 1 adjoint iterations) and serial, $layers layers"
"$bin/plait" schedule --kind mgrit --layers "$layers" --levels 2 --cf 4 --relax F --fwd-iters 2 --bwd-iters 1 \
  --ranks "$ranks" "${shape[@]}" -o "$out/program.json"
"$bin/plait" schedule --kind serial --layers "$layers" --ranks 1 "${shape[@]}" -o "$out/serial.json"
"$bin/plait" inspect "$out/program.json"

step "solve: the same MGRIT settings on the test MLP (reference backend)"
"$bin/plait" solve --problem mlp --layers "$layers" --levels 2 --cf 4 --relax F --ranks "$ranks" --iters 2
