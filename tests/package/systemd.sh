#!/usr/bin/env bash
# joingate.service and the etcd.service drop-in under a real systemd, on one machine.
# systemd is not PID 1 of the test machine, so this boots one as PID 1 of its own PID,
# mount, network, UTS and cgroup namespaces, with a throwaway overlay root of this
# machine's / (tests/package/lib.sh) as its root, the package installed by dpkg. The
# machine's cgroup trees only get one child directory (jg-pkg-test.PID), removed at the
# end; everything else vanishes with the namespaces.
#
# The machine is a one-member etcd cluster, etcd-0 at 10.0.0.10, configured as
# docs/systemd.md says (its example config with the EDIT values filled in, certificates in
# /etc/joingate/tls, /etc/default/etcd, the drop-in copied into place). Checks:
#   - systemctl enable joingate: the [Install] symlink;
#   - systemctl start etcd: Wants= starts joingate.service (active, as User=joingate, with
#     no capability, no_new_privs, a seccomp filter, its own user and mount namespaces and
#     a read-only /: the sandbox of the unit as systemd applies it); etcd.service stays "activating" in ExecStartPre, `joingate
#     wait` blocking (not admitted: leader_unknown), no etcd process, nothing on 2379;
#   - the admin sets cluster.bootstrap = true and runs systemctl reload joingate: the
#     member is admitted, the wait ends, check-etcd-version passes, etcd starts (active)
#     with HTTP_PROXY and its peer listener on 127.0.0.1:2381, and serves a write;
#   - a broken config: systemctl reload fails and says why, joingate keeps running;
#   - the journal has the wait's lines (journalctl -u etcd) and joingate's JSON lines;
#   - dpkg -i again (the upgrade path): the running joingate.service is restarted, etcd keeps
#     running;
#   - systemctl stop etcd joingate: both inactive, joingate exited 0 on SIGTERM;
#   - dpkg -P of the enabled joingate with systemd running: the unit, its symlink and the
#     user are gone.
# One PASS/FAIL line per check; exit 1 when any failed.
#
#   tests/package/systemd.sh [DEB]       as root; about 10 s
set -uo pipefail
# shellcheck source=tests/package/lib.sh
source "$(dirname "$0")/lib.sh"

if ((EUID != 0)); then
    pkg_fail "systemd" "needs root (namespaces, chroot, cgroups)"
    exit 1
fi
if [[ -z ${PKG_IN_MOUNT_NS:-} ]]; then
    exec env PKG_IN_MOUNT_NS=1 PKG_OUTER_PID=$$ unshare --mount --propagation private --pid --fork --kill-child \
        --mount-proc bash "$0" "$@"
fi

deb=${1:-$(pkg_deb)} || exit 1
for tool in dpkg chroot unshare nsenter ip curl openssl etcdctl; do
    command -v "$tool" >/dev/null || { pkg_fail "systemd" "missing $tool"; exit 1; }
done
[[ -x /lib/systemd/systemd ]] || { pkg_fail "systemd" "no /lib/systemd/systemd (apt-get install systemd)"; exit 1; }
[[ -f /lib/systemd/system/etcd.service ]] || { pkg_fail "systemd" "no etcd.service (apt-get install etcd-server)"; exit 1; }
if getent passwd joingate >/dev/null || dpkg-query -W -f='${db:Status-Status}' joingate 2>/dev/null | grep -qv not-installed; then
    pkg_fail "systemd" "joingate (package or user) is already on this machine; the throwaway root starts from it"
    exit 1
fi

# ---------------------------------------------------------------- cgroups
# systemd needs cgroup trees of its own: a child cgroup of ours in every hierarchy,
# which the cgroup namespace of the booted systemd sees as its root.
cg_child=jg-pkg-test.${PKG_OUTER_PID:-$$}
declare -A cg_home=() # mount point -> our cgroup directory in it
cg_key() { tr ',' '\n' | grep -xE "name=.*|$(awk 'NR > 1 { printf "%s|", $1 }' /proc/cgroups)" | sort | paste -sd,; }
cg_enter() {
    local mp type opts rest key path stale
    while read -r _ mp type opts rest; do
        case $type in
        cgroup2) key= ;;
        cgroup) key=$(cg_key <<<"$opts") ;;
        *) continue ;;
        esac
        path=$(while IFS=: read -r _ ctl p; do
            [[ $(cg_key <<<"$ctl") == "$key" ]] && { echo "$p"; break; }
        done </proc/self/cgroup)
        [[ -n $path && -d $mp$path ]] || continue
        # left by a run that was killed: removed once no process is in there
        for stale in "$mp$path"/jg-pkg-test.*/; do
            [[ -d $stale ]] || continue
            find "$stale" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -q . ||
                find "$stale" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        mkdir "$mp$path/$cg_child" || return 1
        cg_home[$mp]=$mp$path
        # a v1 cpuset cgroup takes no process before it has CPUs and memory nodes
        if [[ -f $mp$path/$cg_child/cpuset.cpus ]]; then
            cat "$mp$path/cpuset.cpus" >"$mp$path/$cg_child/cpuset.cpus" &&
                cat "$mp$path/cpuset.mems" >"$mp$path/$cg_child/cpuset.mems" || return 1
        fi
        echo $$ >"$mp$path/$cg_child/cgroup.procs" || return 1
    done < <(awk '$3 == "cgroup" || $3 == "cgroup2"' /proc/self/mounts)
    ((${#cg_home[@]})) || { echo "no cgroup hierarchy mounted"; return 1; }
}
cg_leave() {
    local mp
    for mp in "${!cg_home[@]}"; do
        echo $$ >"${cg_home[$mp]}/cgroup.procs" 2>/dev/null
        [[ -d ${cg_home[$mp]}/$cg_child ]] &&
            find "${cg_home[$mp]}/$cg_child" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ ! -d ${cg_home[$mp]}/$cg_child ]] || pkg_log "could not remove ${cg_home[$mp]}/$cg_child"
    done
    cg_home=()
}

sd_pid=
cleanup() {
    if [[ -n $sd_pid ]]; then
        # PID 1 of its namespace: killing it kills every process in there
        kill -KILL "$sd_pid" 2>/dev/null
        tail --pid="$sd_pid" -f /dev/null 2>/dev/null
    fi
    wait 2>/dev/null
    cg_leave
    pkg_root_teardown
}
trap cleanup EXIT
pkg_root_setup || { pkg_fail "systemd: throwaway root" "could not mount an overlay of /"; exit 1; }
R=$PKG_ROOT
# not in /tmp: the booted systemd mounts a tmpfs of its own there
cp "$deb" "$R/root/joingate.deb"
rm -f "$R/var/lib/man-db/auto-update"
# a machine booted with systemd lets maintainer scripts act on services (container images
# often forbid it with a policy-rc.d)
rm -f "$R/usr/sbin/policy-rc.d"
cfg=/etc/joingate/joingate.toml

# ---------------------------------------------------------------- the machine, as docs/systemd.md says
setup_machine() {
    local out
    out=$(pkg_in_root dpkg -i /root/joingate.deb 2>&1) || { echo "$out"; return 1; }
    # shellcheck source=tests/support/certs.sh
    source "$PKG_REPO/tests/support/certs.sh"
    certs_ca "$R/root/jg-ca" >/dev/null && certs_member "$R/etc/joingate/tls" "$R/root/jg-ca" etcd-0 IP:10.0.0.10 DNS:etcd-0 >/dev/null ||
        { echo "openssl failed"; return 1; }
    pkg_in_root chown root:joingate /etc/joingate/tls/tls.key
    pkg_in_root chmod 0640 /etc/joingate/tls/tls.key
    sed -i -e 's/^peers = \[.*\]$/peers = ["10.0.0.10:2380"]/' -e 's/^max = "30s"$/max = "2s"/' "$R$cfg"
    grep -q '^peers = \["10.0.0.10:2380"\]$' "$R$cfg" && grep -q '^max = "2s"$' "$R$cfg" &&
        grep -q '^bootstrap = false$' "$R$cfg" && grep -q '^name = "etcd-0" ' "$R$cfg" ||
        { echo "the example config no longer has what this test edits"; return 1; }
    cat >"$R/etc/default/etcd" <<'EOF'
ETCD_NAME=etcd-0
ETCD_DATA_DIR=/var/lib/etcd/default
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.10:2380
ETCD_INITIAL_CLUSTER=etcd-0=http://10.0.0.10:2380
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=jg-pkg-systemd
ETCD_LISTEN_CLIENT_URLS=http://10.0.0.10:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.10:2379
EOF
    rm -rf "$R/var/lib/etcd/default"
    mkdir -p "$R/etc/systemd/system/etcd.service.d"
    cp "$R/usr/share/joingate/etcd.service.d/joingate.conf" "$R/etc/systemd/system/etcd.service.d/"
    # what the booted systemd starts by itself: nothing but the journal
    cat >"$R/etc/systemd/system/jg-test.target" <<'EOF'
[Unit]
Description=joingate package test
Wants=systemd-journald.socket systemd-journald.service
EOF
}
pkg_check "systemd: dpkg -i, certificates, config, /etc/default/etcd, drop-in as docs/systemd.md says" setup_machine

# ---------------------------------------------------------------- boot
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
# PID 1 of new namespaces, with the throwaway root as its root: the network namespace has
# only lo, with the machine's address 10.0.0.10; the cgroup trees are mounted afresh,
# rooted at our child cgroup. Its log goes to its journal.
boot() {
    local i state
    cg_enter || return 1
    unshare --pid --fork --mount --propagation private --net --uts --cgroup bash -c '
        set -e
        R=$1
        ip link set lo up
        ip addr add 10.0.0.10/32 dev lo
        mount -t proc proc "$R/proc"
        if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
            mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
        else
            mount -t tmpfs -o mode=0755 cgroup "$R/sys/fs/cgroup"
            awk "\$3 == \"cgroup\" || \$3 == \"cgroup2\" { print \$2, \$3, \$4 }" /proc/self/mounts |
                while read -r mp type opts; do
                    [[ $mp == /sys/fs/cgroup/* ]] || continue
                    mkdir -p "$R$mp"
                    mount -t "$type" -o "$opts" "$type" "$R$mp"
                done
        fi
        # pivot_root, not chroot: the kernel refuses a user namespace (PrivateUsers=) to
        # a chrooted process
        cd "$R"
        pivot_root . .
        umount -l .
        exec env -i container=joingate-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            /lib/systemd/systemd --system --unit=jg-test.target --log-target=journal --log-level=info
    ' _ "$R" >"$PKG_BASE/systemd.log" 2>&1 &
    local launcher=$!
    for ((i = 0; i < 50; i++)); do
        sd_pid=$(cat "/proc/$launcher/task/$launcher/children" 2>/dev/null | awk '{ print $1 }')
        [[ -n $sd_pid && $(cat "/proc/$sd_pid/comm" 2>/dev/null) == systemd ]] && break
        sd_pid=
        sleep 0.1
    done
    [[ -n $sd_pid ]] || { echo "systemd did not start:"; tail -n 20 "$PKG_BASE/systemd.log"; return 1; }
    wait_for 20 test -S "$R/run/systemd/private" || { echo "systemd does not listen:"; tail -n 20 "$PKG_BASE/systemd.log"; return 1; }
    state=$(sd timeout 30 systemctl is-system-running --wait 2>&1)
    [[ $state == running || $state == degraded ]] || { echo "is-system-running: $state"; tail -n 20 "$PKG_BASE/systemd.log"; return 1; }
    pkg_log "systemd is $state"
}
# sd COMMAND...: run COMMAND in the booted machine (its namespaces and root).
sd() {
    nsenter -t "$sd_pid" -m -u -n -p -C -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
prop() { sd systemctl show -P "$2" "$1"; } # UNIT PROPERTY
pkg_check "systemd: boots as PID 1 in namespaces of its own" boot
[[ -n $sd_pid ]] || exit "$PKG_FAILED"

state_is() { [[ $(prop "$1" ActiveState)/$(prop "$1" SubState) == "$2" ]]; }
admin() { sd curl -s --max-time 3 "http://127.0.0.1:9380$1"; }

check_enable() {
    local out
    out=$(sd systemctl enable joingate.service 2>&1) || { echo "$out"; return 1; }
    [[ -L $R/etc/systemd/system/multi-user.target.wants/joingate.service ]] ||
        { echo "no multi-user.target.wants/joingate.service symlink: $out"; return 1; }
    [[ $(sd systemctl is-enabled joingate.service) == enabled ]]
}
pkg_check "systemd: systemctl enable joingate" check_enable

check_held_back() {
    local out gate
    sd systemctl daemon-reload || return 1
    out=$(sd systemctl start --no-block etcd.service 2>&1) || { echo "$out"; return 1; }
    wait_for 15 state_is joingate.service active/running ||
        { echo "joingate.service: $(sd systemctl status --no-pager -n 0 joingate.service)"; sd journalctl -b --no-pager -n 30 -p warning; return 1; }
    wait_for 15 state_is etcd.service activating/start-pre ||
        { echo "etcd.service: $(prop etcd.service ActiveState)/$(prop etcd.service SubState)"; return 1; }
    wait_for 10 eval '[[ $(admin /readyz) == *leader_unknown* ]]' || { echo "/readyz: $(admin /readyz)"; return 1; }
    # a few seconds later etcd is still held back
    sleep 3
    state_is etcd.service activating/start-pre || { echo "etcd.service: $(prop etcd.service ActiveState)/$(prop etcd.service SubState)"; return 1; }
    [[ $(prop etcd.service MainPID) == 0 ]] || { echo "etcd runs: MainPID $(prop etcd.service MainPID)"; return 1; }
    [[ -z $(sd ss -Hltn 'sport = :2379') ]] || { echo "something listens on 2379"; return 1; }
    pkg_log "etcd held back:"
    sd systemctl status --no-pager -n 0 etcd.service | sed 's/^/    /' >&2
    # systemctl status exits 3 for a unit that is not active: read its output, not its status
    out=$(sd systemctl status --no-pager -n 0 etcd.service 2>&1)
    grep -q 'joingate wait --admin http://127.0.0.1:9380 --timeout 10m' <<<"$out" ||
        { echo "the control process of etcd.service is not joingate wait: $out"; return 1; }
    # joingate.service runs with the sandbox of its unit, applied by systemd (MainPID is a
    # PID of the booted machine's namespace: read its /proc there)
    gate=$(prop joingate.service MainPID)
    local st uid
    st=$(sd cat "/proc/$gate/status") && [[ $(sd cat "/proc/$gate/comm") == joingate ]] ||
        { echo "no joingate process $gate"; return 1; }
    uid=$(sd id -u joingate)
    awk '/^Uid:/ { print $2, $3, $4, $5 }' <<<"$st" | grep -qx "$uid $uid $uid $uid" || { echo "not running as joingate: $(grep ^Uid: <<<"$st")"; return 1; }
    grep -qE '^NoNewPrivs:\s+1$' <<<"$st" || { echo "no_new_privs not set"; return 1; }
    grep -qE '^Seccomp:\s+2$' <<<"$st" || { echo "no seccomp filter (SystemCallFilter=)"; return 1; }
    grep -qE '^CapBnd:\s+0{16}$' <<<"$st" && grep -qE '^CapEff:\s+0{16}$' <<<"$st" || { echo "capabilities: $(grep ^Cap <<<"$st")"; return 1; }
    [[ $(sd readlink "/proc/$gate/ns/mnt") != "$(sd readlink /proc/1/ns/mnt)" ]] ||
        { echo "joingate shares the mount namespace of systemd (no ProtectSystem=/PrivateTmp=)"; return 1; }
    [[ $(sd readlink "/proc/$gate/ns/user") != "$(sd readlink /proc/1/ns/user)" ]] ||
        { echo "joingate shares the user namespace of systemd (no PrivateUsers=)"; return 1; }
    # ProtectSystem=strict: the file system is read-only for it
    sd cat "/proc/$gate/mountinfo" | awk '$5 == "/" { m = $6 } END { exit m !~ /^ro(,|$)/ }' ||
        { echo "/ is not read-only for joingate"; return 1; }
    admin /metrics | grep -q '^joingate_build_info{' || { echo "/metrics on the admin port: no joingate_build_info"; return 1; }
}
pkg_check "systemd: systemctl start etcd starts joingate.service (sandboxed as its unit says) and holds etcd in ExecStartPre (joingate wait)" check_held_back

reloads() { admin /metrics | awk '$1 == "joingate_config_reloads_total{result=\"" r "\"}" { print $2 }' r="$1"; }
check_admitted() {
    local before out env
    before=$(reloads success)
    [[ -n $before ]] || { echo "no joingate_config_reloads_total"; return 1; }
    sed -i 's/^bootstrap = false$/bootstrap = true/' "$R$cfg"
    out=$(sd systemctl reload joingate.service 2>&1) || { echo "systemctl reload: $out"; return 1; }
    wait_for 10 eval '[[ $(reloads success) == $((before + 1)) ]]' || { echo "reloads: $before, then $(reloads success)"; return 1; }
    wait_for 30 state_is etcd.service active/running ||
        { echo "etcd.service: $(sd systemctl status --no-pager -n 20 etcd.service)"; return 1; }
    env=$(sd cat "/proc/$(prop etcd.service MainPID)/environ" | tr '\0' '\n')
    for want in HTTP_PROXY=http://127.0.0.1:2390 NO_PROXY= ETCD_LISTEN_PEER_URLS=http://127.0.0.1:2381 ETCD_NAME=etcd-0; do
        grep -qxF "$want" <<<"$env" || { echo "etcd runs without $want"; return 1; }
    done
    sd ss -Hltnp 'sport = :2381' | grep -q '127.0.0.1:2381.*etcd' || { echo "etcd does not listen on 127.0.0.1:2381"; return 1; }
    sd ss -Hltnp 'sport = :2380' | grep -q '0.0.0.0:2380.*joingate' || { echo "joingate does not hold 0.0.0.0:2380"; return 1; }
    sd etcdctl --endpoints=http://127.0.0.1:2379 put jg/pkg ok >/dev/null && [[ $(sd etcdctl --endpoints=http://127.0.0.1:2379 get --print-value-only jg/pkg) == ok ]] ||
        { echo "etcd does not serve a write"; return 1; }
    [[ $(admin /readyz) == *'"admitted":true'* ]] || { echo "/readyz: $(admin /readyz)"; return 1; }
}
pkg_check "systemd: after cluster.bootstrap = true and systemctl reload joingate, etcd.service is admitted, starts, proxies through joingate, serves" check_admitted

check_bad_reload() {
    local pid out rc=0
    pid=$(prop joingate.service MainPID)
    cp "$R$cfg" "$R$cfg.good"
    echo 'bogus = 1' >>"$R$cfg"
    out=$(sd systemctl reload joingate.service 2>&1) || rc=$?
    mv "$R$cfg.good" "$R$cfg"
    ((rc != 0)) || { echo "systemctl reload succeeded with a broken config"; return 1; }
    sd journalctl -u joingate.service -o cat --no-pager | grep -q 'bogus: unknown key' ||
        { echo "the journal does not say why: $(sd journalctl -u joingate.service -o cat --no-pager | tail -n 5)"; return 1; }
    state_is joingate.service active/running && [[ $(prop joingate.service MainPID) == "$pid" ]] ||
        { echo "joingate.service did not keep running"; return 1; }
}
pkg_check "systemd: systemctl reload with a broken config fails, says why in the journal, joingate keeps running" check_bad_reload

check_journal() {
    local out
    out=$(sd journalctl -u etcd.service -o cat --no-pager)
    grep -qx 'not admitted: leader_unknown.*' <<<"$out" && grep -qx admitted <<<"$out" && grep -q 'is the version joingate declares' <<<"$out" ||
        { echo "journalctl -u etcd: $out"; return 1; }
    out=$(sd journalctl -u joingate.service -o cat --no-pager)
    grep -q '"msg":"listening"' <<<"$out" || { echo "journalctl -u joingate: $(tail -n 5 <<<"$out")"; return 1; }
    pkg_log "journalctl -u etcd, without etcd's own lines:"
    sd journalctl -u etcd.service --no-pager | grep -vE ' etcd\[[0-9]+\]: ' | sed 's/^/    /' >&2
}
pkg_check "systemd: journalctl -u etcd has the wait's lines, journalctl -u joingate its JSON log" check_journal

check_upgrade() {
    local gate etcd out
    gate=$(prop joingate.service MainPID)
    etcd=$(prop etcd.service MainPID)
    # as apt-get install of a newer package would: postinst configure <old-version>
    out=$(sd dpkg -i /root/joingate.deb 2>&1) || { echo "$out"; return 1; }
    wait_for 15 state_is joingate.service active/running || { echo "joingate.service: $(prop joingate.service ActiveState)"; return 1; }
    [[ $(prop joingate.service MainPID) != "$gate" ]] || { echo "the running joingate was not restarted"; return 1; }
    state_is etcd.service active/running && [[ $(prop etcd.service MainPID) == "$etcd" ]] ||
        { echo "etcd did not keep running"; return 1; }
    wait_for 10 eval '[[ $(admin /readyz) == *'"'"'"admitted":true'"'"'* ]]' || { echo "/readyz after the restart: $(admin /readyz)"; return 1; }
}
pkg_check "systemd: reinstalling the package restarts the running joingate.service, etcd keeps running" check_upgrade

check_stop() {
    local out
    out=$(sd systemctl stop etcd.service joingate.service 2>&1) || { echo "$out"; return 1; }
    [[ $(prop joingate.service ActiveState) == inactive && $(prop etcd.service ActiveState) == inactive ]] ||
        { echo "joingate $(prop joingate.service ActiveState), etcd $(prop etcd.service ActiveState)"; return 1; }
    [[ $(prop joingate.service Result) == success && $(prop joingate.service ExecMainStatus) == 0 ]] ||
        { echo "joingate.service Result=$(prop joingate.service Result) ExecMainStatus=$(prop joingate.service ExecMainStatus)"; return 1; }
}
pkg_check "systemd: systemctl stop etcd joingate: joingate exits 0 on SIGTERM" check_stop

check_purge() {
    local out
    rm -rf "$R/etc/systemd/system/etcd.service.d" "$R/etc/joingate/tls"/*
    # as the admin would, with systemd running: the postrm reloads it
    out=$(sd dpkg -P joingate 2>&1) || { echo "$out"; return 1; }
    [[ ! -L $R/etc/systemd/system/multi-user.target.wants/joingate.service && ! -e $R/lib/systemd/system/joingate.service ]] ||
        { echo "unit or symlink left"; return 1; }
    [[ $(prop joingate.service LoadState) == not-found ]] || { echo "systemd still loads joingate.service"; return 1; }
    ! pkg_in_root getent passwd joingate >/dev/null || { echo "user joingate left"; return 1; }
}
pkg_check "systemd: dpkg -P of an enabled joingate removes the unit, its symlink and the user" check_purge

exit "$PKG_FAILED"
