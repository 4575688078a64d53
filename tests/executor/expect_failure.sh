#!/bin/sh
# expect_failure.sh SECONDS REGEX COMMAND...: passes when COMMAND exits
# non-zero within SECONDS and its output matches REGEX (grep -E).
limit=$1; pattern=$2; shift 2
output=$(timeout "$limit" "$@" 2>&1); code=$?
printf '%s\n' "$output"
if [ "$code" -eq 0 ]; then echo "expect_failure: exit code 0, expected a failure"; exit 1; fi
if [ "$code" -eq 124 ]; then echo "expect_failure: still running after ${limit}s (hang)"; exit 1; fi
if ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then echo "expect_failure: output lacks /$pattern/"; exit 1; fi
echo "expect_failure: exit code $code and /$pattern/ as expected"
