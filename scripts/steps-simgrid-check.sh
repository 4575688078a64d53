#!/bin/bash
# Every measured step of a CSV (calibrate --from-steps' columns) simulated by
# SimGrid with a fitted profile: schedule --from-step FILE:LINE, simulate --json,
# predicted against measured. Prints each row and the mean and max |error|.
# Usage: scripts/steps-simgrid-check.sh STEPS.csv PROFILE.json [PLATFORM] [OUT]
set -euo pipefail
csv=${1:?usage: scripts/steps-simgrid-check.sh STEPS.csv PROFILE.json [PLATFORM] [OUT]}
profile=${2:?usage: scripts/steps-simgrid-check.sh STEPS.csv PROFILE.json [PLATFORM] [OUT]}
platform=${3:-a100-node}
out=${4:-$(mktemp -d)}
plait=$(cd "$(dirname "$0")/.." && pwd)/build/apps/plait
mkdir -p "$out"
time_column=$(head -1 "$csv" | tr -d '\r' | tr ',' '\n' | grep -n '^iteration time (ms)$' | cut -d: -f1)
export plait csv profile platform out time_column
one() {
  line=$1
  "$plait" schedule --from-step "$csv:$line" -o "$out/$line.json"
  predicted=$("$plait" simulate "$out/$line.json" --platform "$platform" --profile "$profile" --json |
              grep -m1 '"predicted_time_s"' | sed 's/.*: *//; s/,$//')
  measured=$(sed -n "${line}p" "$csv" | tr -d '\r' | cut -d, -f"$time_column")
  rm -f "$out/$line.json"
  echo "$line,$measured,$(awk -v p="$predicted" 'BEGIN { printf "%.4f", p * 1e3 }')"
}
export -f one
lines=$(wc -l < "$csv")
seq 2 "$lines" | xargs -P "$(nproc)" -I{} bash -c 'one {}' | sort -t, -k1 -n > "$out/simgrid.csv"
awk -F, '{ e = $3 / $2 - 1; if (e < 0) e = -e; s += e; if (e > m) m = e; n++ }
         END { printf "%d steps simulated: mean |error| %.2f %%, max %.1f %%\n", n, 100 * s / n, 100 * m }' "$out/simgrid.csv"
echo "rows (line, measured ms, SimGrid ms): $out/simgrid.csv"
