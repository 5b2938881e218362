#!/usr/bin/env bash
# One entry point for a fresh Debian machine (run as root):
#   ./setup.sh run   install, then run the helper on the bundled example config
#   ./setup.sh test  install (system packages too), then run the whole test suite
#   ./setup.sh install  just install
# Everything lands in ./.venv; system packages come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
# System packages the test suite drives for real (Squid, squidGuard, sshd).
TEST_DEBS=(squid squidguard openssh-server openssh-client curl)

install_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup.sh: installing ${missing[*]} with apt-get" >&2
    # Installing must not start the distribution's own squid/sshd services:
    # tests start their own on 127.0.0.1 with temporary configs.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created" = 1 ] && rm -f "$policy"
    return 0
}

install_python() {
    local extra=$1
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    # Editable, so the compiled _bloom lands beside the sources that the
    # tests import; the build itself runs build_ext.py through setup.py.
    "$VENV/bin/python" -m pip install -q -e ".$extra"
}

cmd=${1:-run}
shift || true
case "$cmd" in
    install)
        install_python "[test]"
        ;;
    run)
        install_python ""
        exec "$VENV/bin/python" -m squidguard_bloom.demo "$@"
        ;;
    test)
        install_debs "${TEST_DEBS[@]}"
        install_python "[test]"
        "$VENV/bin/ruff" check .
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./setup.sh run|test|install" >&2
        exit 2
        ;;
esac
