#!/usr/bin/env bash
# The etcd gate of the package on a real etcd 3.4 cluster (tests/e2e/lib.sh: members in
# network namespaces, a joingate beside each). systemd is not PID 1 on the test machine, so
# this runs the command lines of the rendered units as systemd would, in the order it
# would: joingate.service (ExecStartPre, ExecStart, ExecReload) and Debian's own
# /lib/systemd/system/etcd.service with the package's drop-in
# (/usr/share/joingate/etcd.service.d/joingate.conf): Environment= of both units, then
# the EnvironmentFile (the member's /etc/default/etcd, written here), every
# ExecStartPre in turn (a failing one stops the start, etcd's ExecStart never runs), then
# ExecStart. Member m4 is the Debian machine: its joingate config is the package's
# example /etc/joingate/joingate.toml with the values marked EDIT filled in.
#
#   1. m1..m3 (3.4.23, mode both) run; m4 is `member add`ed; its config declares 3.3.0.
#   2. start joingate.service, then etcd.service: `joingate wait` reports
#      older_than_leader and fails after its timeout; etcd is not started; the cluster
#      stays healthy, m4 stays unstarted.
#   3. the admin sets member.version = "3.5.0" (newer than the leader: admissible) and
#      reloads joingate.service (ExecReload: check-config, SIGHUP): etcd.service passes
#      `joingate wait` but check-etcd-version refuses the 3.4.23 binary; etcd is not
#      started. Then member.version = "3.4.23" and reload again.
#   4. start etcd.service again: `joingate wait` says admitted, etcd starts with its peer
#      listener on 127.0.0.1:2381, its peer traffic through joingate, and joins: it
#      serves the data written before; `joingate status` on m4 shows all four members.
#   5. stop: etcd, then joingate (SIGTERM): exit 0.
# The one liberty taken: the drop-in's `joingate wait --timeout 10m` runs with a shorter
# timeout (JG_PKG_WAIT_REFUSED, default 10s; JG_PKG_WAIT_ADMITTED, default 60s).
#
#   tests/package/gate_e2e.sh [DEB]       as root; about 40 s
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/package/lib.sh
source "$here/lib.sh"

deb=${1:-$(pkg_deb)}
etcd_unit=/lib/systemd/system/etcd.service
[[ -f $etcd_unit ]] || { echo "FAIL gate: Debian's $etcd_unit is missing (apt-get install etcd-server)"; exit 1; }
work=$(mktemp -d /tmp/jg-pkg-gate.XXXXXX)
dpkg-deb -x "$deb" "$work/root" || { rm -rf "$work"; echo "FAIL gate: cannot unpack $deb"; exit 1; }
export JOINGATE_BIN=$work/root/usr/bin/joingate

# sidecars of m1..m3 learn roles and versions quickly (lib.sh versions that know these)
export JG_VIEW_INTERVAL=${JG_VIEW_INTERVAL:-1s} JG_PROBE_INTERVAL=${JG_PROBE_INTERVAL:-1s}
# shellcheck source=tests/e2e/lib.sh
source "$PKG_REPO/tests/e2e/lib.sh"
# lib.sh's cleanup (run by its EXIT trap) also removes the unpacked package
eval "$(declare -f jg_cleanup | sed '1s/^jg_cleanup/jgpkg__lib_cleanup/')"
jg_cleanup() {
    jgpkg__lib_cleanup
    rm -rf "$work"
}

unit=$work/root/lib/systemd/system/joingate.service
dropin=$work/root/usr/share/joingate/etcd.service.d/joingate.conf
example=$work/root/etc/joingate/joingate.toml
wait_refused=${JG_PKG_WAIT_REFUSED:-10s}
wait_admitted=${JG_PKG_WAIT_ADMITTED:-60s}
N=4

jg_setup $N
ns=$(jg_ns $N)
d=$(jg_dir $N)
m4_cfg=$d/joingate.toml
# (a function: never background it, $! would be the subshell, not the process)
in_ns() { ip netns exec "$ns" "$@"; }
admin_get() { in_ns curl -s --max-time 3 "http://127.0.0.1:9380$1"; }

# ---------------------------------------------------------------- the machine's files
# /etc/joingate/joingate.toml: the package's example, EDIT values filled in.
peer_list=$(for ((m = 1; m <= N; m++)); do printf '"%s:2380", ' "$(jg_ip $m)"; done)
sed -e "s/^name = \"etcd-0\" /name = \"m$N\" /" \
    -e "s/^version = \"3.4.23\" /version = \"3.3.0\" /" \
    -e "s/^peers = \[.*\]$/peers = [${peer_list%, }]/" \
    -e "s/^max = \"30s\"$/max = \"2s\"/" \
    -e "s/^bootstrap = false$/bootstrap = false\nview_interval = \"1s\"/" \
    "$example" >"$m4_cfg"
for want in "name = \"m$N\"" 'version = "3.3.0"' "peers = [\"$(jg_ip 1):2380\"" 'max = "2s"' 'view_interval = "1s"' \
    'listen = "127.0.0.1:9380"' 'peer = "http://127.0.0.1:2381"' 'listen = "127.0.0.1:2390"' 'cert = "tls/tls.crt"'; do
    grep -qF "$want" "$m4_cfg" || jg_fail "the package's example config no longer has what this test fills in: $want"
done
jg_log "m$N's /etc/joingate/joingate.toml (the package's example, edited):"
grep -vE '^\s*(#|$)' "$m4_cfg" | sed 's/^/    /' >&2

# The admin's /etc/default/etcd for m4 (EnvironmentFile of etcd.service). Nothing here
# about the peer listener or the proxy: the drop-in owns those.
write_default_etcd() {
    local ip
    ip=$(jg_ip $N)
    cat >"$d/default-etcd" <<EOF
ETCD_NAME=m$N
ETCD_DATA_DIR=$d/data
ETCD_INITIAL_CLUSTER=${JG_ICLUSTER[$N]}
ETCD_INITIAL_CLUSTER_STATE=existing
ETCD_INITIAL_CLUSTER_TOKEN=$JG_TOKEN
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$ip:2380
ETCD_LISTEN_CLIENT_URLS=http://$ip:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$ip:2379
ETCD_LOGGER=zap
ETCD_LOG_OUTPUTS=stderr
EOF
}

# ---------------------------------------------------------------- systemd, by hand
sub=(/usr/bin/joingate "$JOINGATE_BIN" /etc/joingate/joingate.toml "$m4_cfg"
    /usr/libexec/joingate/check-etcd-version "$work/root/usr/libexec/joingate/check-etcd-version")
# systemd's PATH for services, with the unpacked package's /usr/bin standing for /usr/bin
# (check-etcd-version runs `joingate status`)
unit_path=$work/root/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The raft index mN reports about itself, and whether it reached TARGET.
raft_index() { jg_status_line "$1" | awk -F', ' '{ print $8 }'; }
index_at_least() {
    local i
    i=$(raft_index "$1" 2>/dev/null) || return 1
    [[ $i =~ ^[0-9]+$ ]] && ((i >= $2))
}
gate_listening() { (($(grep -c '"msg":"listening"' "$d/joingate.log") >= 3)); }
reloads() { admin_get /metrics | awk '$1 == "joingate_config_reloads_total{result=\"success\"}" { print $2 }'; }

# systemctl start joingate: ExecStartPre, then ExecStart in the background.
start_joingate() {
    local line cmd out
    while IFS= read -r line; do
        mapfile -t cmd < <(unit_command "$line" "${sub[@]}")
        ((${#cmd[@]})) || jg_fail "cannot render ExecStartPre=$line"
        out=$("${cmd[@]}" 2>&1) || jg_fail "joingate.service ExecStartPre=$line failed: $out"
        jg_log "joingate.service ExecStartPre: $out"
    done < <(unit_values "$unit" Service ExecStartPre)
    line=$(unit_values "$unit" Service ExecStart)
    mapfile -t cmd < <(unit_command "$line" "${sub[@]}")
    ((${#cmd[@]})) || jg_fail "cannot render ExecStart=$line"
    ip netns exec "$ns" "${cmd[@]}" >>"$d/joingate.log" 2>&1 {JG_LOCK_FD}>&- &
    JG_GATE_PID[$N]=$!
    jg_wait_until 10 "joingate.service of m$N logs three listeners" gate_listening ||
        jg_fail "joingate.service of m$N did not start listening"
    jg_log "joingate.service of m$N started (pid ${JG_GATE_PID[$N]}): ${cmd[*]}"
}

# systemctl reload joingate: every ExecReload in turn with $MAINPID.
reload_joingate() {
    local line cmd out
    UNIT_ENV[MAINPID]=${JG_GATE_PID[$N]}
    while IFS= read -r line; do
        mapfile -t cmd < <(unit_command "$line" "${sub[@]}")
        ((${#cmd[@]})) || jg_fail "cannot render ExecReload=$line"
        out=$("${cmd[@]}" 2>&1) || jg_fail "joingate.service ExecReload=$line failed: $out"
        jg_log "joingate.service ExecReload: ${cmd[*]}${out:+: $out}"
    done < <(unit_values "$unit" Service ExecReload)
    unset 'UNIT_ENV[MAINPID]'
}

# The environment etcd.service gets: Environment= of the unit, then of the drop-in, then
# the EnvironmentFile, which wins (as systemd orders them).
declare -a etcd_env=()
render_etcd_env() {
    local a name
    etcd_env=()
    UNIT_ENV=()
    add() {
        name=${1%%=*}
        UNIT_ENV[$name]=${1#*=}
    }
    while IFS= read -r a; do
        # the only specifier in Debian's etcd.service: ETCD_NAME=%H (overridden below)
        a=${a//%H/$(hostname)}
        [[ $a != *%* ]] || jg_fail "etcd.service: specifier in '$a' is not emulated"
        add "$a"
    done < <(unit_environment "$etcd_unit" "$dropin")
    [[ $(unit_values "$etcd_unit" Service EnvironmentFile) == "-/etc/default/%p" ]] ||
        jg_fail "Debian's etcd.service reads its EnvironmentFile from elsewhere than /etc/default/etcd now"
    while IFS= read -r a; do
        [[ -z $a || $a == \#* ]] || add "$a"
    done <"$d/default-etcd"
    for name in "${!UNIT_ENV[@]}"; do etcd_env+=("$name=${UNIT_ENV[$name]}"); done
}

# systemctl start etcd: 0 once ExecStart runs; 1 when an ExecStartPre failed (etcd was
# not started). WAIT_TIMEOUT replaces the drop-in's --timeout. Sets LAST_PRE_RC and
# LAST_PRE_OUT (the last ExecStartPre run) and WAIT_OUT (what `joingate wait` printed).
start_etcd() {
    local wait_timeout=$1 line cmd out rc i
    write_default_etcd
    render_etcd_env
    while IFS= read -r line; do
        mapfile -t cmd < <(unit_command "$line" "${sub[@]}")
        ((${#cmd[@]})) || jg_fail "cannot render ExecStartPre=$line"
        for ((i = 0; i < ${#cmd[@]}; i++)); do
            if [[ ${cmd[i]} == --timeout ]]; then
                [[ ${cmd[i + 1]} == 10m ]] || jg_fail "the drop-in waits ${cmd[i + 1]}, docs/systemd.md says 10m"
                cmd[i + 1]=$wait_timeout
            fi
        done
        rc=0
        out=$(in_ns env -i PATH="$unit_path" "${etcd_env[@]}" "${cmd[@]}" 2>&1) || rc=$?
        jg_log "etcd.service ExecStartPre=${cmd[*]}: exit $rc"
        sed 's/^/    /' <<<"$out" >&2
        LAST_PRE_OUT=$out
        [[ ${cmd[1]:-} != wait ]] || WAIT_OUT=$out
        if ((rc != 0)); then
            LAST_PRE_RC=$rc
            return 1
        fi
    done < <(unit_values "$etcd_unit" Service ExecStartPre; unit_values "$dropin" Service ExecStartPre)
    LAST_PRE_RC=0
    line=$(unit_values "$etcd_unit" Service ExecStart)
    mapfile -t cmd < <(unit_command "$line" "${sub[@]}")
    ((${#cmd[@]})) || jg_fail "cannot render etcd.service ExecStart=$line"
    ip netns exec "$ns" env -i PATH="$unit_path" "${etcd_env[@]}" "${cmd[@]}" >>"$d/etcd.log" 2>&1 {JG_LOCK_FD}>&- &
    JG_ETCD_PID[$N]=$!
    jg_log "etcd.service ExecStart=${cmd[*]} (pid ${JG_ETCD_PID[$N]})"
}

# ---------------------------------------------------------------- 1. the cluster
jg_log "step 1: m1..m3 at 3.4.23 (mode both); m$N is the Debian machine"
jg_start_cluster 3 --mode both
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
for i in $(seq 1 10); do jg_put $((i % 3 + 1)) "pkg/before/$i" "v$i" || jg_fail "put pkg/before/$i failed"; done
jg_member_add $N

# ---------------------------------------------------------------- 2. refused
jg_log "step 2: joingate.service with member.version 3.3.0, then etcd.service"
start_joingate
if start_etcd "$wait_refused"; then
    jg_fail "etcd.service started although m$N declares 3.3.0 (leader m$leader at 3.4.23)"
fi
((LAST_PRE_RC == 1)) || jg_fail "joingate wait exited $LAST_PRE_RC, want 1 (timed out)"
grep -q 'not admitted: older_than_leader' <<<"$LAST_PRE_OUT" ||
    jg_fail "joingate wait did not say older_than_leader: $LAST_PRE_OUT"
grep -q '^timed out after' <<<"$LAST_PRE_OUT" || jg_fail "joingate wait did not say it timed out: $LAST_PRE_OUT"
[[ -z ${JG_ETCD_PID[$N]:-} ]] || jg_fail "etcd of m$N was started"
[[ -z $(in_ns ss -Hltn 'sport = :2381') ]] || jg_fail "something listens on m$N's etcd peer port"
ready=$(admin_get /readyz)
jq -e '.admitted == false and .reason == "older_than_leader"' <<<"$ready" >/dev/null ||
    jg_fail "m$N's /readyz: $ready"
jg_wait_healthy 15 1 2 3
jg_etcdctl "$(jg_endpoints)" member list -w json |
    jq -e --arg url "$(jg_peer_url $N)" '[.members[] | select(.peerURLs == [$url] and (.name // "") == "")] | length == 1' \
        >/dev/null || jg_fail "m$N is not an unstarted member of the member list"
jg_log "PASS etcd.service held back: joingate wait exit 1, etcd never started, m1..m3 healthy"

# ---------------------------------------------------------------- 3. reload
# reload_to VERSION: the admin sets member.version and runs systemctl reload joingate.
reload_to() {
    local before
    before=$(reloads)
    [[ -n $before ]] || jg_fail "m$N's /metrics has no joingate_config_reloads_total{result=\"success\"}"
    sed -i "s/^version = \"[^\"]*\" /version = \"$1\" /" "$m4_cfg"
    grep -q "^version = \"$1\" " "$m4_cfg" || jg_fail "could not edit member.version"
    reload_joingate
    reloaded() { [[ $(reloads) == "$((before + 1))" ]]; }
    jg_wait_until 10 "m$N counts a successful reload" reloaded || jg_fail "m$N's joingate did not reload on SIGHUP"
}

jg_log "step 3: member.version = 3.5.0 (admissible, but not the etcd binary's 3.4.23), systemctl reload joingate"
reload_to 3.5.0
if start_etcd "$wait_admitted"; then
    jg_fail "etcd.service started etcd 3.4.23 while joingate declares 3.5.0"
fi
[[ -z ${JG_ETCD_PID[$N]:-} ]] || jg_fail "etcd of m$N was started"
grep -q 'is 3.4.23, but joingate declares member.version 3.5.0' <<<"$LAST_PRE_OUT" ||
    jg_fail "check-etcd-version did not explain the refusal: $LAST_PRE_OUT"
jg_log "PASS etcd.service refused an etcd binary that is not the declared version"

jg_log "step 3b: member.version = 3.4.23, systemctl reload joingate"
reload_to 3.4.23

# ---------------------------------------------------------------- 4. admitted
jg_log "step 4: systemctl start etcd"
t0=$SECONDS
start_etcd "$wait_admitted" || jg_fail "etcd.service did not start: joingate wait exit $LAST_PRE_RC: $LAST_PRE_OUT"
grep -qx admitted <<<"$WAIT_OUT" || jg_fail "joingate wait exited 0 without saying admitted: $WAIT_OUT"
jg_wait_healthy 60 1 2 3 $N
jg_log "m$N healthy $((SECONDS - t0))s after systemctl start etcd"
target=$(raft_index "$leader") || jg_fail "no endpoint status from the leader m$leader"
jg_wait_until 30 "m$N's raft index reaches $target" index_at_least $N "$target" ||
    jg_fail "m$N did not catch up"
for i in $(seq 1 10); do
    [[ $(jg_get $N "pkg/before/$i" --consistency=s) == "v$i" ]] || jg_fail "m$N does not serve pkg/before/$i"
done
jg_put $N pkg/from-m$N ok || jg_fail "put through m$N failed"
jg_wait_value 1 pkg/from-m$N ok || jg_fail "m1 does not see the write made through m$N"

# etcd runs as the drop-in says: peers on loopback, advertised on the machine's address,
# every peer request through joingate
environ=$(tr '\0' '\n' <"/proc/${JG_ETCD_PID[$N]}/environ")
for want in HTTP_PROXY=http://127.0.0.1:2390 http_proxy=http://127.0.0.1:2390 NO_PROXY= no_proxy= \
    ETCD_LISTEN_PEER_URLS=http://127.0.0.1:2381 "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$(jg_ip $N):2380"; do
    grep -qxF "$want" <<<"$environ" || jg_fail "etcd of m$N runs without $want"
done
in_ns ss -Hltnp 'sport = :2381' | grep -c '127.0.0.1:2381.*etcd' >/dev/null || jg_fail "m$N's etcd does not listen on 127.0.0.1:2381"
in_ns ss -Hltnp 'sport = :2380' | grep -c '0.0.0.0:2380.*joingate' >/dev/null || jg_fail "joingate does not hold m$N's 0.0.0.0:2380"
[[ $(jg_etcd_direct_peer_conns $N) == 0 ]] || jg_fail "m$N's etcd talks to peers around joingate"
table=$(in_ns "$JOINGATE_BIN" status) || jg_fail "joingate status on m$N failed: $table"
printf '%s\n' "$table" | sed 's/^/    /' >&2
for ((m = 1; m <= N; m++)); do
    awk -v m="m$m" '$1 == m && $3 == "3.4.23"' <<<"$table" | grep -c . >/dev/null || jg_fail "joingate status lacks m$m at 3.4.23"
done
jg_log "PASS etcd.service admitted after the reload and joined through joingate"

# ---------------------------------------------------------------- 5. stop
jg__terminate 10 "${JG_ETCD_PID[$N]}"
unset "JG_ETCD_PID[$N]"
pid=${JG_GATE_PID[$N]}
unset "JG_GATE_PID[$N]"
kill -TERM "$pid"
rc=0
timeout "$(unit_values "$unit" Service TimeoutStopSec | tr -d s)" tail --pid="$pid" -f /dev/null ||
    jg_fail "joingate of m$N still runs after TimeoutStopSec"
wait "$pid" || rc=$?
((rc == 0)) || jg_fail "joingate of m$N exited $rc on SIGTERM"
jg_log "PASS systemctl stop: etcd, then joingate (SIGTERM, exit 0)"
