#!/usr/bin/env bash
# The two set-up-and-go commands of the README:
#   ./tasks.sh simulate [simulate options]   -> chaos session on the built-in simulator + diagrams
#   ./tasks.sh test [pytest options]         -> the whole test suite
# Both create (or reuse) ./.venv and install the project into it.
set -euo pipefail
cd "$(dirname "$0")"

need_dot() {
  if command -v dot >/dev/null 2>&1; then return 0; fi
  echo "graphviz 'dot' not found: installing Debian's graphviz" >&2
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "error: 'dot' is missing and this user cannot install packages; run: apt-get install graphviz" >&2
      exit 1
    fi
  fi
  $SUDO apt-get install -y -q graphviz >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q graphviz >/dev/null; }
}

venv() {
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then "$py" -m venv .venv; fi
  # Reinstall only when the project definition changed since the last install.
  local stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]"
    rm -f .venv/.installed-*; touch "$stamp"
  fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
  simulate)
    need_dot; venv
    .venv/bin/atomic-orders diagrams
    .venv/bin/atomic-orders simulate --json out/session.json --events out/events.jsonl "$@"
    ;;
  test)
    need_dot; venv
    .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./tasks.sh simulate [options] | ./tasks.sh test [pytest options]" >&2
    exit 2
    ;;
esac
