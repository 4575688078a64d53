#!/usr/bin/env bash
# End-to-end checks of the plait CLI: exit codes and one-line errors.
# Usage: cli_test.sh PLAIT_BINARY CASE
set -u
plait=$1
case_name=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL [$case_name]: $*" >&2; exit 1; }
# expect CODE CMD... : runs CMD, checks its exit code, keeps stdout/stderr.
expect() {
  local want=$1; shift
  "$@" >out.txt 2>err.txt
  local got=$?
  [ "$got" = "$want" ] || fail "'$*' exited $got, expected $want; stderr: $(cat err.txt)"
}
# value KEY FILE: a number from a JSON file (flat "key": number).
value() { grep -o "\"$1\": *[-0-9.e+]*" "$2" | head -1 | sed 's/.*: *//'; }
less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

case "$case_name" in
  schedule_validate_inspect)
    expect 0 "$plait" schedule --kind mgrit --layers 64 --levels 3 --cf 2 --relax FCF --fwd-iters 2 --bwd-iters 1 \
      --ranks 4 --model transformer --d-model 64 --heads 4 --seq 16 --batch 2 -o program.json
    expect 0 "$plait" validate program.json
    grep -q "program.json: valid (4 ranks)" out.txt || fail "validate output: $(cat out.txt)"
    expect 0 "$plait" inspect program.json
    grep -q "^critical path: [0-9]* block steps (serial: 128)" out.txt || fail "inspect output: $(cat out.txt)"
    expect 0 "$plait" inspect --json program.json
    grep -q '"critical_path_steps"' out.txt || fail "inspect --json output"
    grep -q '"optimizer": *0,' out.txt || fail "a block stack counts no optimizer by default: $(cat out.txt)"
    # A full GPT step's update op is Adam: its two fp32 moments count by default (--optimizer auto).
    expect 0 "$plait" schedule --kind 1f1b -P 2 -M 2 --model gpt --vocab 64 -N 4 --d-model 32 --heads 4 \
      --seq 8 --batch 4 -o gpt.json
    expect 0 "$plait" inspect --json gpt.json
    adam=$(value optimizer out.txt) parameters=$(value parameters out.txt)
    [ "$adam" = $((2 * parameters)) ] || fail "GPT optimizer bytes $adam, expected 2 x $parameters"
    expect 0 "$plait" inspect --json --optimizer none gpt.json
    [ "$(value optimizer out.txt)" = 0 ] || fail "--optimizer none: $(cat out.txt)"
    ;;
  validate_rejects_truncated)
    expect 0 "$plait" schedule --layers 16 --ranks 2 -o program.json
    head -c 500 program.json > broken.json
    expect 1 "$plait" validate broken.json
    [ "$(wc -l < err.txt)" = 1 ] || fail "error is not one line: $(cat err.txt)"
    grep -q "^plait: broken.json: not valid JSON: byte" err.txt || fail "message: $(cat err.txt)"
    ;;
  validate_rejects_tag_mismatch)
    expect 0 "$plait" schedule --layers 16 --ranks 2 --model linear -o program.json
    # The first message in the file is one of rank 0's sends of u[0][*] (tag 64).
    sed 's/"tag":64/"tag":65/' program.json > bad.json
    cmp -s program.json bad.json && fail "mutation did not apply"
    expect 1 "$plait" validate bad.json
    grep -q "^plait: bad.json: rank 1, section .*recv from rank 0 expects tag 64 (8 bytes) but the matching send has tag 65" \
      err.txt || fail "message: $(cat err.txt)"
    ;;
  missing_file)
    expect 1 "$plait" inspect does-not-exist.json
    grep -qx "plait: does-not-exist.json: cannot open" err.txt || fail "message: $(cat err.txt)"
    ;;
  usage_errors)
    expect 2 "$plait" schedule --layers many -o x.json
    expect 2 "$plait" frobnicate
    expect 2 "$plait" schedule --relax FFF -o x.json
    expect 0 "$plait" --help
    ;;
  bad_settings)
    expect 1 "$plait" schedule --layers 16 --levels 3 --cf 2 --ranks 17 -o x.json
    grep -qx "plait: ranks: 17 ranks but only 16 layers: every rank needs at least one layer" err.txt ||
      fail "message: $(cat err.txt)"
    expect 1 "$plait" schedule --layers 16 --levels 0 -o x.json
    grep -qx "plait: forward.levels: must be >= 1" err.txt || fail "message: $(cat err.txt)"
    ;;
  solve_converges)
    expect 0 "$plait" solve --problem mlp --layers 64 --levels 3 --cf 2 --relax FCF --ranks 3 --tol 1e-10 --json
    error=$(value max_abs_error_vs_serial out.txt)
    iterations=$(value iterations out.txt)
    less_than "$error" 1e-9 || fail "error $error"
    less_than "$iterations" 20 || fail "iterations $iterations"
    expect 0 "$plait" solve --layers 32 --levels 2 --cf 4 --iters 3
    grep -q "^max |error| vs serial" out.txt || fail "solve table: $(cat out.txt)"
    ;;
  compare_and_export)
    write_trace() {  # write_trace FILE SOURCE SCALE
      cat > "$1" <<JSON
{"format": "plait.trace", "version": 1, "source": "$2", "ranks": 2, "events": [
 {"rank": 0, "section": 0, "repetition": 0, "op": 0, "cost_key": "block.fwd", "level": 0, "point": 1,
  "start": 0, "end": $3, "bytes": 0, "peer": -1},
 {"rank": 1, "section": 0, "repetition": 0, "op": 0, "cost_key": "block.fwd", "level": 0, "point": 2,
  "start": $3, "end": 2, "bytes": 0, "peer": -1}]}
JSON
    }
    write_trace measured.json measured 1.0
    write_trace predicted.json predicted 1.5
    expect 0 "$plait" compare measured.json predicted.json
    grep -q "^block.fwd .* +0.0%" out.txt || fail "compare table: $(cat out.txt)"
    expect 0 "$plait" compare --json measured.json predicted.json
    grep -q '"relative_error": 0' out.txt || fail "compare json: $(cat out.txt)"
    expect 0 "$plait" export measured.json -o perfetto.json
    grep -q '"traceEvents"' perfetto.json || fail "perfetto export"
    sed 's/"end": 2,/"end": "late",/' measured.json > bad.json
    expect 1 "$plait" compare bad.json predicted.json
    grep -qx 'plait: bad.json: /events/1/end: expected a number, got string' err.txt || fail "message: $(cat err.txt)"
    ;;
  *) fail "unknown case" ;;
esac
echo "ok [$case_name]"
