#!/usr/bin/env bash
# The main job, with this machine as the platform: compile an MGRIT training
# step, calibrate the machine, predict the step (SimGrid), measure it (MPI +
# LibTorch), compare the two, and write out/report.md.
# Settings (environment): LAYERS (32), RANKS (2), D_MODEL (128), SEQ (64), BATCH (4), STEPS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/apps
out=out
mkdir -p "$out"
layers=${LAYERS:-32}
ranks=${RANKS:-2}
steps=${STEPS:-3}
shape=(--model transformer --d-model "${D_MODEL:-128}" --heads 4 --seq "${SEQ:-64}" --batch "${BATCH:-4}")
solver=(--levels 2 --cf 4 --relax F --fwd-iters 2 --bwd-iters 1)
step() { printf '\n== %s\n' "$*"; }

step "schedule: MGRIT ${solver[*]}, $layers layers on $ranks ranks"
"$bin/plait" schedule --kind mgrit --layers "$layers" --ranks "$ranks" "${solver[@]}" "${shape[@]}" \
  -o "$out/program.json"
"$bin/plait" inspect "$out/program.json"

step "solve: the same settings on the test MLP (reference backend), error vs serial"
"$bin/plait" solve --problem mlp --layers "$layers" --levels 2 --cf 4 --relax F --ranks "$ranks" --iters 2

step "calibrate: this machine's ops at the Program's shape, and MPI messages"
"$bin/plait" calibrate --program "$out/program.json" -o "$out/profile.json"

step "predict: plait simulate on platforms/local.json with the profile"
"$bin/plait" simulate "$out/program.json" --platform platforms/local.json --profile "$out/profile.json" \
  --trace "$out/predicted-trace.json" --json > "$out/predicted.json"
"$bin/plait" simulate "$out/program.json" --platform platforms/local.json --profile "$out/profile.json"

step "measure: plait run -n $ranks (MPI + LibTorch), $steps steps, against the serial baseline"
"$bin/plait" run -n "$ranks" "$out/program.json" --steps "$steps" --warmup 1 --check-serial \
  --trace "$out/measured-trace.json" --json > "$out/measured.json"
cat "$out/measured.json"

step "compare: predicted vs measured, per cost key"
"$bin/plait" compare "$out/measured-trace.json" "$out/predicted-trace.json" | tee "$out/comparison.txt"
"$bin/plait" compare --json "$out/measured-trace.json" "$out/predicted-trace.json" > "$out/comparison.json"
"$bin/plait" export "$out/measured-trace.json" -o "$out/measured-perfetto.json"
"$bin/plait" export "$out/predicted-trace.json" -o "$out/predicted-perfetto.json"

# A number from a flat JSON file (no jq on a fresh machine).
value() { grep -o "\"$1\": *[-0-9.e+]*" "$2" | head -1 | sed 's/.*: *//'; }
fmt() { printf '%.4g' "$1"; }
predicted_step=$(value predicted_time_s "$out/predicted.json")
predicted_serial=$(value serial_predicted_time_s "$out/predicted.json")
predicted_speedup=$(value speedup "$out/predicted.json")
measured_step=$(value time_per_step_s "$out/measured.json")
measured_serial=$(value serial_time_per_step_s "$out/measured.json")
measured_speedup=$(value speedup "$out/measured.json")
error() { awk -v p="$1" -v m="$2" 'BEGIN { printf "%+.1f%%", 100 * (p - m) / m }'; }

cat > "$out/report.md" <<REPORT
# plait main job: predicted vs measured on this machine

Program: MGRIT, $layers layers, ${solver[*]}, $ranks ranks; ${shape[*]}.

| | predicted | measured | error |
| --- | --- | --- | --- |
| MGRIT step (s) | $(fmt "$predicted_step") | $(fmt "$measured_step") | $(error "$predicted_step" "$measured_step") |
| serial step (s) | $(fmt "$predicted_serial") | $(fmt "$measured_serial") | $(error "$predicted_serial" "$measured_serial") |
| speedup | $(fmt "$predicted_speedup") | $(fmt "$measured_speedup") | $(error "$predicted_speedup" "$measured_speedup") |

Per cost key (summed over ranks and ops of the traced step):

\`\`\`
$(cat "$out/comparison.txt")
\`\`\`

MGRIT vs serial on the same weights and batch: $(grep -o '"max_rel_err_output": *[-0-9.e+]*' "$out/measured.json"),
$(grep -o '"max_rel_err_grad": *[-0-9.e+]*' "$out/measured.json").

Files: program.json, profile.json, predicted.json, measured.json, predicted-trace.json,
measured-trace.json, *-perfetto.json (open in ui.perfetto.dev), comparison.json.
REPORT
step "report: $out/report.md"
cat "$out/report.md"
