#!/usr/bin/env bash
# Runs the fenced blocks of one documentation page whose info string is
# `sh runnable`, in order, as a user following the page would: in a fresh
# temporary directory holding links to the repository's top-level entries
# (and `build` linked to the build tree), with the built binaries first on PATH.
# A failing block is reported as `PAGE:LINE: ...` with the command that failed.
# Usage: run_doc_blocks.sh REPO_ROOT APPS_DIR BUILD_DIR PAGE (PAGE relative to REPO_ROOT)
set -uo pipefail
if (($# != 4)); then
  echo "usage: run_doc_blocks.sh REPO_ROOT APPS_DIR BUILD_DIR PAGE" >&2
  exit 2
fi
repo=$(cd "$1" && pwd) apps=$(cd "$2" && pwd) build=$(cd "$3" && pwd) page=$4
[[ -f $repo/$page ]] || { echo "$page: no such page" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/plait-doc.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/cwd" "$work/blocks"
for entry in "$repo"/*; do
  name=$(basename "$entry")
  [[ $name == build ]] || ln -s "$entry" "$work/cwd/$name"
done
ln -s "$build" "$work/cwd/build"

# Split the page into blocks: blocks/N.sh and blocks/N.line (the fence's line).
# A block's indentation (inside a list item) is the fence's and is removed.
awk -v dir="$work/blocks" '
  !inside && /^[ \t]*```sh runnable[ \t]*$/ {
    inside = 1; n++; indent = match($0, /[^ \t]/) - 1
    print NR > (dir "/" n ".line"); close(dir "/" n ".line"); next
  }
  inside && /^[ \t]*```[ \t]*$/ { inside = 0; close(dir "/" n ".sh"); next }
  inside { print substr($0, indent + 1) > (dir "/" n ".sh") }
  END { if (inside) { print "unterminated runnable block" > "/dev/stderr"; exit 1 } }
' "$repo/$page" || { echo "$page: unterminated runnable block" >&2; exit 1; }

blocks=$(find "$work/blocks" -name '*.sh' | wc -l)
if ((blocks == 0)); then
  echo "$page: no block marked sh runnable" >&2
  exit 1
fi

export PATH="$apps:$PATH" CI=true
status=0
for ((n = 1; n <= blocks; n++)); do
  fence=$(cat "$work/blocks/$n.line")
  # The prelude is 2 lines: a block's line k is the script's line k + 2.
  { printf 'set -eE -o pipefail\n'
    printf 'trap '\''echo "$LINENO $BASH_COMMAND" > "%s"'\'' ERR\n' "$work/failed"
    cat "$work/blocks/$n.sh"; } > "$work/script.sh"
  rm -f "$work/failed"
  start=$SECONDS
  (cd "$work/cwd" && bash "$work/script.sh") > "$work/output" 2>&1
  code=$?
  if ((code == 0)); then
    echo "$page:$fence: block $n of $blocks passed ($((SECONDS - start)) s)"
    continue
  fi
  status=1
  if [[ -s $work/failed ]]; then
    read -r line command < "$work/failed"
    echo "$page:$((fence + line - 2)): runnable block $n failed (exit $code) at: $command"
  else
    echo "$page:$fence: runnable block $n failed (exit $code)"
  fi
  echo "--- its output (last 40 lines):"
  tail -n 40 "$work/output"
  echo "---"
done
exit $status
