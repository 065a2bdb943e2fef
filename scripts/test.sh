#!/usr/bin/env bash
# Install what the tests need (Debian's openssh-server and nginx, the package with its test
# extras, which include the real git-annex) and run ruff (lint and format), mypy, the import
# contracts (lint-imports, configured in pyproject.toml) and the whole test suite (pytest-xdist).
# Idempotent; quiet on success apart from pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"

apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        sudo="sudo -n"
    fi
    $sudo apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            openssh-server nginx rsync git-remote-gcrypt gnupg tmux >/dev/null
}
# sshd, nginx (in front of p2phttp: TLS and basic auth), and rsync/git-remote-gcrypt/gpg for
# the gcrypt remotes (the legacy shell commands), are required: those tests fail in CI without
# them. tmux only drives the console demo test. The tests run their own nginx (own prefix,
# loopback port, `daemon off`); the package's service is not used.
if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/sbin/nginx ] || ! command -v rsync >/dev/null 2>&1 ||
    ! command -v git-remote-gcrypt >/dev/null 2>&1 || ! command -v gpg >/dev/null 2>&1; then
    apt_install
elif ! command -v tmux >/dev/null 2>&1; then
    apt_install || echo "warning: could not install tmux" >&2
fi

# Debian/Ubuntu's Python refuses pip installs outside a virtual environment (PEP 668's
# EXTERNALLY-MANAGED marker): there, unless one is active, make and use .venv.
externally_managed() {
    "$1" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if not in_venv and os.path.exists(marker) else 1)
PY
}
if [ -n "${ANNEXTUI_VENV:-}" ] || externally_managed "$PYTHON"; then
    venv="${ANNEXTUI_VENV:-.venv}"
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv "$venv" || {
            echo "error: pip refuses a system install and '$PYTHON -m venv' failed;" \
                "install python3-venv (apt) or activate a virtual environment" >&2
            exit 1
        }
    fi
    PYTHON="$(cd "$venv/bin" && pwd)/python"
    export PATH="$(dirname "$PYTHON"):$PATH" # lint-imports and the console scripts
fi

PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    "$PYTHON" -m pip install -q -e '.[test]'

# Run every check even when an earlier one fails; the exit status is the first failure's.
status=0
step() {
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$rc
    fi
    return 0
}

# lint-imports lists every kept contract: print its report only when one is broken.
quiet() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" >&2
    fi
    return "$rc"
}

step "$PYTHON" -m ruff check -q .
step "$PYTHON" -m ruff format --check -q .
step "$PYTHON" -m mypy --no-error-summary
step quiet lint-imports --no-logo --no-cache

# worksteal: each worker starts on a contiguous share (a module's tests, and its module-scoped
# cluster, mostly stay on one worker) and an idle worker takes half of a busy one's queue, so
# the run does not end with one worker alone on a tail of long tests.
rc=0
"$PYTHON" -m pytest -n auto --dist worksteal -q "$@" || rc=$?
if [ "$rc" -eq 5 ]; then  # no tests collected
    rc=0
fi
if [ "$status" -eq 0 ]; then
    status=$rc
fi
exit "$status"
