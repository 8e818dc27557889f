#!/usr/bin/env bash
# Prints the path of a working promtool, fetching it if needed.
#
# promtool tests the alert rules (infra/prometheus). It comes from Debian's
# prometheus package: the .deb is downloaded with apt-get (no install, no
# service started) and unpacked into infra/.cache/prometheus, so a second run
# downloads nothing. A promtool already on PATH is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=infra/.cache/prometheus
cached="${cache}/usr/bin/promtool"

if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
fi
if [ -x "${cached}" ]; then
    echo "${PWD}/${cached}"
    exit 0
fi

fail() {
    echo "promtool: cannot fetch it ($1)." >&2
    echo "promtool: install Debian's prometheus package (apt-get install prometheus)" >&2
    echo "promtool: or put promtool on PATH; the alert-rule tests need it." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "no apt-get on this machine"
command -v dpkg-deb >/dev/null 2>&1 || fail "no dpkg-deb on this machine"
download="${cache}/download"
mkdir -p "${download}"
if ! (cd "${download}" && apt-get download prometheus >&2 2>/dev/null); then
    # A fresh machine may have no package lists yet.
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update >&2 || fail "apt-get update failed"
    fi
    (cd "${download}" && apt-get download prometheus >&2) \
        || fail "apt-get download prometheus failed"
fi
deb=$(ls "${download}"/prometheus_*.deb | head -n 1)
dpkg-deb -x "${deb}" "${cache}" || fail "dpkg-deb could not unpack ${deb}"
rm -rf "${download}"
"${cached}" --version >/dev/null 2>&1 || fail "the unpacked promtool does not run"
echo "${PWD}/${cached}"
