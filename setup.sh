#!/usr/bin/env bash
# One entry point for a fresh Debian machine (run as root):
#   ./setup.sh run      install, then run the helper on the bundled example config
#   ./setup.sh test     install (system packages too), then run the whole test suite
#   ./setup.sh install  just install the development environment (./.venv)
#   ./setup.sh monitor-demo
#                       install the monitor, then serve its dashboard on generated
#                       traffic from three proxies (http://127.0.0.1:8080/)
#   ./setup.sh system-install
#                       install for Squid: a venv under $PREFIX (default
#                       /opt/squidguard-bloom) built on Debian's python3, which
#                       Squid's "proxy" user can execute, and the commands
#                       squidguard-bloom, squidguard-bloom-ship and
#                       squidguard-bloom-monitor in $BINDIR (default /usr/bin);
#                       EXTRAS=monitor adds the monitor's PostgreSQL driver and
#                       aiohttp (its dashboard), EXTRAS=redis the dependencies of a
#                       welcome state shared on Redis (EXTRAS=monitor,redis both)
# The development environment is ./.venv; system packages come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
# System packages the test suite drives for real (Squid, squidGuard, sshd, the
# monitor's PostgreSQL, Redis and openssl for its TLS test, the dashboard's headless Chromium
# and its driver), GoAccess, which bench/monitor_ingest.py runs beside the monitor, and
# clang-format, which checks the style of csrc/.
TEST_DEBS=(squid squidguard openssh-server openssh-client curl python3 python3-venv
           postgresql goaccess clang-format redis-server redis-tools openssl
           chromium chromium-driver)

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

# Squid runs helpers as "proxy": a venv on a Python under /root (pyenv) is not
# executable for it, and "venv/bin/python -m pkg" loses the venv under Squid,
# so the helper gets its own venv on Debian's python3 and a shebang'd script.
system_install() {
    local prefix=${PREFIX:-/opt/squidguard-bloom} bindir=${BINDIR:-/usr/bin}
    install_debs python3 python3-venv
    install_python ""
    local wheels
    wheels=$(mktemp -d)
    "$VENV/bin/python" -m pip wheel -q --no-deps -w "$wheels" . >/dev/null
    [ -x "$prefix/venv/bin/python" ] || /usr/bin/python3 -m venv "$prefix/venv"
    "$prefix/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$prefix/venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheels"/*.whl
    local wheel
    wheel=$(ls "$wheels"/*.whl)
    "$prefix/venv/bin/python" -m pip install -q "$wheel${EXTRAS:+[$EXTRAS]}"
    rm -rf "$wheels"
    chmod -R a+rX "$prefix"
    mkdir -p "$bindir"
    ln -sf "$prefix/venv/bin/squidguard-bloom" "$bindir/squidguard-bloom"
    ln -sf "$prefix/venv/bin/squidguard-bloom-ship" "$bindir/squidguard-bloom-ship"
    ln -sf "$prefix/venv/bin/squidguard-bloom-monitor" "$bindir/squidguard-bloom-monitor"
    echo "setup.sh: installed $bindir/squidguard-bloom (venv in $prefix/venv)" >&2
}

cmd=${1:-run}
shift || true
case "$cmd" in
    install)
        install_python "[test]"
        ;;
    run)
        install_python ""
        if [ $# -gt 0 ]; then  # ./setup.sh run -c /etc/squidguard/squidGuard.conf ...
            exec "$VENV/bin/squidguard-bloom" "$@"
        fi
        # The helper on the bundled example config and lists, fed a few
        # request lines as Squid would send them: a client's first visit
        # (welcome page), its next request (pass), blacklisted pages
        # (redirect to the block page, also for HTTPS CONNECT), a rewrite.
        printf '%s\n' \
            "http://www.example.com/ 192.168.5.20/- - GET myip=192.168.0.1 myport=3128" \
            "http://www.example.com/news 192.168.5.20/- - GET myip=192.168.0.1 myport=3128" \
            "http://ads.example.com/banner.gif 192.168.5.20/- - GET myip=192.168.0.1 myport=3128" \
            "http://www.example.com/ 10.1.2.3/pc7.lan - GET" \
            "porn.test:443 10.1.2.3/pc7.lan - CONNECT" \
            "http://www.example.com/?utm_source=mail 10.1.2.3/pc7.lan - GET" \
            | "$VENV/bin/squidguard-bloom" --example --explain
        ;;
    test)
        install_debs "${TEST_DEBS[@]}"
        install_python "[test]"
        "$VENV/bin/ruff" check .
        "$VENV/bin/mypy"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    monitor-demo)
        install_python "[monitor]"
        exec "$VENV/bin/squidguard-bloom-monitor" demo "$@"
        ;;
    system-install)
        system_install
        ;;
    *)
        echo "usage: ./setup.sh run|test|install|monitor-demo|system-install" >&2
        exit 2
        ;;
esac
