#!/usr/bin/env bash
# Installs the joingate .deb into a throwaway root (an overlay of this machine's / in a
# private mount namespace: dpkg, adduser and the maintainer scripts run for real, the
# machine stays untouched) and checks, as root:
#   - dpkg -i: files, conffile, the joingate system user and group, /etc/joingate/tls;
#   - systemd-analyze verify of joingate.service and of Debian's etcd.service with the
#     example drop-in copied to /etc/systemd/system/etcd.service.d/ as docs/systemd.md says;
#   - systemd-analyze security --offline of joingate.service (exposure at most 2.0);
#   - the unit's own command lines (systemd is not PID 1 here): ExecStartPre and
#     ExecStart as User=/Group= of the unit, without capabilities and with
#     no_new_privs, in a network namespace, with the shipped example config and test
#     certificates: it starts without a config error and listens; ExecReload reloads
#     (SIGHUP); SIGTERM exits 0;
#   - reinstall (the upgrade path of postinst) keeps an edited conffile;
#   - dpkg -r leaves only the conffile and the user; dpkg -P with the admin's
#     certificates still there keeps the user and says so; dpkg -P after they are gone
#     leaves nothing: every file of the root equals the machine's again, except dpkg's
#     own records and the man-db cache (listed below).
# One PASS/FAIL line per check; exit 1 when any failed.
#
#   tests/package/install.sh [DEB]
set -uo pipefail
# shellcheck source=tests/package/lib.sh
source "$(dirname "$0")/lib.sh"

if ((EUID != 0)); then
    pkg_fail "install" "needs root (mount namespace, chroot, network namespace)"
    exit 1
fi
if [[ -z ${PKG_IN_MOUNT_NS:-} ]]; then
    # the overlay and its mounts live and die with this mount namespace, and every process
    # started here with this PID namespace (even if the test is killed)
    exec env PKG_IN_MOUNT_NS=1 unshare --mount --propagation private --pid --fork --kill-child \
        --mount-proc bash "$0" "$@"
fi

deb=${1:-$(pkg_deb)} || exit 1
for tool in dpkg chroot setpriv unshare nsenter ip curl openssl systemd-analyze; do
    command -v "$tool" >/dev/null || { pkg_fail "install" "missing $tool"; exit 1; }
done
for d in /etc /usr /var; do
    # the overlay covers the root file system only
    if mountpoint -q "$d"; then pkg_fail "install" "$d is a separate mount: the throwaway root cannot overlay it"; exit 1; fi
done
if dpkg-query -W -f='${db:Status-Status}' joingate 2>/dev/null | grep -cv not-installed >/dev/null ||
    getent passwd joingate >/dev/null; then
    pkg_fail "install" "joingate (package or user) is already on this machine; the throwaway root starts from it"
    exit 1
fi

gate_pid=
cleanup() {
    [[ -n $gate_pid ]] && kill -KILL "$gate_pid" 2>/dev/null
    pkg_root_teardown
}
trap cleanup EXIT
pkg_root_setup || { pkg_fail "install: throwaway root" "could not mount an overlay of /"; exit 1; }
cp "$deb" "$PKG_ROOT/tmp/joingate.deb"
R=$PKG_ROOT
# man-db's trigger rebuilds the whole man index after every dpkg run (about 8 s each);
# the throwaway root skips that as man-db allows (its own switch file).
rm -f "$R/var/lib/man-db/auto-update"
unit=/lib/systemd/system/joingate.service
dropin=/etc/systemd/system/etcd.service.d/joingate.conf

# ---------------------------------------------------------------- install
install_out=
do_install() { install_out=$(pkg_in_root dpkg -i /tmp/joingate.deb 2>&1) || { echo "$install_out"; return 1; }; }
pkg_check "install: dpkg -i into the throwaway root" do_install
pkg_log "dpkg -i said:"; sed 's/^/    /' <<<"$install_out" >&2

check_installed() {
    local st f u
    st=$(pkg_in_root dpkg-query -W -f='${db:Status-Abbrev}' joingate)
    [[ $st == "ii " ]] || { echo "status '$st'"; return 1; }
    for f in /usr/bin/joingate /etc/joingate/joingate.toml $unit \
        /usr/share/joingate/etcd.service.d/joingate.conf /usr/share/man/man1/joingate.1.gz \
        /usr/share/doc/joingate/systemd.md; do
        [[ -f $R$f ]] || { echo "missing $f"; return 1; }
    done
    pkg_in_root dpkg-query -W -f='${Conffiles}\n' joingate | grep -c '^ /etc/joingate/joingate.toml [0-9a-f]\{32\}$' >/dev/null ||
        { echo "dpkg does not list /etc/joingate/joingate.toml as a conffile"; return 1; }
    u=$(pkg_in_root getent passwd joingate) || { echo "no user joingate"; return 1; }
    IFS=: read -r _ _ uid gid _ home shell <<<"$u"
    ((uid < 1000)) || { echo "joingate uid $uid is not a system uid"; return 1; }
    [[ $home == /nonexistent && $shell == /usr/sbin/nologin ]] || { echo "user joingate: $u"; return 1; }
    [[ $(pkg_in_root getent group joingate | cut -d: -f3) == "$gid" ]] || { echo "group joingate is not its primary group"; return 1; }
    [[ $(pkg_in_root stat -c '%a %U %G' /etc/joingate/tls) == "750 root joingate" ]] ||
        { echo "/etc/joingate/tls: $(pkg_in_root stat -c '%a %U %G' /etc/joingate/tls)"; return 1; }
    [[ $(pkg_in_root joingate version) == "joingate "* ]] || { echo "the installed joingate does not run"; return 1; }
    pkg_in_root man -w joingate >/dev/null || { echo "man joingate: no page"; return 1; }
}
pkg_check "install: files, conffile, system user and group, /etc/joingate/tls 0750 root:joingate" check_installed

# ---------------------------------------------------------------- systemd-analyze
# The drop-in, installed as docs/systemd.md says.
mkdir -p "$R/etc/systemd/system/etcd.service.d"
cp "$R/usr/share/joingate/etcd.service.d/joingate.conf" "$R$dropin"

check_verify() {
    local out
    [[ -f $R/lib/systemd/system/etcd.service ]] || { echo "Debian's etcd.service is not installed (etcd-server)"; return 1; }
    # verify exits 0 on unknown keys and bad values: any output at all is a finding
    out=$(pkg_in_root systemd-analyze verify $unit etcd.service 2>&1) || { echo "$out"; return 1; }
    [[ -z $out ]] || { echo "$out"; return 1; }
}
pkg_check "systemd-analyze verify joingate.service and etcd.service with the drop-in" check_verify

SECURITY_SCORE=
check_security() {
    local out
    out=$(pkg_in_root systemd-analyze security --offline=yes --threshold=20 $unit 2>&1) || { echo "$out" | tail -n 20; return 1; }
    SECURITY_SCORE=$(sed -n 's/.*Overall exposure level for joingate.service: \(.*\)$/\1/p' <<<"$out")
    pkg_log "systemd-analyze security joingate.service: $SECURITY_SCORE; not applied:"
    grep -E '^(✗|-) ' <<<"$out" | sed 's/^/    /' >&2
    [[ -n $SECURITY_SCORE ]]
}
pkg_check "systemd-analyze security joingate.service: exposure at most 2.0" check_security

# ---------------------------------------------------------------- the unit's commands
# Test certificates where the example config expects them, as docs/systemd.md says:
# key readable by the group joingate.
# shellcheck source=tests/support/certs.sh
source "$PKG_REPO/tests/support/certs.sh"
certs_ca "$R/tmp/ca" && certs_member "$R/etc/joingate/tls" "$R/tmp/ca" etcd-0 IP:10.0.0.10 DNS:etcd-0 ||
    pkg_fail "service: test certificates" "openssl failed"
pkg_in_root chown root:joingate /etc/joingate/tls/tls.key
pkg_in_root chmod 0640 /etc/joingate/tls/tls.key

user=$(unit_values "$R$unit" Service User)
group=$(unit_values "$R$unit" Service Group)
# As systemd runs a service with User=, Group=, CapabilityBoundingSet= (empty) and
# NoNewPrivileges=yes (the rest of the sandbox needs systemd itself).
as_service() {
    pkg_in_root setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs \
        --bounding-set=-all --inh-caps=-all "$@"
}
mapfile -t pre < <(unit_values "$R$unit" Service ExecStartPre)
mapfile -t start < <(unit_values "$R$unit" Service ExecStart)
mapfile -t reload < <(unit_values "$R$unit" Service ExecReload)

check_prestart() {
    local line cmd out
    [[ $user == joingate && $group == joingate && ${#pre[@]} -ge 1 && ${#start[@]} == 1 ]] ||
        { echo "unexpected unit: User=$user Group=$group ${#pre[@]} ExecStartPre ${#start[@]} ExecStart"; return 1; }
    for line in "${pre[@]}"; do
        mapfile -t cmd < <(unit_command "$line") && ((${#cmd[@]})) || return 1
        out=$(as_service "${cmd[@]}" 2>&1) || { echo "ExecStartPre=$line: $out"; return 1; }
        pkg_log "ExecStartPre=$line: $out"
    done
}
pkg_check "service: ExecStartPre (check-config) passes as User=joingate with the example config" check_prestart

check_unreadable_key() {
    local cmd out rc=0
    pkg_in_root chmod 0600 /etc/joingate/tls/tls.key
    mapfile -t cmd < <(unit_command "${pre[0]}")
    out=$(as_service "${cmd[@]}" 2>&1) || rc=$?
    pkg_in_root chmod 0640 /etc/joingate/tls/tls.key
    ((rc == 2)) && grep -q 'tls.key: cannot read' <<<"$out" ||
        { echo "a key the joingate user cannot read: exit $rc, $out"; return 1; }
}
pkg_check "service: ExecStartPre reports a key the joingate user cannot read (exit 2)" check_unreadable_key

log=$R/tmp/joingate.log
listening() { [[ $(grep -c '"msg":"listening"' "$log" 2>/dev/null) -ge 3 ]]; }
admin() { nsenter -t "$gate_pid" -n curl -s --max-time 3 "http://127.0.0.1:9380$1"; }
check_start() {
    local cmd i
    mapfile -t cmd < <(unit_command "${start[0]}") && ((${#cmd[@]})) || return 1
    # a network namespace of its own: 0.0.0.0:2380 and the peers of the example config
    # are nobody's business on this machine
    unshare --net bash -c 'ip link set lo up && exec "$@"' _ \
        chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --reuid="$user" --regid="$group" \
        --init-groups --no-new-privs --bounding-set=-all --inh-caps=-all "${cmd[@]}" >"$log" 2>&1 &
    gate_pid=$!
    for ((i = 0; i < 100; i++)); do
        listening && break
        kill -0 "$gate_pid" 2>/dev/null || { echo "joingate exited: $(tail -n 5 "$log")"; return 1; }
        sleep 0.1
    done
    listening || { echo "not listening after 10s: $(tail -n 5 "$log")"; return 1; }
    grep '"msg":"listening"' "$log" | sed 's/^/    /' >&2
    grep -q '"level":"error"' "$log" && { echo "errors logged: $(grep '"level":"error"' "$log")"; return 1; }
    [[ $(admin /healthz) == *'"ok"'* ]] || { echo "/healthz: $(admin /healthz)"; return 1; }
    admin /metrics | grep -c '^joingate_build_info{' >/dev/null || { echo "/metrics has no joingate_build_info"; return 1; }
    grep -q "^NoNewPrivs:[[:space:]]*1" "/proc/$gate_pid/status" || { echo "no_new_privs is not set"; return 1; }
    grep -q "^CapEff:[[:space:]]*0\{16\}" "/proc/$gate_pid/status" || { echo "joingate has capabilities"; return 1; }
    local uid
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/$gate_pid/status")
    [[ $uid == "$(pkg_in_root id -u joingate)" ]] || { echo "joingate runs as uid $uid"; return 1; }
}
pkg_check "service: ExecStart starts without a config error as joingate, no capabilities, listens on 2380/2390/9380" check_start

reloads() { admin /metrics | awk '$1 == "joingate_config_reloads_total{result=\"success\"}" { print $2 }'; }
check_reload() {
    local line cmd before i
    [[ -n $gate_pid ]] || { echo "joingate is not running"; return 1; }
    before=$(reloads)
    [[ -n $before ]] || { echo "no joingate_config_reloads_total{result=\"success\"}"; return 1; }
    for line in "${reload[@]}"; do
        UNIT_ENV[MAINPID]=$gate_pid
        mapfile -t cmd < <(unit_command "$line") && ((${#cmd[@]})) || return 1
        if [[ ${cmd[0]} == /bin/kill ]]; then
            # root's systemd sends the signal (ExecReload runs as the unit's user; root
            # signalling is equivalent here)
            "${cmd[@]}" || return 1
        else
            as_service "${cmd[@]}" >/dev/null || { echo "ExecReload=$line failed"; return 1; }
        fi
    done
    for ((i = 0; i < 50; i++)); do
        [[ $(reloads) == "$((before + 1))" ]] && return 0
        sleep 0.1
    done
    echo "reloads: $before before, $(reloads) after"
    return 1
}
pkg_check "service: ExecReload (check-config, SIGHUP) reloads the config" check_reload

check_stop() {
    local rc=0 t0=$SECONDS stop
    [[ -n $gate_pid ]] || { echo "joingate is not running"; return 1; }
    stop=$(unit_values "$R$unit" Service TimeoutStopSec)
    kill -TERM "$gate_pid"
    timeout "${stop%s}" tail --pid="$gate_pid" -f /dev/null || { echo "still running after TimeoutStopSec=$stop"; return 1; }
    wait "$gate_pid" || rc=$?
    gate_pid=
    ((rc == 0)) || { echo "exit $rc after SIGTERM: $(tail -n 3 "$log")"; return 1; }
    pkg_log "SIGTERM: exit 0 after $((SECONDS - t0))s"
}
pkg_check "service: SIGTERM (systemctl stop) exits 0 within TimeoutStopSec" check_stop

# ---------------------------------------------------------------- reinstall, remove, purge
check_reinstall() {
    local out
    echo "# edited by the admin" >>"$R/etc/joingate/joingate.toml"
    out=$(pkg_in_root dpkg -i /tmp/joingate.deb 2>&1) || { echo "$out"; return 1; }
    tail -n1 "$R/etc/joingate/joingate.toml" | grep -cx '# edited by the admin' >/dev/null || { echo "the edited conffile was replaced"; return 1; }
    [[ $(pkg_in_root stat -c '%a %U %G' /etc/joingate/tls) == "750 root joingate" ]] || { echo "/etc/joingate/tls lost its mode"; return 1; }
}
pkg_check "reinstall (postinst configure <old-version>) keeps the edited conffile" check_reinstall

check_remove() {
    local out
    out=$(pkg_in_root dpkg -r joingate 2>&1) || { echo "$out"; return 1; }
    grep -q 'etcd.service.d/joingate.conf still gates etcd.service' <<<"$out" ||
        { echo "prerm did not warn about the active drop-in: $out"; return 1; }
    [[ $(pkg_in_root dpkg-query -W -f='${db:Status-Abbrev}' joingate) == "rc " ]] || { echo "status is not rc"; return 1; }
    [[ ! -e $R/usr/bin/joingate && ! -e $R$unit && ! -e $R/usr/share/joingate ]] || { echo "files left after remove"; return 1; }
    [[ -f $R/etc/joingate/joingate.toml ]] || { echo "the conffile went with remove"; return 1; }
    pkg_in_root getent passwd joingate >/dev/null || { echo "the user went with remove"; return 1; }
}
pkg_check "dpkg -r: binary and units gone, conffile and user kept, warns about the etcd drop-in" check_remove

check_purge_with_certs() {
    local out
    out=$(pkg_in_root dpkg -P joingate 2>&1) || { echo "$out"; return 1; }
    grep -q 'keeping the user and group joingate' <<<"$out" || { echo "no note about the kept user: $out"; return 1; }
    pkg_in_root getent passwd joingate >/dev/null || { echo "user removed although /etc/joingate/tls still holds its key"; return 1; }
    [[ ! -e $R/etc/joingate/joingate.toml ]] || { echo "conffile left after purge"; return 1; }
    [[ -f $R/etc/joingate/tls/tls.key ]] || { echo "purge removed the admin's key"; return 1; }
}
pkg_check "dpkg -P with the admin's certificates left: keeps them and the user, says so" check_purge_with_certs

check_clean_purge() {
    local out changes
    # the admin takes the certificates and the drop-in away, installs once more, purges
    rm -rf "$R/etc/joingate" "$R/etc/systemd/system/etcd.service.d" "$R/tmp/ca"
    out=$(pkg_in_root dpkg -i /tmp/joingate.deb 2>&1) || { echo "$out"; return 1; }
    out=$(pkg_in_root dpkg -P joingate 2>&1) || { echo "$out"; return 1; }
    [[ -z $(pkg_in_root dpkg-query -W -f='${db:Status-Abbrev}' joingate 2>/dev/null) ]] || { echo "dpkg still knows joingate"; return 1; }
    ! pkg_in_root getent passwd joingate >/dev/null || { echo "user joingate left"; return 1; }
    ! pkg_in_root getent group joingate >/dev/null || { echo "group joingate left"; return 1; }
    # Allowed: dpkg's own records (status-old is its backup, the log), the shadow
    # tools' backup copies (passwd- and friends hold the previous version of each file),
    # man-db's cache (systemd-analyze verify runs man for Documentation=), and the
    # man-db switch this test removed.
    changes=$(pkg_root_changes | grep -vE '^(new|changed|deleted) (/var/lib/dpkg/|/var/log/dpkg\.log$|/etc/(passwd|group|shadow|gshadow)-$|/var/cache/man/|/var/lib/man-db/auto-update$)')
    [[ -z $changes ]] || { echo "left behind:"; echo "$changes"; return 1; }
    pkg_log "after purge, the throwaway root differs from the machine only in:"
    pkg_root_changes | sed 's/^/    /' >&2
}
pkg_check "dpkg -i + dpkg -P: nothing left behind (no file, user, group or unit symlink)" check_clean_purge

[[ -n $SECURITY_SCORE ]] && echo "systemd-analyze security joingate.service: $SECURITY_SCORE"
exit "$PKG_FAILED"
