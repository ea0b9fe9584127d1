#!/usr/bin/env bash
# The two set-up-and-go commands of the README:
#   ./tasks.sh simulate [simulate options]   -> chaos session on the built-in simulator + diagrams + HTML report
#   ./tasks.sh test [pytest options]         -> the whole test suite
# Both create (or reuse) ./.venv and install the project into it: `simulate` only what it needs,
# `test` the dev extra too. `./tasks.sh venv-check` says whether ./.venv would be reused or rebuilt.
set -euo pipefail
cd "$(dirname "$0")"

# Installs the Debian package $1, as root or through sudo. Returns 0 when done and 3 when this user
# cannot install packages (no root, no sudo); a failed apt-get ends the script, naming the package.
apt_install() {
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else return 3; fi
  fi
  if $SUDO apt-get install -y -q "$1" >/dev/null 2>&1; then return 0; fi
  if $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "$1" >/dev/null; then return 0; fi
  echo "error: apt-get install $1 failed" >&2
  exit 1
}

need_dot() {
  if command -v dot >/dev/null 2>&1; then return 0; fi
  echo "graphviz 'dot' not found: installing Debian's graphviz" >&2
  apt_install graphviz && return 0
  echo "error: 'dot' is missing and this user cannot install packages; run: apt-get install graphviz" >&2
  exit 1
}

# The browser tests/report opens the HTML report in: Debian's chromium (never a downloaded one).
need_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  echo "chromium not found: installing Debian's chromium (for the HTML report's browser test)" >&2
  apt_install chromium && return 0
  echo "warning: 'chromium' is missing and this user cannot install packages; the browser test is skipped" \
    "(apt-get install chromium)" >&2
}

# The interpreter a .venv is made with: $PYTHON, else the first of python3, python3.13, python3.12,
# python3.11 on PATH that is 3.11 or newer.
choose_python() {
  local py candidates=(python3 python3.13 python3.12 python3.11)
  if [ -n "${PYTHON:-}" ]; then candidates=("$PYTHON"); fi
  for py in "${candidates[@]}"; do
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      echo "$py"; return 0
    fi
  done
  echo "error: atomic-orders needs Python 3.11 or newer; tried ${candidates[*]}: none is (or runs);" \
    "set PYTHON to one, e.g. PYTHON=python3.11 ./tasks.sh ..." >&2
  return 1
}

# "3.11 /its/base/prefix" of an interpreter, or nothing when it does not run.
py_identity() {
  "$1" -c 'import os, sys; print("%d.%d" % sys.version_info[:2], os.path.realpath(sys.base_prefix))' 2>/dev/null \
    || true
}

# Can ./.venv be reused with interpreter $1? Prints one line saying what happens; status 0: reuse it.
# A .venv made by another Python (another version or install, or one whose Python is gone) is rebuilt:
# its compiled packages and its pip belong to that Python.
venv_check() {
  local py="$1" want have
  want="$(py_identity "$py")"
  if [ ! -e .venv ]; then
    echo "creating .venv with $py (Python ${want%% *})"; return 1
  fi
  have="$(py_identity .venv/bin/python)"
  if [ -z "$have" ]; then
    echo "rebuilding .venv with $py (Python ${want%% *}): its own python does not run"; return 1
  fi
  if [ "$have" != "$want" ]; then
    echo "rebuilding .venv with $py (Python ${want%% *}, ${want#* }): it was made by Python ${have%% *} (${have#* })"
    return 1
  fi
  echo ".venv is reused: Python ${have%% *} (${have#* })"
}

# Make ./.venv ready for $1: "base" (the project and its dependencies) or "dev" (plus the dev extra).
# Installs only when that set was not installed for this pyproject.toml yet (one stamp per set).
venv() {
  local set="$1" py status hash spec what why f
  py="$(choose_python)"
  if ! status="$(venv_check "$py")"; then
    echo "$status" >&2
    rm -rf .venv
    "$py" -m venv .venv
  fi
  hash="$(sha1sum pyproject.toml | cut -c1-12)"
  [ -f ".venv/.installed-$set-$hash" ] && return 0
  spec="." what="atomic-orders and its dependencies"
  if [ "$set" = dev ]; then spec=".[dev]" what="the test tools (the dev extra: pytest, Hypothesis, mypy, ruff)"; fi
  if compgen -G ".venv/.installed-*-$hash" >/dev/null; then why="for ./tasks.sh $cmd"
  elif compgen -G ".venv/.installed-*" >/dev/null; then why="pyproject.toml changed"
  else why="first run"; fi
  echo "installing $what into .venv ($why)" >&2
  # pip's progress and build chatter go to a log, shown only when the install fails.
  if ! .venv/bin/python -m pip install --disable-pip-version-check -q -e "$spec" >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "error: pip install -e '$spec' failed (its output is above, and in .venv/pip.log)" >&2
    exit 1
  fi
  for f in .venv/.installed-*; do
    case "$f" in .venv/.installed-base-"$hash" | .venv/.installed-dev-"$hash") ;; *) rm -f "$f" ;; esac
  done
  touch ".venv/.installed-$set-$hash"
  if [ "$set" = dev ]; then touch ".venv/.installed-base-$hash"; fi  # the dev set includes the project
}

cmd="${1:-}"; shift || true
case "$cmd" in
  simulate)
    need_dot; venv base
    .venv/bin/atomic-orders diagrams
    .venv/bin/atomic-orders simulate --json out/session.json --events out/events.jsonl --html out/report.html "$@"
    ;;
  test)
    need_dot; need_chromium; venv dev
    .venv/bin/python -m pytest "$@"
    ;;
  venv-check)
    py="$(choose_python)"
    venv_check "$py"
    ;;
  *)
    echo "usage: ./tasks.sh simulate [options] | ./tasks.sh test [pytest options] | ./tasks.sh venv-check" >&2
    exit 2
    ;;
esac
