#!/usr/bin/env bash
# Helpers for the admission e2e scenarios (tests/e2e/admission_*.sh), sourced after lib.sh.
#
#   source tests/e2e/lib.sh; source tests/e2e/lib_admission.sh
#
# What it adds to lib.sh:
#   - every config gets cluster.view_interval = $JGA_VIEW_INTERVAL and
#     member.probe_interval = $JGA_PROBE_INTERVAL (default 1s each), so that sidecars
#     learn versions and leaders quickly;
#   - JGA_EXTRA[N]: text appended to member N's config (e.g. [[admission.override]]);
#   - restarting or reloading (SIGHUP) one sidecar while its etcd keeps running;
#   - waiting for an etcd that is expected to exit (a refused joiner), with its exit
#     status and timing;
#   - admission decisions from metrics and from the JSON log lines.

# tests/e2e/run starts every tests/e2e/*.sh except lib.sh as a suite: run as a command,
# this file is not one.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "lib_admission.sh is a library for tests/e2e/admission_*.sh, not a suite: nothing to run"
    exit 0
fi

if [[ -n ${JGA_LIB_LOADED:-} ]]; then return 0; fi
JGA_LIB_LOADED=1

[[ -n ${JG_LIB_LOADED:-} ]] || { echo "source lib.sh before lib_admission.sh" >&2; exit 2; }

JGA_VIEW_INTERVAL=${JGA_VIEW_INTERVAL:-1s}
JGA_PROBE_INTERVAL=${JGA_PROBE_INTERVAL:-1s}
# a lib.sh that renders these keys itself (JG_VIEW_INTERVAL, JG_PROBE_INTERVAL) does so;
# the wrapper of jg_write_config below adds them where it does not
JG_VIEW_INTERVAL=${JG_VIEW_INTERVAL:-$JGA_VIEW_INTERVAL}
JG_PROBE_INTERVAL=${JG_PROBE_INTERVAL:-$JGA_PROBE_INTERVAL}
declare -A JGA_EXTRA=()
declare -A JGA_EXIT_RC=() JGA_EXIT_SECS=()

# ---------------------------------------------------------------- configuration

# Older lib.sh renders [member] without probe_interval and [cluster] without
# view_interval: keep its rendering and add the keys when they are missing.
eval "$(declare -f jg_write_config | sed '1s/^jg_write_config/jga__lib_write_config/')"
jg_write_config() {
    jga__lib_write_config "$@"
    local f
    f="$(jg_dir "$1")/joingate.toml"
    grep -q '^view_interval' "$f" ||
        sed -i "/^bootstrap = /a view_interval = \"$JGA_VIEW_INTERVAL\"" "$f"
    grep -q '^probe_interval' "$f" ||
        sed -i "/^client = /a probe_interval = \"$JGA_PROBE_INTERVAL\"" "$f"
}

# lib.sh appends the output of jg_config_extra N to member N's config.
jg_config_extra() { [[ -z ${JGA_EXTRA[$1]:-} ]] || printf '%s\n' "${JGA_EXTRA[$1]}"; }

# jga_override_text MEMBER REASON [MINUTES]: an [[admission.override]] table for MEMBER,
# valid for MINUTES (default 60).
jga_override_text() {
    local until
    until=$(date -u -d "+${3:-60} minutes" +%Y-%m-%dT%H:%M:%SZ)
    printf '[[admission.override]]\nmember = "%s"\nuntil = "%s"\nreason = "%s"\n' "$1" "$until" "$2"
}

# jga_reload N [config options]: rewrite member N's config (jg_write_config options), send
# SIGHUP to its sidecar and wait until it counts a successful reload.
jga_reload() {
    local n=$1 before pid
    shift
    pid=${JG_GATE_PID[$n]:-}
    [[ -n $pid ]] || jg_fail "jga_reload: the joingate of m$n is not running"
    before=$(jg_metric "$n" joingate_config_reloads_total 'result="success"') ||
        jg_fail "cannot scrape the metrics of m$n before reloading"
    jg_write_config "$n" "$@"
    timeout 10 "$JOINGATE_BIN" check-config --config "$(jg_dir "$n")/joingate.toml" >/dev/null 2>&1 ||
        jg_fail "the new config of m$n does not pass check-config: $(cat -n "$(jg_dir "$n")/joingate.toml")"
    kill -HUP "$pid" || jg_fail "could not send SIGHUP to the joingate of m$n (pid $pid)"
    jg_wait_until 10 "m$n counts a successful config reload" \
        eval "(( \$(jg_metric $n joingate_config_reloads_total 'result=\"success\"') > $before ))" ||
        jg_fail "m$n did not reload its config on SIGHUP (reloads: $(jg_metric "$n" joingate_config_reloads_total))"
    jg_log "reloaded the config of m$n (SIGHUP)"
}

# jga_restart_gate N [config options]: stop member N's sidecar only (its etcd keeps
# running, cut off from its peers meanwhile), rewrite its config and start it again.
jga_restart_gate() {
    local n=$1 t0
    shift
    [[ -n ${JG_GATE_PID[$n]:-} ]] || jg_fail "jga_restart_gate: the joingate of m$n is not running"
    t0=$SECONDS
    jg__terminate 20 "${JG_GATE_PID[$n]}"
    unset "JG_GATE_PID[$n]"
    jg_write_config "$n" "$@"
    jg_start_gate "$n"
    jg_log "restarted the joingate of m$n ($((SECONDS - t0))s): $(jga_declared "$n")"
}

# The version written in member N's config.
jga_declared() { sed -n 's/^version = "\(.*\)"$/version \1/p' "$(jg_dir "$1")/joingate.toml" | head -n1; }

# ---------------------------------------------------------------- an etcd that must exit

# jga_expect_etcd_exit N SECONDS: member N's etcd must exit within SECONDS of now. Records
# its exit status in JGA_EXIT_RC[N] and the seconds since START_EPOCH (the 3rd argument,
# from $EPOCHREALTIME when it was started; default now) in JGA_EXIT_SECS[N]; forgets the
# process so that lib.sh's liveness checks do not count it as a crash. Fails the test
# when it keeps running.
jga_expect_etcd_exit() {
    local n=$1 timeout=$2 start=${3:-$EPOCHREALTIME} pid rc=0 deadline
    pid=${JG_ETCD_PID[$n]:-}
    [[ -n $pid ]] || jg_fail "jga_expect_etcd_exit: no etcd of m$n was started"
    deadline=$((SECONDS + timeout))
    while jg__alive "$pid"; do
        ((SECONDS < deadline)) ||
            jg_fail "the etcd of m$n still runs ${timeout}s after it started: it was not refused"
        sleep 0.05
    done
    JG_REPORTED[$pid]=1
    wait "$pid" 2>/dev/null || rc=$?
    JGA_EXIT_RC[$n]=$rc
    JGA_EXIT_SECS[$n]=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    unset "JG_ETCD_PID[$n]"
    jg_log "etcd m$n exited with status $rc, ${JGA_EXIT_SECS[$n]}s after it started"
}

# jga_start_refused_joiner N VERSION: start member N (already `member add`ed) with its
# sidecar declaring VERSION and --initial-cluster-state existing, and require that etcd
# exits non-zero within 30 s logging "discovery failed". Leaves its sidecar running.
jga_start_refused_joiner() {
    local n=$1 version=$2 t0 log
    shift 2
    log="$(jg_dir "$n")/etcd.log"
    : >>"$log"
    local mark
    mark=$(wc -l <"$log")
    jg_start_member "$n" --state existing --version "$version" "$@"
    t0=$EPOCHREALTIME
    jga_expect_etcd_exit "$n" 30 "$t0"
    ((JGA_EXIT_RC[$n] != 0)) || jg_fail "etcd m$n (declared $version) exited with status 0, want non-zero"
    tail -n +"$((mark + 1))" "$log" | grep -q '"discovery failed"' ||
        jg_fail "etcd m$n (declared $version) exited ${JGA_EXIT_RC[$n]} without logging \"discovery failed\":
$(tail -n +"$((mark + 1))" "$log" | tail -n 20)"
    jg_log "etcd m$n (declared $version) was refused: exit ${JGA_EXIT_RC[$n]} after ${JGA_EXIT_SECS[$n]}s;" \
        "its last lines:"
    tail -n +"$((mark + 1))" "$log" | grep -E '"level":"(warn|error|fatal)"' | tail -n 6 |
        cut -c1-400 | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------- observation

# jga_raft_index N: the raft index mN reports about itself (endpoint status).
jga_raft_index() { jg_status_line "$1" | awk -F', ' '{ print $8 }'; }

# jga_decisions N [MATCHER...]: sum of joingate_admission_decisions_total on mN's
# /metrics whose labels contain every MATCHER (e.g. side=inbound decision=reject: written
# without quotes here, quoted for lib.sh's jg_metric).
jga_decisions() {
    local n=$1 m ms=()
    shift
    for m in "$@"; do ms+=("${m%%=*}=\"${m#*=}\""); done
    jg_metric "$n" joingate_admission_decisions_total "${ms[@]}"
}

# jga_admission_lines N [JQ CONDITION]: mN's sidecar log lines with event=admission (that
# also satisfy the jq condition, e.g. '.decision == "reject"'), one JSON object per line.
jga_admission_lines() {
    local n=$1 cond=${2:-true}
    # -R and fromjson?: a line that is not JSON (anything else written to the log) is
    # skipped instead of ending the scan
    jq -cR "fromjson? | objects | select(.event? == \"admission\") | select($cond)" "$(jg_dir "$n")/joingate.log" 2>/dev/null
}

# jga_has_admission_line N JQ-CONDITION: there is at least one such line.
jga_has_admission_line() { [[ -n $(jga_admission_lines "$1" "$2" | head -n1) ]]; }

# jga_decision_summary N: every decision series of mN with a non-zero count, one line.
jga_decision_summary() {
    jg_scrape "$1" | awk '/^joingate_admission_decisions_total\{/ && $NF != "0" { sub(/^joingate_admission_decisions_total/, ""); printf "%s=%s ", $1, $2 }'
}

# jga_status_table N: the output of `joingate status` against mN's admin listener.
jga_status_table() { timeout 10 "$JOINGATE_BIN" status --admin "$(jg_admin_url "$1")"; }

# jga_view_has N MEMBER VERSION: mN's /status shows MEMBER at VERSION.
jga_view_has() {
    jg_status_json "$1" | jq -e --arg m "$2" --arg v "$3" \
        '.cluster.members | any(.member == $m and .version == $v)' >/dev/null
}

# jga_view_leader N: the leader in mN's /status, as "member version".
jga_view_leader() { jg_status_json "$1" | jq -r '"\(.cluster.leader) \(.cluster.leader_version)"'; }

# jga_index_at_least N TARGET: mN's raft index is at least TARGET.
jga_index_at_least() {
    local i
    i=$(jga_raft_index "$1" 2>/dev/null) || return 1
    [[ $i =~ ^[0-9]+$ ]] && ((i >= $2))
}

# jga_wait_leader_seen LEADER VERSION N...: every listed sidecar's view shows mLEADER
# leading at VERSION (within 15 s).
jga_wait_leader_seen() {
    local leader=$1 version=$2 n
    shift 2
    for n in "$@"; do
        jg_wait_until 15 "m$n's sidecar sees leader m$leader at $version" \
            eval "[[ \$(jga_view_leader $n) == 'm$leader $version' ]]" ||
            jg_fail "the sidecar of m$n does not see the leader m$leader at $version: $(jga_view_leader "$n")"
    done
}

# jga_write_keys PREFIX COUNT: puts PREFIX/1..COUNT = v1..vCOUNT through m1..m3 in turn.
jga_write_keys() {
    local i
    for i in $(seq 1 "$2"); do jg_put $((i % 3 + 1)) "$1/$i" "v$i" || jg_fail "put $1/$i failed"; done
}

# jga_serves_written N LEADER PREFIX COUNT: once mN's raft index reached the leader's, mN
# serves PREFIX/1..COUNT = v1..vCOUNT from its own copy (serializable reads on its endpoint).
jga_serves_written() {
    local n=$1 leader=$2 prefix=$3 count=$4 target i got
    target=$(jga_raft_index "$leader") || jg_fail "no endpoint status from the leader m$leader"
    jg_wait_until 30 "m$n's raft index reaches $target" jga_index_at_least "$n" "$target" ||
        jg_fail "m$n's raft index $(jga_raft_index "$n") did not reach the leader's $target"
    for i in $(seq 1 "$count"); do
        got=$(jg_get "$n" "$prefix/$i" --consistency=s) || jg_fail "serializable get on m$n failed"
        [[ $got == "v$i" ]] || jg_fail "m$n serves $prefix/$i='$got', want 'v$i'"
    done
}

# jga_raft_status N: etcd's own raft status of mN, from /debug/vars on its client port
# ({"id","term","commit","lead","raftState","applied","progress":{"<hex id>":{"match",...}}}).
# The leader's "progress" says how far each follower's log matches: the way to follow a
# member that serves no clients (a restarted etcd 3.4 serves none until it has published
# itself through raft).
jga_raft_status() {
    curl -sf --noproxy '*' --max-time 3 "$(jg_endpoint "$1")/debug/vars" | jq -ce '.["raft.status"]'
}

# jga_match N ID: the index up to which mN (the leader) knows member ID's log matches.
jga_match() { jga_raft_status "$1" | jq -er --arg id "$2" '.progress[$id].match'; }

# jga_commit N: mN's raft commit index (from /debug/vars).
jga_commit() { jga_raft_status "$1" | jq -er '.commit'; }

# Checks that should not stop the scenario (so that later steps still run and report):
# jga_check_failed MESSAGE records a failure; jga_finish fails the test if any was
# recorded, listing them all.
JGA_FAILURES=()
jga_check_failed() {
    JGA_FAILURES+=("$1")
    printf '\n[e2e %6ss] CHECK FAILED (the scenario goes on): %s\n\n' "$(jg_elapsed)" "$1" >&2
}
jga_finish() {
    if ((${#JGA_FAILURES[@]})); then
        local f msg="${#JGA_FAILURES[@]} check(s) failed:"
        for f in "${JGA_FAILURES[@]}"; do msg+=$'\n  - '"$f"; done
        jg_fail "$msg"
    fi
}

# jga_etcd_lines_since N MARK JQ-CONDITION: mN's etcd log lines after line MARK that
# satisfy the jq condition (etcd logs zap JSON lines; anything else is skipped).
jga_etcd_lines_since() {
    tail -n +"$(($2 + 1))" "$(jg_dir "$1")/etcd.log" | jq -cR "fromjson? | objects | select($3)" 2>/dev/null
}
