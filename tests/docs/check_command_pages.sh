#!/usr/bin/env bash
# Every command `plait --help` lists has a page docs/commands/<command>.md, and
# the page and `plait <command> --help` name the same options: every option the
# help names (its options and its footer) is in a table row of the page, and
# every option in the first column of the page's `## Options` table is in the help
# (a page may list the options a command passes on in a table of another section).
# Usage: check_command_pages.sh PLAIT COMMANDS_DIR
set -uo pipefail
if (($# != 2)); then
  echo "usage: check_command_pages.sh PLAIT COMMANDS_DIR" >&2
  exit 2
fi
plait=$1 pages=$2

commands=$("$plait" --help | awk '/^Subcommands:/ { listing = 1; next } listing && /^  [a-z]/ { print $1 }')
if [[ -z $commands ]]; then
  echo "$plait --help: lists no commands" >&2
  exit 1
fi

# Options (-x, --long-name) in the given text, one a line, sorted and unique.
options_in() { grep -oE -- '(^|[^A-Za-z0-9-])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[^-]+//' | grep -vx -- '--help\|-h' | sort -u; }

status=0
for command in $commands; do
  page=$pages/$command.md
  if [[ ! -f $page ]]; then
    echo "$page: missing: plait $command has no page"
    status=1
    continue
  fi
  # The help's options (the names that start its option lines, not the options
  # its descriptions mention) and those its footer passes on (`plait-exec options: ...`).
  help_options=$("$plait" "$command" --help | awk '
    /^[a-z-]+ options:/ { footer = 1 }
    footer { print; next }
    /^  -[^ ]/ { print $1 }' | tr ',' ' ' | options_in)
  # The first cell of every table row on the page, and of the `## Options` table.
  rows=$(awk -F'|' '/^\|/ { print $2 }' "$page" | options_in)
  if ! grep -qx '## Options' "$page"; then
    echo "$page: no \`## Options\` section"
    status=1
    continue
  fi
  table=$(awk -F'|' '/^## / { inside = ($0 == "## Options") } inside && /^\|/ { print $2 }' "$page" | options_in)
  for option in $help_options; do
    if ! grep -qx -- "$option" <<< "$rows"; then
      echo "$page: plait $command --help names $option, the page's tables do not"
      status=1
    fi
  done
  for option in $table; do
    if ! grep -qx -- "$option" <<< "$help_options"; then
      echo "$page: the Options table names $option, plait $command --help does not"
      status=1
    fi
  done
done
((status == 0)) && echo "$(wc -w <<< "$commands") command pages agree with their --help"
exit $status
