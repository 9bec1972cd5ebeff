#!/usr/bin/env bash
# End-to-end harness: a real etcd 3.4 cluster with a joingate sidecar beside every member,
# each member in its own network namespace as a Kubernetes pod would be (etcd skips
# HTTP_PROXY for loopback targets, so members must not share one loopback).
#
#   host: bridge jgbr<id> 10.213.<id>.1/24  (the host reaches every member for etcdctl
#         and the admin endpoints)
#   namespace jg<id>-m<N>: eth0 10.213.<id>.(10+N)/24, lo
#     joingate  inbound  10.213.<id>.(10+N):2380 (mTLS) -> etcd peer 127.0.0.1:2381
#               outbound 127.0.0.1:2390 (etcd runs with HTTP_PROXY pointing here)
#               admin    10.213.<id>.(10+N):9380
#     etcd      peer 127.0.0.1:2381, advertised http://10.213.<id>.(10+N):2380
#               client 10.213.<id>.(10+N):2379 and 127.0.0.1:2379
#
# Usage (as root):
#   source tests/e2e/lib.sh
#   jg_setup 4                 # network, CA and certificates for members 1..4; traps
#   jg_start_cluster 3         # members 1..3 with --initial-cluster-state new
#   jg_member_add 4; jg_start_member 4 --state existing; jg_wait_healthy
#   jg_put 1 k v; jg_wait_value 4 k v
#   jg_metric 2 joingate_requests_total 'listener="inbound"'
#
# Environment:
#   JOINGATE_BIN     the sidecar binary (default <repo>/build/dev/joingate)
#   JG_E2E_DIRECT=1  run etcd without joingate: peers talk plain HTTP to each other on the
#                    advertised 10.213 address (validates the harness; handy for debugging)
#   JG_E2E_KEEP=1    keep the run directory (logs, configs, data) after the run
#   JG_E2E_ARTIFACTS copy every log there when a run fails
#   JG_E2E_ID        force the 10.213.<id>.0/24 network id (default: first free one)
#   JG_E2E_LOG_LINES lines of each log shown on failure (default 60)
#   JG_ETCD_VERSION  member.version written into every config (default 3.4.23)
#   JG_MODE          admission.mode written into every config (default observe)
#   JG_VIEW_INTERVAL cluster.view_interval written into every config (default: not written,
#                    joingate's own default applies)
#   JG_PROBE_INTERVAL member.probe_interval written into every config (same)
#   JG_ETCD_ARGS     extra flags for every etcd, split on whitespace (e.g. --pre-vote)
#
# A test script may define jg_config_extra N: its output is appended to member N's config
# (whole tables such as [admission.retry] or [[admission.override]]).

if [[ -n ${JG_LIB_LOADED:-} ]]; then return 0; fi
JG_LIB_LOADED=1

JG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JOINGATE_BIN=${JOINGATE_BIN:-$JG_REPO/build/dev/joingate}
JG_ETCD_VERSION=${JG_ETCD_VERSION:-3.4.23}
JG_MODE=${JG_MODE:-observe}
JG_VIEW_INTERVAL=${JG_VIEW_INTERVAL:-}
JG_PROBE_INTERVAL=${JG_PROBE_INTERVAL:-}
JG_ETCD_ARGS=${JG_ETCD_ARGS:-}
JG_E2E_LOG_LINES=${JG_E2E_LOG_LINES:-60}
JG_T0=${EPOCHREALTIME:-$(date +%s.%N)}

# Host-side tools (curl, etcdctl) must reach the namespaces directly, never via a proxy
# from the caller's environment; etcd must not pick up stray ETCD_* settings either.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy GRPC_PROXY grpc_proxy
export NO_PROXY='*' no_proxy='*'
while read -r _v; do unset "$_v"; done < <(compgen -e | grep -E '^ETCD(CTL)?_' || true)
unset _v
export ETCDCTL_API=3

# shellcheck source=tests/support/certs.sh
source "$JG_REPO/tests/support/certs.sh"

declare -A JG_ETCD_PID=() JG_GATE_PID=() JG_ICLUSTER=() JG_STATE=()
JG_EXTRA_PIDS=() # host-side helpers (jg_track_pid), stopped first by jg_cleanup
JG_ID=
JG_DIR=
JG_SIZE=0
JG_CLEANED=
JG_DUMPED=

# ---------------------------------------------------------------- logging and waiting

jg_elapsed() {
    local now=${EPOCHREALTIME:-$(date +%s.%N)}
    awk -v a="$JG_T0" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

jg_log() { printf '[e2e %6ss] %s\n' "$(jg_elapsed)" "$*" >&2; }

# Fail the test loudly: the message, every log, then the EXIT trap cleans up.
jg_fail() {
    printf '\n[e2e %6ss] FAIL: %s\n' "$(jg_elapsed)" "$*" >&2
    jg_dump_logs
    exit 1
}

# jg_wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s; 0 once it
# succeeds, 1 (with a message) when SECONDS pass. Dead member processes fail it early.
jg_wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    while true; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if ((SECONDS >= deadline)); then
            jg_log "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        if ! jg__all_alive; then
            jg_log "a member process exited while waiting for: $what"
            return 1
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------- addresses

jg_ip() { echo "10.213.$JG_ID.$((10 + $1))"; }
jg_ns() { echo "jg$JG_ID-m$1"; }
jg_dir() { echo "$JG_DIR/m$1"; }
jg_endpoint() { echo "http://$(jg_ip "$1"):2379"; }
jg_peer_url() { echo "http://$(jg_ip "$1"):2380"; }
jg_admin_url() { echo "http://$(jg_ip "$1"):9380"; }

# Members with a running etcd, in order.
jg_running() {
    local n out=()
    for n in "${!JG_ETCD_PID[@]}"; do out+=("$n"); done
    ((${#out[@]})) && printf '%s\n' "${out[@]}" | sort -n
}

jg_endpoints() {
    local n eps=()
    for n in $(jg_running); do eps+=("$(jg_endpoint "$n")"); done
    (IFS=,; echo "${eps[*]}")
}

jg_etcdctl() {
    local ep=$1
    shift
    timeout 20 etcdctl --endpoints="$ep" --dial-timeout=2s --command-timeout=5s "$@"
}

# ---------------------------------------------------------------- processes

jg__alive() {
    local pid=$1 state
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]]
}

# Every started process still runs (a crash is reported once, with its exit status).
jg__all_alive() {
    local n ok=0
    for n in "${!JG_ETCD_PID[@]}"; do
        if ! jg__alive "${JG_ETCD_PID[$n]}"; then
            jg__report_exit "etcd m$n" "${JG_ETCD_PID[$n]}"
            ok=1
        fi
    done
    for n in "${!JG_GATE_PID[@]}"; do
        if ! jg__alive "${JG_GATE_PID[$n]}"; then
            jg__report_exit "joingate m$n" "${JG_GATE_PID[$n]}"
            ok=1
        fi
    done
    return $ok
}

declare -A JG_REPORTED=()
jg__report_exit() {
    local what=$1 pid=$2 rc=0
    [[ -n ${JG_REPORTED[$pid]:-} ]] && return 0
    JG_REPORTED[$pid]=1
    wait "$pid" 2>/dev/null || rc=$?
    jg_log "$what (pid $pid) exited with status $rc"
}

# SIGTERM the given pids, wait up to SECONDS for all, then SIGKILL what is left.
jg__terminate() {
    local timeout=$1 pid left deadline
    shift
    for pid in "$@"; do jg__alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        left=0
        for pid in "$@"; do jg__alive "$pid" && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for pid in "$@"; do
        if jg__alive "$pid"; then
            [[ -n ${JG_QUIET_KILL:-} ]] || jg_log "pid $pid ($(jg__comm "$pid")) ignored SIGTERM for ${timeout}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    for pid in "$@"; do
        JG_REPORTED[$pid]=1
        wait "$pid" 2>/dev/null || true
    done
}

jg__comm() { cat "/proc/$1/comm" 2>/dev/null || echo "?"; }

jg__listening() { # NS ADDR:PORT
    [[ -n $(ip netns exec "$1" ss -Hltn "src $2" 2>/dev/null) ]]
}

# ---------------------------------------------------------------- network

jg__claim_id() {
    local start id i fd
    if [[ -n ${JG_E2E_ID:-} ]]; then
        id=$JG_E2E_ID
        exec {fd}>"/tmp/jg-e2e-net-$id.lock"
        flock -w 30 "$fd" || { echo "network id $id is in use (JG_E2E_ID)" >&2; return 1; }
        JG_ID=$id
        JG_LOCK_FD=$fd
        return 0
    fi
    start=$(((($$ + RANDOM) % 230) + 20))
    for ((i = 0; i < 254; i++)); do
        id=$(((start + i - 1) % 254 + 1))
        # an address in this /24 that is not on our bridge belongs to someone else
        if [[ -n $(ip -4 -o addr show to "10.213.$id.0/24" 2>/dev/null | grep -v " jgbr$id ") ]]; then
            continue
        fi
        exec {fd}>"/tmp/jg-e2e-net-$id.lock"
        if flock -n "$fd"; then
            JG_ID=$id
            JG_LOCK_FD=$fd
            return 0
        fi
        exec {fd}>&-
    done
    echo "no free 10.213.<id>.0/24 network for the e2e run" >&2
    return 1
}

# Remove what a killed earlier run with the same id left behind: we hold its lock now, and
# the member processes never inherit the lock, so whatever is in those namespaces is stale.
jg__remove_stale() {
    local ns link d
    for ns in $(ip netns list 2>/dev/null | awk -v p="jg$JG_ID-m" 'index($1, p) == 1 { print $1 }'); do
        jg_log "removing stale namespace $ns"
        jg__kill_ns "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
    # host ends of veth pairs outlive a deleted namespace while its orphaned TCP sockets
    # still retransmit (minutes after a SIGKILL); deleting the host end removes the pair
    for link in $(ip -o link show 2>/dev/null | awk -F': ' -v p="jgv${JG_ID}m" 'index($2, p) == 1 { sub(/@.*/, "", $2); print $2 }'); do
        jg_log "removing stale link $link"
        ip link del "$link" 2>/dev/null || true
    done
    if ip link show "jgbr$JG_ID" >/dev/null 2>&1; then
        jg_log "removing stale bridge jgbr$JG_ID"
        ip link del "jgbr$JG_ID" 2>/dev/null || true
    fi
    for d in /tmp/jg-e2e."$JG_ID".*; do
        [[ -d $d && ! -e $d/KEPT ]] || continue
        jg_log "removing stale run directory $d"
        rm -rf "$d"
    done
}

# SIGKILL whatever runs in namespace NS and wait (bounded) until it is gone.
jg__kill_ns() {
    local ns=$1 pid deadline=$((SECONDS + 5))
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    while [[ -n $(ip netns pids "$ns" 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.1; done
}

jg__net_member() {
    local n=$1 ns veth
    ns=$(jg_ns "$n")
    veth="jgv${JG_ID}m$n"
    ip netns add "$ns" &&
        ip link add "$veth" type veth peer name eth0 netns "$ns" &&
        ip link set "$veth" master "jgbr$JG_ID" up &&
        ip netns exec "$ns" ip link set lo up &&
        ip netns exec "$ns" ip addr add "$(jg_ip "$n")/24" dev eth0 &&
        ip netns exec "$ns" ip link set eth0 up ||
        jg_fail "could not create namespace $ns with $veth on jgbr$JG_ID"
}

# ---------------------------------------------------------------- setup and cleanup

jg__on_signal() {
    trap '' INT TERM HUP
    jg_log "interrupted by SIG$1: cleaning up"
    JG_DUMPED=1 # an interrupted run did not fail: no log dump
    exit $((128 + $2))
}

jg__on_exit() {
    local rc=$1
    trap '' INT TERM HUP
    if ((rc != 0)) && [[ -z $JG_DUMPED ]]; then jg_dump_logs; fi
    jg_cleanup
    exit "$rc"
}

# jg_setup SIZE: claim a network, create the bridge and SIZE member namespaces, the CA and
# every member's certificate. Installs the cleanup traps.
jg_setup() {
    JG_SIZE=${1:?jg_setup SIZE}
    ((EUID == 0)) || { echo "the e2e tests need root (network namespaces)" >&2; exit 1; }
    local tool
    for tool in etcd etcdctl curl jq openssl ip ss flock timeout; do
        command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps" >&2; exit 1; }
    done
    if [[ -z ${JG_E2E_DIRECT:-} ]]; then
        [[ -x $JOINGATE_BIN ]] || {
            echo "no joingate binary at $JOINGATE_BIN (build it: cmake --build --preset dev," \
                "or set JOINGATE_BIN; JG_E2E_DIRECT=1 runs etcd without it)" >&2
            exit 1
        }
    fi
    trap 'jg__on_exit $?' EXIT
    trap 'jg__on_signal INT 2' INT
    trap 'jg__on_signal TERM 15' TERM
    trap 'jg__on_signal HUP 1' HUP

    jg__claim_id || exit 1
    jg__remove_stale
    JG_DIR=$(mktemp -d "/tmp/jg-e2e.$JG_ID.XXXXXX")
    jg_log "run $JG_DIR: network 10.213.$JG_ID.0/24, $JG_SIZE members," \
        "$([[ -n ${JG_E2E_DIRECT:-} ]] && echo "DIRECT (no joingate)" || echo "joingate $JOINGATE_BIN")"

    # nf_call_iptables 0: host firewall rules for bridged traffic must not apply here
    { ip link add name "jgbr$JG_ID" type bridge nf_call_iptables 0 2>/dev/null ||
        ip link add name "jgbr$JG_ID" type bridge; } &&
        ip addr add "10.213.$JG_ID.1/24" dev "jgbr$JG_ID" &&
        ip link set "jgbr$JG_ID" up ||
        jg_fail "could not create the bridge jgbr$JG_ID"
    local n
    for ((n = 1; n <= JG_SIZE; n++)); do jg__net_member "$n"; done

    certs_ca "$JG_DIR/ca" || jg_fail "could not create the test CA"
    for ((n = 1; n <= JG_SIZE; n++)); do
        certs_member "$(jg_dir "$n")/tls" "$JG_DIR/ca" "m$n" "IP:$(jg_ip "$n")" "DNS:m$n" ||
            jg_fail "could not create the certificate of m$n"
        mkdir -p "$(jg_dir "$n")/data"
    done
    JG_TOKEN="jg-e2e-$JG_ID-$$-$RANDOM"
}

jg_cleanup() {
    [[ -n $JG_CLEANED ]] && return 0
    JG_CLEANED=1
    local pids=() n ns
    # helpers of the test itself (writers, watchers) before the members they talk to
    for n in "${JG_EXTRA_PIDS[@]}"; do jg__alive "$n" && pids+=("$n"); done
    ((${#pids[@]})) && JG_QUIET_KILL=1 jg__terminate 3 "${pids[@]}"
    pids=()
    # etcd first (a stopping leader tries to hand over leadership for a few seconds;
    # nothing here needs that), then the sidecars.
    for n in "${!JG_ETCD_PID[@]}"; do pids+=("${JG_ETCD_PID[$n]}"); done
    ((${#pids[@]})) && JG_QUIET_KILL=1 jg__terminate 3 "${pids[@]}"
    pids=()
    for n in "${!JG_GATE_PID[@]}"; do pids+=("${JG_GATE_PID[$n]}"); done
    ((${#pids[@]})) && jg__terminate 5 "${pids[@]}"
    JG_ETCD_PID=()
    JG_GATE_PID=()
    if [[ -n $JG_ID ]]; then
        for ((n = 1; n <= JG_SIZE; n++)); do
            ns=$(jg_ns "$n")
            ip link del "jgv${JG_ID}m$n" 2>/dev/null || true
            ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
            # anything still inside a namespace of ours was started by this run
            jg__kill_ns "$ns"
            ip netns del "$ns" 2>/dev/null || jg_log "could not delete namespace $ns"
        done
        ip link del "jgbr$JG_ID" 2>/dev/null || true
    fi
    if [[ -n $JG_DIR && -d $JG_DIR ]]; then
        if [[ -n ${JG_E2E_KEEP:-} ]]; then
            touch "$JG_DIR/KEPT"
            jg_log "kept $JG_DIR"
        else
            rm -rf "$JG_DIR"
        fi
    fi
}

jg_dump_logs() {
    JG_DUMPED=1
    [[ -n $JG_DIR && -d $JG_DIR ]] || return 0
    local n f d state
    {
        echo "================ e2e logs ($JG_DIR, last $JG_E2E_LOG_LINES lines each)"
        for ((n = 1; n <= JG_SIZE; n++)); do
            d=$(jg_dir "$n")
            state="etcd ${JG_ETCD_PID[$n]:-not running}"
            [[ -n ${JG_ETCD_PID[$n]:-} ]] && ! jg__alive "${JG_ETCD_PID[$n]}" && state+=" (exited)"
            state+=", joingate ${JG_GATE_PID[$n]:-not running}"
            [[ -n ${JG_GATE_PID[$n]:-} ]] && ! jg__alive "${JG_GATE_PID[$n]}" && state+=" (exited)"
            echo "---------------- m$n ($(jg_ip "$n")): $state"
            for f in joingate.log etcd.log; do
                [[ -s $d/$f ]] || continue
                echo "-------- m$n $f"
                tail -n "$JG_E2E_LOG_LINES" "$d/$f"
            done
            if [[ -n ${JG_GATE_PID[$n]:-} ]] && jg__alive "${JG_GATE_PID[$n]}"; then
                echo "-------- m$n joingate /status"
                curl -s --max-time 2 "$(jg_admin_url "$n")/status" || echo "(no answer)"
                echo
            fi
        done
        echo "================ end of e2e logs"
    } >&2
    if [[ -n ${JG_E2E_ARTIFACTS:-} ]]; then
        mkdir -p "$JG_E2E_ARTIFACTS"
        for ((n = 1; n <= JG_SIZE; n++)); do
            for f in joingate.log etcd.log joingate.toml; do
                [[ -f $(jg_dir "$n")/$f ]] && cp "$(jg_dir "$n")/$f" "$JG_E2E_ARTIFACTS/m$n-$f"
            done
        done
        jg_log "logs copied to $JG_E2E_ARTIFACTS"
    fi
}

# ---------------------------------------------------------------- members

# jg_write_config N [--version V] [--mode M] [--admission 'key = value']...
#                   [--view-interval DUR] [--probe-interval DUR]
jg_write_config() {
    local n=$1 version=$JG_ETCD_VERSION mode=$JG_MODE adm=() m peers=()
    local view=$JG_VIEW_INTERVAL probe=$JG_PROBE_INTERVAL
    shift
    while (($#)); do
        case $1 in
        --version) version=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --admission) adm+=("$2"); shift 2 ;;
        --view-interval) view=$2; shift 2 ;;
        --probe-interval) probe=$2; shift 2 ;;
        *) jg_fail "jg_write_config: unknown option $1" ;;
        esac
    done
    for ((m = 1; m <= JG_SIZE; m++)); do peers+=("\"$(jg_ip "$m"):2380\""); done
    local d
    d=$(jg_dir "$n")
    {
        cat <<EOF
# joingate sidecar of e2e member m$n (generated by tests/e2e/lib.sh)
[member]
name = "m$n"
version = "$version"
profile = "etcd3"
peer = "http://127.0.0.1:2381"
client = "http://127.0.0.1:2379"
$([[ -z $probe ]] || echo "probe_interval = \"$probe\"")
[inbound]
listen = "$(jg_ip "$n"):2380"

[outbound]
listen = "127.0.0.1:2390"

[cluster]
peers = [$(IFS=,; echo "${peers[*]}" | sed 's/,/, /g')]
bootstrap = $([[ $n == 1 ]] && echo true || echo false)
$([[ -z $view ]] || echo "view_interval = \"$view\"")
[tls]
cert = "$d/tls/tls.crt"
key = "$d/tls/tls.key"
ca = "$d/tls/ca.crt"

[admission]
mode = "$mode"
EOF
        ((${#adm[@]})) && printf '%s\n' "${adm[@]}"
        cat <<EOF

[admin]
listen = "$(jg_ip "$n"):9380"

[log]
format = "json"
EOF
        if declare -F jg_config_extra >/dev/null; then
            echo
            jg_config_extra "$n"
        fi
    } >"$d/joingate.toml"
}

# The --initial-cluster value for members FIRST..LAST.
jg_initial_cluster() {
    local first=$1 last=$2 m out=()
    for ((m = first; m <= last; m++)); do out+=("m$m=$(jg_peer_url "$m")"); done
    (IFS=,; echo "${out[*]}")
}

jg_start_gate() {
    local n=$1 ns d out
    ns=$(jg_ns "$n")
    d=$(jg_dir "$n")
    if ! out=$(timeout 10 "$JOINGATE_BIN" check-config --config "$d/joingate.toml" 2>&1); then
        echo "$out" >&2
        echo "---- $d/joingate.toml" >&2
        cat -n "$d/joingate.toml" >&2
        jg_fail "joingate check-config rejected the config of m$n"
    fi
    ip netns exec "$ns" "$JOINGATE_BIN" run --config "$d/joingate.toml" >>"$d/joingate.log" 2>&1 \
        {JG_LOCK_FD}>&- &
    JG_GATE_PID[$n]=$!
    jg_wait_until 10 "joingate m$n listening on inbound, outbound and admin" \
        eval "jg__listening $ns $(jg_ip "$n"):2380 && jg__listening $ns 127.0.0.1:2390 &&
              jg__listening $ns $(jg_ip "$n"):9380" ||
        jg_fail "joingate of m$n did not start listening"
}

jg_start_etcd() {
    local n=$1 state=$2 icluster=$3 ns d ip
    ns=$(jg_ns "$n")
    d=$(jg_dir "$n")
    ip=$(jg_ip "$n")
    local args=(
        --name "m$n" --data-dir "$d/data"
        --initial-advertise-peer-urls "http://$ip:2380"
        --listen-client-urls "http://$ip:2379,http://127.0.0.1:2379"
        --advertise-client-urls "http://$ip:2379"
        --initial-cluster "$icluster"
        --initial-cluster-state "$state"
        --initial-cluster-token "$JG_TOKEN"
        --logger zap --log-outputs stderr
    )
    # shellcheck disable=SC2206 # split on whitespace on purpose
    [[ -z $JG_ETCD_ARGS ]] || args+=($JG_ETCD_ARGS)
    if [[ -n ${JG_E2E_DIRECT:-} ]]; then
        ip netns exec "$ns" env etcd "${args[@]}" --listen-peer-urls "http://0.0.0.0:2380" \
            >>"$d/etcd.log" 2>&1 {JG_LOCK_FD}>&- &
    else
        # every peer request of etcd goes through the local joingate outbound proxy
        ip netns exec "$ns" env HTTP_PROXY=http://127.0.0.1:2390 http_proxy=http://127.0.0.1:2390 \
            NO_PROXY= no_proxy= etcd "${args[@]}" --listen-peer-urls "http://127.0.0.1:2381" \
            >>"$d/etcd.log" 2>&1 {JG_LOCK_FD}>&- &
    fi
    JG_ETCD_PID[$n]=$!
}

# jg_start_member N [--state new|existing] [--initial-cluster STR] [--version V] [--mode M]
#                   [--admission 'key = value']... [--view-interval DUR]
#                   [--probe-interval DUR] [--no-gate | --gate-only | --etcd-only]
# Writes the config, starts joingate (waits until it listens), then etcd (does not wait for
# health: a new cluster needs a quorum first; see jg_wait_healthy).
# --gate-only starts only the sidecar (a member held back until it is admitted, as an init
# container running `joingate wait` would); --etcd-only then starts its etcd with the state
# and initial cluster remembered from that call.
jg_start_member() {
    local n=$1 state='' icluster='' gate=1 etcd=1 etcd_only='' cfg=()
    shift
    while (($#)); do
        case $1 in
        --state) state=$2; shift 2 ;;
        --initial-cluster) icluster=$2; shift 2 ;;
        --version | --mode | --admission | --view-interval | --probe-interval) cfg+=("$1" "$2"); shift 2 ;;
        --no-gate) gate=; shift ;;
        --gate-only) etcd=; shift ;;
        --etcd-only) gate='' etcd_only=1; shift ;;
        *) jg_fail "jg_start_member: unknown option $1" ;;
        esac
    done
    [[ -z ${JG_ETCD_PID[$n]:-} ]] || jg_fail "m$n is already running"
    if [[ -z $state ]]; then
        state=new
        [[ -n $etcd_only ]] && state=${JG_STATE[$n]:-new}
    fi
    [[ -n $icluster ]] || icluster=${JG_ICLUSTER[$n]:-}
    [[ -n $icluster ]] || jg_fail "no --initial-cluster for m$n (jg_member_add it first)"
    JG_ICLUSTER[$n]=$icluster
    JG_STATE[$n]=$state
    if [[ -z ${JG_E2E_DIRECT:-} && -n $gate ]]; then
        jg_write_config "$n" "${cfg[@]}"
        jg_start_gate "$n"
    fi
    if [[ -z $etcd ]]; then
        jg_log "started the joingate of m$n only ($(jg_ip "$n")); its etcd waits"
        return 0
    fi
    jg_start_etcd "$n" "$state" "$icluster"
    jg_log "started m$n ($(jg_ip "$n"), state $state)"
}

# jg_stop_member N: etcd first, then its joingate; SIGTERM, SIGKILL after 10 s.
jg_stop_member() {
    local n=$1
    if [[ -n ${JG_ETCD_PID[$n]:-} ]]; then
        jg__terminate 10 "${JG_ETCD_PID[$n]}"
        unset "JG_ETCD_PID[$n]"
    fi
    if [[ -n ${JG_GATE_PID[$n]:-} ]]; then
        jg__terminate 10 "${JG_GATE_PID[$n]}"
        unset "JG_GATE_PID[$n]"
    fi
    jg_log "stopped m$n"
}

# jg_start_cluster K [start options]: members 1..K as a new cluster, then wait for health.
jg_start_cluster() {
    local k=$1 n ic
    shift
    ic=$(jg_initial_cluster 1 "$k")
    for ((n = 1; n <= k; n++)); do jg_start_member "$n" --state new --initial-cluster "$ic" "$@"; done
    jg_wait_healthy 60
}

jg_health() { jg_etcdctl "$(jg_endpoint "$1")" endpoint health >/dev/null 2>&1; }

# jg_wait_healthy [SECONDS] [N...]: every given (default: running) member answers
# `endpoint health` and the member list shows every running member started.
jg_wait_healthy() {
    local timeout=${1:-30} n
    shift || true
    local members=("$@")
    ((${#members[@]})) || mapfile -t members < <(jg_running)
    for n in "${members[@]}"; do
        jg_wait_until "$timeout" "m$n healthy" jg_health "$n" || jg_fail "m$n is not healthy"
    done
    jg_wait_until "$timeout" "member list shows ${members[*]/#/m} started" \
        jg__all_started "${members[@]}" || jg_fail "not every member is started in the member list"
    jg_log "healthy: ${members[*]/#/m}"
}

jg__all_started() {
    local n names
    names=$(jg_etcdctl "$(jg_endpoint "$1")" member list -w json | jq -r '.members[].name') || return 1
    for n in "$@"; do grep -qx "m$n" <<<"$names" || return 1; done
}

# jg_member_add N [--learner]: add mN through the running members; remembers the
# initial cluster etcd printed for its first start.
jg_member_add() {
    local n=$1 out ic
    shift
    # etcd refuses reconfiguration ("unhealthy cluster") until the member asked has been
    # connected to every peer for 5 s; anything else is a real failure.
    local deadline=$((SECONDS + 30))
    while ! out=$(jg_etcdctl "$(jg_endpoints)" member add "m$n" --peer-urls="$(jg_peer_url "$n")" "$@" 2>&1); do
        if [[ $out != *"unhealthy cluster"* ]] || ((SECONDS >= deadline)); then
            jg_fail "member add m$n failed: $out"
        fi
        sleep 0.5
    done
    ic=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$out")
    [[ -n $ic ]] || jg_fail "member add m$n printed no ETCD_INITIAL_CLUSTER: $out"
    JG_ICLUSTER[$n]=$ic
    jg_log "member add m$n $*: initial cluster $ic"
}

# jg_member_id N: the hex member id of mN (from the member list).
jg_member_id() {
    jg_etcdctl "$(jg_endpoints)" member list -w simple |
        awk -F', ' -v name="m$1" '$3 == name { print $1 }'
}

# jg_member_promote N [SECONDS]: promote learner mN once it has caught up (etcd refuses
# until then).
jg_member_promote() {
    local n=$1 timeout=${2:-30} id
    id=$(jg_member_id "$n")
    [[ -n $id ]] || jg_fail "m$n is not in the member list"
    jg_wait_until "$timeout" "learner m$n promoted" \
        jg_etcdctl "$(jg_endpoints)" member promote "$id" || jg_fail "could not promote m$n"
    jg_log "promoted m$n"
}

# ---------------------------------------------------------------- data

jg_put() { jg_etcdctl "$(jg_endpoint "$1")" put "$2" "$3" >/dev/null; }

# jg_get N KEY [etcdctl get options]: print the value of KEY as mN answers it.
jg_get() {
    local n=$1 key=$2
    shift 2
    jg_etcdctl "$(jg_endpoint "$n")" get "$key" --print-value-only "$@"
}

jg__has_value() { [[ $(jg_get "$1" "$2" --consistency=s) == "$3" ]]; }

# jg_wait_value N KEY VALUE [SECONDS]: mN's own (serializable) read returns VALUE.
jg_wait_value() {
    jg_wait_until "${4:-20}" "m$1 serves $2=$3 locally" jg__has_value "$1" "$2" "$3"
}

# ---------------------------------------------------------------- observation

# jg_status_line N: "endpoint, id, version, db size, is leader, is learner, raft term,
# raft index, raft applied index, errors" as mN reports about itself.
jg_status_line() { jg_etcdctl "$(jg_endpoint "$1")" endpoint status -w simple; }

# jg_leader: the member number of the leader according to the running members ("" when
# none says it leads).
jg_leader() {
    local n
    for n in $(jg_running); do
        if [[ $(jg_status_line "$n" 2>/dev/null | awk -F', ' '{ print $5 }') == true ]]; then
            echo "$n"
            return 0
        fi
    done
    return 1
}

# jg_raft_term [N]: the raft term mN (default: the first running member) reports.
jg_raft_term() {
    local n=${1:-$(jg_running | head -n1)}
    jg_status_line "$n" | awk -F', ' '{ print $7 }'
}

jg_scrape() { curl -sf --noproxy '*' --max-time 3 "$(jg_admin_url "$1")/metrics"; }

# jg_metric N NAME [MATCHER...]: the sum of every NAME series on mN's /metrics whose
# labels contain every MATCHER (like listener="inbound"); fails when the scrape fails.
jg_metric() {
    local n=$1 name=$2 body
    shift 2
    body=$(jg_scrape "$n") || return 1
    awk -v name="$name" -v matchers="$(printf '%s\n' "$@")" '
        BEGIN { nm = split(matchers, m, "\n"); sum = 0 }
        /^#/ || NF < 2 { next }
        {
            b = index($0, "{")
            if (b > 0) {
                metric = substr($0, 1, b - 1)
                e = index($0, "} ")
                labels = "," substr($0, b + 1, e - b - 1) ","
                split(substr($0, e + 2), rest, " ")
                value = rest[1]
            } else {
                metric = $1; labels = ",,"; value = $2
            }
            if (metric != name) next
            for (i = 1; i <= nm; i++)
                if (m[i] != "" && index(labels, "," m[i] ",") == 0) next
            sum += value
        }
        END { if (sum == int(sum)) printf "%d\n", sum; else printf "%.6g\n", sum }
    ' <<<"$body"
}

jg_status_json() { curl -sf --noproxy '*' --max-time 3 "$(jg_admin_url "$1")/status"; }

# jg_etcd_direct_peer_conns N: established TCP connections of mN's etcd to any peer port
# other than through the loopback (0 when every peer request uses joingate).
jg_etcd_direct_peer_conns() {
    local n=$1
    ip netns exec "$(jg_ns "$n")" ss -Htnp state established 2>/dev/null |
        awk -v pid="pid=${JG_ETCD_PID[$n]}," '
            index($0, pid) && $4 !~ /^127\.0\.0\.1:/ && $4 ~ /:2380$/ { c++ }
            END { print c + 0 }'
}

# ---------------------------------------------------------------- helpers for longer stories

# jg_track_pid PID...: host-side helper processes of a test (a writer, a watcher) that
# jg_cleanup stops before the members, also on Ctrl-C.
jg_track_pid() { JG_EXTRA_PIDS+=("$@"); }

# jg_ns_exec N COMMAND...: run COMMAND inside mN's network namespace (jg_cleanup kills
# whatever still runs there).
jg_ns_exec() {
    local n=$1
    shift
    ip netns exec "$(jg_ns "$n")" "$@"
}

# jg_restart_gate N [jg_write_config options]: stop mN's sidecar only (SIGTERM; it drains
# for up to limits.drain_timeout; SIGKILL after 25 s), rewrite its config with the options
# and start it again. mN's etcd keeps running, cut off from its peers meanwhile.
jg_restart_gate() {
    local n=$1 t0=$SECONDS
    shift
    [[ -n ${JG_GATE_PID[$n]:-} ]] || jg_fail "jg_restart_gate: the joingate of m$n is not running"
    jg__terminate 25 "${JG_GATE_PID[$n]}"
    unset "JG_GATE_PID[$n]"
    jg_write_config "$n" "$@"
    jg_start_gate "$n"
    jg_log "restarted the joingate of m$n in $((SECONDS - t0))s"
}

# jg_member_remove N: remove mN from the member list, found by its peer URL (a member that
# never started has no name there).
jg_member_remove() {
    local n=$1 id
    id=$(jg_etcdctl "$(jg_endpoints)" member list -w simple |
        awk -F', ' -v u="$(jg_peer_url "$n")" '$4 == u { print $1 }')
    [[ -n $id ]] || jg_fail "m$n ($(jg_peer_url "$n")) is not in the member list"
    jg_etcdctl "$(jg_endpoints)" member remove "$id" >/dev/null || jg_fail "member remove m$n ($id) failed"
    jg_log "member remove m$n ($id)"
}

# jg_etcd_in_ns N: 0 when an etcd process runs in mN's namespace, started by this harness
# or not.
jg_etcd_in_ns() {
    local pid
    for pid in $(ip netns pids "$(jg_ns "$1")" 2>/dev/null); do
        [[ $(jg__comm "$pid") == etcd ]] && return 0
    done
    return 1
}

# jg_readyz N: "CODE BODY" of mN's sidecar /readyz ("000 " when it does not answer).
jg_readyz() {
    local out
    out=$(curl -s --noproxy '*' --max-time 3 -w '\n%{http_code}' "$(jg_admin_url "$1")/readyz") || true
    printf '%s %s\n' "${out##*$'\n'}" "$(head -n -1 <<<"$out" | tr -d '\n')"
}

# jg_version_doc N: mN's sidecar version document (GET /joingate/v1/version on its admin
# listener).
jg_version_doc() { curl -sf --noproxy '*' --max-time 3 "$(jg_admin_url "$1")/joingate/v1/version"; }

# jg_wait_gate_exit N SECONDS: mN's sidecar must exit on its own within SECONDS. Sets
# JG_GATE_RC to its exit status and forgets the process (lib.sh's liveness checks do not
# count it as a crash). Fails the test when it keeps running.
JG_GATE_RC=
jg_wait_gate_exit() {
    local n=$1 timeout=$2 pid deadline
    pid=${JG_GATE_PID[$n]:-}
    [[ -n $pid ]] || jg_fail "jg_wait_gate_exit: no joingate of m$n was started"
    deadline=$((SECONDS + timeout))
    while jg__alive "$pid"; do
        ((SECONDS < deadline)) || jg_fail "the joingate of m$n still runs after ${timeout}s"
        sleep 0.1
    done
    JG_REPORTED[$pid]=1
    JG_GATE_RC=0
    wait "$pid" 2>/dev/null || JG_GATE_RC=$?
    unset "JG_GATE_PID[$n]"
    jg_log "the joingate of m$n exited with status $JG_GATE_RC"
}

# jg_wait_named N [SECONDS]: wait until the member list names mN: its etcd started and
# published itself (a member added but not started has no name, and jg_member_id and
# jg_member_promote find members by name).
jg_wait_named() {
    jg_wait_until "${2:-30}" "the member list names m$1" eval "[[ -n \$(jg_member_id $1) ]]" ||
        jg_fail "the member list does not name m$1 (its etcd did not start and publish itself)"
}

# jg_fds PID / jg_rss_kb PID: open descriptors and resident memory (kB) of a process, for
# the fault suites' before/after numbers.
jg_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
jg_rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# jg_kill_gate N: SIGKILL mN's sidecar (a crash); lib.sh's liveness checks do not count it.
jg_kill_gate() {
    local n=$1 pid=${JG_GATE_PID[$1]:-}
    [[ -n $pid ]] || jg_fail "jg_kill_gate: the joingate of m$n is not running"
    JG_REPORTED[$pid]=1
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "JG_GATE_PID[$n]"
}

# jg_kill_etcd N: SIGKILL mN's etcd; jg_restart_etcd N starts it again on its data.
jg_kill_etcd() {
    local n=$1 pid=${JG_ETCD_PID[$1]:-}
    [[ -n $pid ]] || jg_fail "jg_kill_etcd: the etcd of m$n is not running"
    JG_REPORTED[$pid]=1
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "JG_ETCD_PID[$n]"
}
jg_restart_etcd() { jg_start_etcd "$1" existing "${JG_ICLUSTER[$1]}"; }
