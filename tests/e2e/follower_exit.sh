#!/usr/bin/env bash
# Follower side, giving up (admission.mode "both", policy "skew", max_minor_skew 1) on a
# real etcd 3.4.23 cluster of three members at 3.4.23, with a fourth member m4 added as a
# learner whose etcd is never started before its sidecar admits it:
#   1. on_reject = "exit": m4's sidecar declaring 3.3.0 (older_than_leader), then 3.6.0
#      (skew_exceeded), exits non-zero and logs why (event "admission", "giving up on
#      joining", the reason); a `joingate wait` started before it fails (exit 1);
#   2. on_reject = "wait" with admission.retry.deadline: the sidecar stays up, /readyz says
#      "gave_up", and `joingate wait` fails at once with the reason;
#   3. on_reject = "exit" with a version the policy admits (3.4.23): the sidecar stays up,
#      `joingate wait` exits 0, and m4 joins, is promoted and serves the data.
# The cluster stays healthy throughout.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

JG_MODE=both
JG_VIEW_INTERVAL=1s
JG_PROBE_INTERVAL=1s
ADM=(--admission 'policy = "skew"' --admission 'max_minor_skew = 1')
declare -A RETRY=() # member -> extra lines of its [admission.retry]
jg_config_extra() {
    printf '[admission.retry]\ninitial = "1s"\nmax = "4s"\n%s\n' "${RETRY[$1]:-}"
}

jg_setup 4
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# start_wait TIMEOUT: `joingate wait` against m4's admin listener, in m4's namespace, in the
# background; "STATUS EPOCH" in $JG_DIR/wait.rc when it ends, its output in wait.out.
start_wait() {
    rm -f "$JG_DIR/wait.rc"
    (
        rc=0
        jg_ns_exec 4 "$JOINGATE_BIN" wait --admin "$(jg_admin_url 4)" --timeout "$1" >"$JG_DIR/wait.out" 2>&1 || rc=$?
        echo "$rc $EPOCHREALTIME" >"$JG_DIR/wait.rc"
    ) &
    WAIT_PID=$!
    jg_track_pid "$WAIT_PID"
    WAIT_T0=$EPOCHREALTIME
}
# end_wait SECONDS: wait (bounded) for it; sets WAIT_RC and WAIT_SECS.
end_wait() {
    jg_wait_until "$1" "joingate wait ends" test -s "$JG_DIR/wait.rc" ||
        jg_fail "joingate wait still runs after ${1}s: $(cat "$JG_DIR/wait.out")"
    wait "$WAIT_PID" 2>/dev/null || true
    local t
    read -r WAIT_RC t <"$JG_DIR/wait.rc"
    WAIT_SECS=$(secs "$WAIT_T0" "$t")
    jg_log "joingate wait exited $WAIT_RC after ${WAIT_SECS}s: $(tr '\n' '|' <"$JG_DIR/wait.out")"
}

no_etcd_in_m4() { ! jg_etcd_in_ns 4 || jg_fail "an etcd process runs in m4's namespace"; }

# ---------------------------------------------------------------------------------------
jg_log "step 0: m1..m3 at 3.4.23 (mode both, policy skew), m4 added as a learner"
jg_start_cluster 3 "${ADM[@]}"
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
view_leader() { jg_status_json "$1" | jq -r '"\(.cluster.leader) \(.cluster.leader_version)"'; }
for n in 1 2 3; do
    jg_wait_until 15 "m$n's sidecar sees leader m$leader at 3.4.23" \
        eval "[[ \$(view_leader $n) == 'm$leader 3.4.23' ]]" ||
        jg_fail "the sidecar of m$n does not see leader m$leader at 3.4.23: $(view_leader "$n")"
done
for i in 1 2 3 4 5; do jg_put $((i % 3 + 1)) "exit/before/$i" "v$i" || jg_fail "put exit/before/$i failed"; done
jg_member_add 4 --learner

# ---------------------------------------------------------------------------------------
# The sidecar is started here rather than by jg_start_member: it is expected to exit, and
# lib.sh treats a member process that exits as a failure.
log4=$(jg_dir 4)/joingate.log
refused_exit() { # VERSION REASON [WITH_WAIT]
    local version=$1 reason=$2 with_wait=${3:-} mark pid rc=0 t0 line
    jg_log "step 1: on_reject = exit, m4's sidecar declaring $version (want: exit, $reason)"
    jg_write_config 4 --version "$version" "${ADM[@]}" --admission 'on_reject = "exit"'
    timeout 10 "$JOINGATE_BIN" check-config --config "$(jg_dir 4)/joingate.toml" >/dev/null ||
        jg_fail "check-config rejects m4's config: $(cat -n "$(jg_dir 4)/joingate.toml")"
    [[ -z $with_wait ]] || start_wait 12s
    : >>"$log4"
    mark=$(wc -l <"$log4")
    t0=$EPOCHREALTIME
    jg_ns_exec 4 "$JOINGATE_BIN" run --config "$(jg_dir 4)/joingate.toml" >>"$log4" 2>&1 {JG_LOCK_FD}>&- &
    pid=$!
    local deadline=$((SECONDS + 20))
    while jg__alive "$pid"; do
        ((SECONDS < deadline)) || { kill -KILL "$pid"; jg_fail "m4's sidecar declaring $version still runs after 20 s:
$(tail -n +"$((mark + 1))" "$log4" | tail -n 10)"; }
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || rc=$?
    jg_log "m4's sidecar exited with status $rc $(secs "$t0" "$EPOCHREALTIME")s after it started"
    ((rc != 0)) || jg_fail "m4's sidecar declaring $version exited with status 0, want non-zero"
    line=$(tail -n +"$((mark + 1))" "$log4" | jq -cR 'fromjson? | select(.msg? == "giving up on joining")' | head -n1)
    [[ -n $line ]] || jg_fail "m4's sidecar exited $rc without a \"giving up on joining\" line:
$(tail -n +"$((mark + 1))" "$log4" | tail -n 10)"
    jg_log "it logged: $line"
    jq -e --arg r "$reason" --arg v "$version" '.level == "error" and .event == "admission" and .side == "follower"
        and .reason == $r and .member_version == $v and .on_reject == "exit"' <<<"$line" >/dev/null ||
        jg_fail "m4's \"giving up on joining\" line does not say event admission, side follower, reason $reason, on_reject exit: $line"
    [[ $(tail -n +"$((mark + 1))" "$log4" | grep -c '"msg":"admitted"') == 0 ]] ||
        jg_fail "m4's sidecar declaring $version logged \"admitted\" before it gave up"
    if [[ -n $with_wait ]]; then
        end_wait 20
        [[ $WAIT_RC == 1 ]] || jg_fail "joingate wait against the sidecar that gave up exited $WAIT_RC, want 1"
        grep -q 'timed out after' "$JG_DIR/wait.out" ||
            jg_fail "joingate wait did not say it timed out: $(cat "$JG_DIR/wait.out")"
    fi
    no_etcd_in_m4
    jg_wait_healthy 15 1 2 3
}
refused_exit 3.3.0 older_than_leader with-wait
refused_exit 3.6.0 skew_exceeded

# ---------------------------------------------------------------------------------------
jg_log "step 2: on_reject = wait with retry.deadline = 4s, m4's sidecar declaring 3.6.0"
RETRY[4]='deadline = "4s"'
start_wait 60s
jg_start_member 4 --state existing --gate-only --version 3.6.0 "${ADM[@]}"
end_wait 30
[[ $WAIT_RC == 1 ]] || jg_fail "joingate wait against a sidecar past its deadline exited $WAIT_RC, want 1"
grep -Eq '^gave up: .*skew_exceeded .*member m4 at 3\.6\.0' "$JG_DIR/wait.out" ||
    jg_fail "joingate wait did not print 'gave up: ... skew_exceeded (member m4 at 3.6.0 ...)': $(cat "$JG_DIR/wait.out")"
awk -v s="$WAIT_SECS" 'BEGIN { exit !(s < 15) }' || jg_fail "joingate wait took ${WAIT_SECS}s to give up, want < 15s"
read -r code body <<<"$(jg_readyz 4)"
[[ $code == 503 ]] && jq -e '.state == "gave_up" and .reason == "skew_exceeded"' <<<"$body" >/dev/null ||
    jg_fail "m4's /readyz after its deadline: $code $body"
jg__alive "${JG_GATE_PID[4]}" || jg_fail "m4's sidecar (on_reject = wait) exited at its deadline"
jg_log "m4's /readyz: $code $body"
line=$(jq -cR 'fromjson? | select(.msg? == "giving up on joining")' "$log4" | tail -n1)
jq -e '.reason == "skew_exceeded" and .on_reject == "wait"' <<<"$line" >/dev/null ||
    jg_fail "m4's sidecar logged no \"giving up on joining\" with on_reject wait: $line"
no_etcd_in_m4
jg_stop_member 4
RETRY[4]=

# ---------------------------------------------------------------------------------------
jg_log "step 3: on_reject = exit, m4's sidecar declaring 3.4.23: admitted, m4 joins"
start_wait 30s
jg_start_member 4 --state existing --gate-only --version 3.4.23 "${ADM[@]}" --admission 'on_reject = "exit"'
end_wait 35
[[ $WAIT_RC == 0 ]] || jg_fail "joingate wait for m4 at 3.4.23 exited $WAIT_RC, want 0"
jg_start_member 4 --etcd-only
jg_wait_named 4 30
jg_member_promote 4 60
jg_wait_healthy 60 1 2 3 4
for i in 1 2 3 4 5; do
    jg_wait_value 4 "exit/before/$i" "v$i" 20 || jg_fail "m4 does not serve exit/before/$i"
done
jg__alive "${JG_GATE_PID[4]}" || jg_fail "m4's sidecar exited although it was admitted"
jg_log "PASS follower gives up: on_reject exit exits non-zero with the reason, joingate wait fails; a deadline makes wait fail at once; an admitted member joins"
