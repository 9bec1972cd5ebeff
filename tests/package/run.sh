#!/usr/bin/env bash
# The Debian package tests, as root: build the .deb (scripts/package, under the build
# lock), then
#   inspect.sh    dpkg-deb -I/-c, Depends against dpkg-shlibdeps, conffiles, md5sums,
#                 maintainer scripts, binary, man page, lintian       (~30 s)
#   install.sh    dpkg -i/-r/-P in a throwaway overlay root, systemd-analyze verify and
#                 security, the unit's command lines as its user       (~20 s)
#   systemd.sh    a real systemd booted in namespaces of its own: systemctl enable/start/
#                 reload/stop of joingate.service, etcd.service held back by the drop-in
#                 until admitted, dpkg -P                              (~10 s)
#   gate_e2e.sh   the units' command lines against a real etcd cluster: etcd held back
#                 until admitted, reload, stop                         (~60 s)
# Ends with "N passed, N failed"; exits non-zero when anything failed.
#
#   tests/package/run.sh [inspect|install|systemd|gate]...   default: all four
#   JOINGATE_DEB=path.deb        test that package instead of building one
#   JG_PKG_GATE_TIMEOUT=180      seconds for gate_e2e.sh
#
# Needs: dpkg-dev (dpkg-shlibdeps), lintian, systemd (systemd-analyze), etcd-server and
# etcd-client, util-linux, iproute2, curl, jq, openssl, man-db, and what scripts/deps
# installs to build joingate.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
passed=0
failed=0
results=()

parts=("$@")
((${#parts[@]})) || parts=(inspect install systemd gate)
for p in "${parts[@]}"; do
    case $p in
    inspect | install | systemd | gate) ;;
    *) echo "tests/package/run.sh: unknown part '$p' (inspect, install, systemd, gate)" >&2; exit 2 ;;
    esac
done

record() { # PASS|FAIL TEXT
    results+=("$1  $2")
    if [[ $1 == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# run_part NAME COMMAND...: its "PASS x" / "FAIL x: why" lines count one each; a part that
# fails without saying what counts as one failure.
run_part() {
    local name=$1 out rc=0 t0=$SECONDS line fails=0
    shift
    echo "======== package: $name"
    out=$(mktemp /tmp/jg-pkg-run.XXXXXX)
    "$@" | tee "$out" || rc=${PIPESTATUS[0]}
    while IFS= read -r line; do
        case $line in
        "PASS "*) record PASS "${line#PASS }" ;;
        "FAIL "*) record FAIL "${line#FAIL }"; fails=$((fails + 1)) ;;
        esac
    done <"$out"
    rm -f "$out"
    if ((rc != 0 && fails == 0)); then
        record FAIL "$name (exit $rc$( ((rc == 124)) && echo ", timed out"))"
    fi
    echo "======== package: $name: exit $rc in $((SECONDS - t0))s"
}

gate() {
    local rc=0
    timeout -k 20 "${JG_PKG_GATE_TIMEOUT:-180}" bash "$here/gate_e2e.sh" "$deb" || rc=$?
    if ((rc == 0)); then
        echo "PASS gate: etcd.service held back by joingate wait until admitted, reload on SIGHUP, joined through joingate, SIGTERM exit 0"
    else
        echo "FAIL gate: gate_e2e.sh exit $rc$( ((rc == 124)) && echo " (timed out)")"
    fi
    return "$rc"
}

if [[ -n ${JOINGATE_DEB:-} ]]; then
    deb=$JOINGATE_DEB
    [[ -f $deb ]] && record PASS "build: using JOINGATE_DEB=$deb" || record FAIL "build: no such file $deb"
else
    echo "======== package: build (scripts/package)"
    deb=$("$repo/scripts/package" | tail -n1)
    if [[ -n $deb && -f $deb ]]; then
        record PASS "build: scripts/package made $(basename "$deb")"
    else
        record FAIL "build: scripts/package"
        deb=
    fi
fi

if [[ -n $deb && -f $deb ]]; then
    for p in "${parts[@]}"; do
        case $p in
        inspect) run_part inspect bash "$here/inspect.sh" "$deb" ;;
        install) run_part install bash "$here/install.sh" "$deb" ;;
        systemd) run_part systemd timeout -k 10 120 bash "$here/systemd.sh" "$deb" ;;
        gate) run_part gate gate ;;
        esac
    done
    echo "package: $(basename "$deb"): $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"
fi

echo "======== package results"
printf '  %s\n' "${results[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
