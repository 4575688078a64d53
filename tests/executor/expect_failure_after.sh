#!/bin/sh
# expect_failure_after.sh SECONDS MARKER REGEX COMMAND...: passes when COMMAND
# exits non-zero within SECONDS of printing MARKER (grep -F; the moment of a
# fault) and its output matches REGEX (grep -E). Start-up before MARKER may
# take up to 300 s: a loaded machine is slow to start ranks, which is not what
# this checks.
limit=$1; marker=$2; pattern=$3; shift 3
log=$(mktemp); "$@" >"$log" 2>&1 & pid=$!
waited=0
while kill -0 "$pid" 2>/dev/null && ! grep -Fq -- "$marker" "$log"; do
  sleep 0.1; waited=$((waited + 1))
  if [ "$waited" -ge 3000 ]; then kill -9 "$pid"; cat "$log"; rm -f "$log"; echo "expect_failure_after: no /$marker/ after 300 s"; exit 1; fi
done
start=$(date +%s.%N); ticks=0
while kill -0 "$pid" 2>/dev/null; do
  sleep 0.1; ticks=$((ticks + 1))
  if [ "$ticks" -ge $((limit * 10)) ]; then kill -9 "$pid"; cat "$log"; rm -f "$log"; echo "expect_failure_after: still running ${limit}s after the fault (hang)"; exit 1; fi
done
wait "$pid"; code=$?
elapsed=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
cat "$log"
if ! grep -Fq -- "$marker" "$log"; then rm -f "$log"; echo "expect_failure_after: exited before /$marker/"; exit 1; fi
if [ "$code" -eq 0 ]; then rm -f "$log"; echo "expect_failure_after: exit code 0, expected a failure"; exit 1; fi
if ! grep -Eq -- "$pattern" "$log"; then rm -f "$log"; echo "expect_failure_after: output lacks /$pattern/"; exit 1; fi
rm -f "$log"
echo "expect_failure_after: exit code $code ${elapsed}s after the fault, and /$pattern/ as expected"
