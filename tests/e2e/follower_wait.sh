#!/usr/bin/env bash
# Follower-controlled wait-and-retry (admission.mode "both", policy "skew",
# max_minor_skew 1) on a real etcd 3.4.23 cluster, with a writer running throughout:
#   1. m1..m3 declare 3.4.23 and form the cluster; a writer puts a key every ~100 ms
#      through alternating members and records every acknowledged key;
#   2. m4 is added as a learner; its sidecar declares 3.6.0 (two minors ahead of the
#      leader) and `joingate wait` runs in its namespace; its etcd is NOT started. It must
#      wait: /readyz 503 skew_exceeded, at least 3 tries with jittered intervals (from its
#      "waiting to join" log lines), no etcd process in its namespace meanwhile;
#   3. m1..m3 are "upgraded" one at a time by restarting their sidecars declaring 3.5.0,
#      followers first and the leader last; each is admitted (newer_than_leader) and the
#      cluster is healthy between steps;
#   4. m4 must be admitted only once the leader's sidecar reports 3.5.0, and within
#      retry.max + 2 s of it (both times measured); only then its etcd starts, catches up
#      and is promoted;
#   5. the cluster ends with 4 healthy voting members and every acknowledged write (before,
#      during and after) is served by each of them.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

JG_MODE=both
JG_VIEW_INTERVAL=1s
JG_PROBE_INTERVAL=1s
# Pre-vote (etcd 3.5's default): a member cut off while its sidecar restarts does not
# depose the leader when it comes back, so "followers first, the leader last" holds.
JG_ETCD_ARGS=--pre-vote
RETRY_MAX=4 # seconds: admission.retry.max below
# limits.drain_timeout of the sidecars: short, so that a restart (the "upgrade") takes a
# few seconds (joingate's default is 15s)
FW_DRAIN=${FW_DRAIN:-2s}
ADM=(--admission 'policy = "skew"' --admission 'max_minor_skew = 1')
jg_config_extra() {
    printf '[admission.retry]\ninitial = "1s"\nmax = "%ss"\n\n[limits]\ndrain_timeout = "%s"\n' \
        "$RETRY_MAX" "$FW_DRAIN"
}

jg_setup 4
W=$JG_DIR/follower
mkdir -p "$W"
: >"$W/acked"
: >"$W/failed"
: >"$W/monitor"

epoch() { date -d "$1" +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------- background helpers

# The writer: an `etcdctl put` every ~100 ms (at most 5 in flight) through the members
# listed in $W/targets, in turn; one line "EPOCH KEY mN" per acknowledged put in
# $W/acked (refused or timed out: $W/failed).
put_one() { # KEY N VALUE
    if timeout 5 etcdctl --endpoints="$(jg_endpoint "$2")" --dial-timeout=1s --command-timeout=3s \
        put "$1" "$3" >/dev/null 2>&1; then
        echo "$EPOCHREALTIME $1 m$2" >>"$W/acked"
    else
        echo "$EPOCHREALTIME $1 m$2" >>"$W/failed"
    fi
}
writer() {
    local i=0 n targets
    while [[ ! -e $W/stop-writer ]]; do
        i=$((i + 1))
        mapfile -t targets <"$W/targets"
        n=${targets[i % ${#targets[@]}]}
        put_one "$(printf 'fw/%06d' "$i")" "$n" "v$i" &
        while (($(jobs -rp | wc -l) >= 5)); do sleep 0.05; done
        sleep 0.1
    done
    wait
}

# The monitor: one line per ~0.2 s (slower on a busy machine)
#   EPOCH etcd4=yes|no ready=CODE/STATE m1=VERSION/ROLE m2=... m3=...
# (whether an etcd process runs in m4's namespace, then m4's /readyz status and state, then
# what each sidecar's version document says, "down" when it does not answer; EPOCH is
# taken after the last of them).
monitor() {
    local e4 ready docs n
    while [[ ! -e $W/stop-monitor ]]; do
        e4=no
        jg_etcd_in_ns 4 && e4=yes
        ready=$(jg_readyz 4 | awk '{ s = $0; sub(/^[0-9]+ /, "", s); st = "-" }
            match(s, /"state":"[a-z_]+"/) { st = substr(s, RSTART + 9, RLENGTH - 10) }
            { print $1 "/" st }')
        docs=
        for n in 1 2 3; do
            docs+=" m$n=$({ jg_version_doc "$n" || echo '{}'; } | jq -r '"\(.version // "down")/\(.role // "-")"' 2>/dev/null)"
        done
        echo "$EPOCHREALTIME etcd4=$e4 ready=$ready$docs" >>"$W/monitor"
        sleep 0.2
    done
}

stop_helper() { # FILE PID WHAT: ask a helper to stop, then wait (bounded) for it
    touch "$1"
    local deadline=$((SECONDS + 15))
    while jg__alive "$2" && ((SECONDS < deadline)); do sleep 0.1; done
    jg__alive "$2" && jg_fail "the $3 did not stop within 15 s"
    wait "$2" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
jg_log "step 1: m1..m3 at 3.4.23 (mode both, policy skew, max_minor_skew 1), a writer starts"
jg_start_cluster 3 "${ADM[@]}"
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
view_leader() { jg_status_json "$1" | jq -r '"\(.cluster.leader) \(.cluster.leader_version)"'; }
for n in 1 2 3; do
    jg_wait_until 15 "m$n's sidecar sees leader m$leader at 3.4.23" \
        eval "[[ \$(view_leader $n) == 'm$leader 3.4.23' ]]" ||
        jg_fail "the sidecar of m$n does not see leader m$leader at 3.4.23: $(view_leader "$n")"
done
set_targets() { printf '%s\n' "$@" >"$W/targets.new" && mv "$W/targets.new" "$W/targets"; }
set_targets 1 2 3
writer &
writer_pid=$!
jg_track_pid "$writer_pid"
jg_wait_until 10 "the writer's first acknowledged put" test -s "$W/acked" ||
    jg_fail "the writer got no put acknowledged: $(tail -n 3 "$W/failed")"
jg_log "leader m$leader; the writer runs"

# ---------------------------------------------------------------------------------------
jg_log "step 2: m4 added as a learner, its sidecar declaring 3.6.0; its etcd waits"
jg_member_add 4 --learner
jg_start_member 4 --state existing --version 3.6.0 --gate-only "${ADM[@]}"
# `joingate wait` as an init container would run it; "STATUS EPOCH" in wait.rc when it ends
(
    rc=0
    jg_ns_exec 4 "$JOINGATE_BIN" wait --admin "$(jg_admin_url 4)" --timeout 170s >"$W/wait.out" 2>&1 || rc=$?
    echo "$rc $EPOCHREALTIME" >"$W/wait.rc"
) &
wait_pid=$!
monitor &
monitor_pid=$!
jg_track_pid "$monitor_pid"

tries() { grep -c '"msg":"waiting to join"' "$(jg_dir 4)/joingate.log" || true; }
jg_wait_until 20 "m4's sidecar logs 3 tries" eval "(( \$(tries) >= 3 ))" ||
    jg_fail "m4's sidecar logged $(tries) tries in 20 s, want at least 3"
# between tries /readyz says "waiting" with next_try_in_ms; during one, "probing"
readyz_waiting() {
    read -r code body <<<"$(jg_readyz 4)"
    [[ $code == 503 ]] && jq -e '.admitted == false and .state == "waiting" and .reason == "skew_exceeded"
        and .member_version == "3.6.0" and .leader_version == "3.4.23" and .tries >= 3
        and (.next_try_in_ms | type) == "number"' <<<"$body" >/dev/null
}
jg_wait_until 6 "m4's /readyz says 503 waiting skew_exceeded" readyz_waiting ||
    jg_fail "m4's /readyz while the leader is at 3.4.23: $(jg_readyz 4)"
jg__alive "$wait_pid" || jg_fail "joingate wait in m4's namespace ended while m4 may not join: $(cat "$W/wait.out")"
jg_etcd_in_ns 4 && jg_fail "an etcd process runs in m4's namespace while it waits"
jg_log "m4 waits: /readyz 503 $body"
jg_log "joingate wait prints: $(tr '\n' '|' <"$W/wait.out")"

# ---------------------------------------------------------------------------------------
jg_log "step 3: rolling m1..m3 to 3.5.0, followers first, the leader last"
declare -A upgraded=() t_down=() t_up=()
leader_step_t0=
while ((${#upgraded[@]} < 3)); do
    leader=$(jg_leader) || jg_fail "no leader among m1..m3"
    next=
    for n in 1 2 3; do
        [[ -z ${upgraded[$n]:-} && $n != "$leader" ]] && { next=$n; break; }
    done
    if [[ -z $next ]]; then
        next=$leader
        [[ -n ${upgraded[$leader]:-} ]] && jg_fail "internal: leader m$leader upgraded already"
    fi
    role=follower
    last_step_t0=$EPOCHREALTIME
    if [[ $next == "$leader" ]]; then
        role=leader
        leader_step_t0=$EPOCHREALTIME
    elif [[ -n ${upgraded[$leader]:-} ]]; then
        role="follower (the leader m$leader is upgraded already)"
    fi
    jg_log "upgrading m$next, the $role: its sidecar restarts declaring 3.5.0"
    t_down[$next]=$EPOCHREALTIME
    jg_restart_gate "$next" --version 3.5.0 "${ADM[@]}"
    jg_wait_until 20 "m$next's sidecar is admitted at 3.5.0" eval "[[ \$(jg_readyz $next | cut -d' ' -f1) == 200 ]]" ||
        jg_fail "m$next's sidecar at 3.5.0 is not admitted: $(jg_readyz "$next")"
    jg_log "m$next admitted: $(jg_readyz "$next" | cut -d' ' -f2-)"
    upgraded[$next]=1
    jg_wait_healthy 30 1 2 3
    if ((${#upgraded[@]} < 3)) && [[ $(jg_readyz 4 | cut -d' ' -f1) == 200 ]]; then
        now_leader=$(jg_leader || echo '?')
        if [[ -z ${upgraded[$now_leader]:-} ]]; then
            jg_fail "m4 (3.6.0) was admitted while the leader m$now_leader has not been upgraded:
$(jq -c 'select(.msg == "admitted")' "$(jg_dir 4)/joingate.log")
$(tail -n 10 "$W/monitor")"
        fi
        jg_log "the leader moved to the upgraded m$now_leader: m4 admitted already"
    fi
done

[[ -n $leader_step_t0 ]] || leader_step_t0=$last_step_t0

# ---------------------------------------------------------------------------------------
jg_log "step 4: m4's joingate wait must end (admitted); only then its etcd starts"
deadline=$((SECONDS + 30))
while jg__alive "$wait_pid"; do
    ((SECONDS < deadline)) || jg_fail "joingate wait of m4 still blocks 30 s after the rolling upgrade:
$(cat "$W/wait.out")
readyz: $(jg_readyz 4)"
    sleep 0.05
done
wait "$wait_pid" 2>/dev/null || true
read -r wait_rc wait_end <"$W/wait.rc" || jg_fail "joingate wait of m4 left no exit status"
[[ $wait_rc == 0 ]] || jg_fail "joingate wait of m4 exited $wait_rc: $(cat "$W/wait.out")"
jg_log "joingate wait of m4 exited 0: $(tr '\n' '|' <"$W/wait.out")"
jg_etcd_in_ns 4 && jg_fail "an etcd process ran in m4's namespace before it was admitted"
jg_start_member 4 --etcd-only
sleep 0.5 # the monitor samples once more before the etcd appears
stop_helper "$W/stop-monitor" "$monitor_pid" monitor

# What m4's sidecar logged, and the times.
log4=$(jg_dir 4)/joingate.log
admitted_line=$(jq -c 'select(.msg == "admitted" and .event == "admission")' "$log4" | head -n1)
[[ -n $admitted_line ]] || jg_fail "m4's sidecar logged no \"admitted\" line"
jg_log "m4's sidecar: $admitted_line"
t_admit=$(epoch "$(jq -r .ts <<<"$admitted_line")")
# When a sidecar first reported leading at 3.5.0: the first "member role" -> leader line a
# sidecar declaring 3.5.0 logged (before it, its version document says role "unknown").
# Usually the leader's own restarted sidecar; earlier when the leadership moved to an
# upgraded member on its own.
lead35() { # N -> EPOCH
    jq -rR 'fromjson? | select(.msg == "starting" or (.msg == "member role" and .role == "leader")) |
        "\((.ts[0:19] + "Z" | fromdateiso8601) + (.ts[19:23] | tonumber)) \(.msg | gsub(" "; "_")) \(.member_version // "-")"' \
        "$(jg_dir "$1")/joingate.log" | awk '$2 == "starting" { v = $3 } $2 == "member_role" && v == "3.5.0" { print $1; exit }'
}
t_lead35=$(for n in 1 2 3; do lead35 "$n"; done | sort -n | head -n1)
[[ -n $t_lead35 ]] || jg_fail "no sidecar declaring 3.5.0 logged that its member leads:
$(tail -n 20 "$W/monitor")"
# When each 3.5.0 sidecar started (its "starting" line).
for n in 1 2 3; do
    t_up[$n]=$(jq -rR 'fromjson? | select(.msg == "starting" and .member_version == "3.5.0") |
        (.ts[0:19] + "Z" | fromdateiso8601) + (.ts[19:23] | tonumber)' "$(jg_dir "$n")/joingate.log" | head -n1)
done
lag=$(secs "$t_lead35" "$t_admit")
jg_log "a sidecar first reported leading at 3.5.0 at +$(secs "$JG_T0" "$t_lead35")s; m4 admitted" \
    "at +$(secs "$JG_T0" "$t_admit")s (${lag}s later); joingate wait returned $(secs "$t_admit" "$wait_end")s after that"

# Who led etcd at the admission, from each member's own etcd log ("became leader at term",
# until its next "became follower/candidate/pre-candidate").
etcd_roles() { # N -> "EPOCH ROLE" lines
    jq -rR 'fromjson? | select(.msg? | type == "string" and test("became [a-z-]+ at term")) |
        "\((.ts[0:19] + "Z" | fromdateiso8601) + (.ts[19:23] | tonumber)) \(.msg | capture("became (?<r>[a-z-]+) at term").r)"' \
        "$(jg_dir "$1")/etcd.log"
}
etcd_leaders_at() { # EPOCH -> "mN..." (empty during an election)
    local n
    for n in 1 2 3; do
        etcd_roles "$n" | awk -v t="$1" -v m="m$n" '$1 <= t { r = $2 } END { if (r == "leader") print m }'
    done | xargs
}
leaders_at_admit=$(etcd_leaders_at "$t_admit")
diag="m4's sidecar: $admitted_line
etcd leader(s) at the admission (from their etcd logs): ${leaders_at_admit:-none (election)}
sidecar restarts (SIGTERM -> the 3.5.0 sidecar started), seconds since the start:
$(for n in 1 2 3; do echo "  m$n: +$(secs "$JG_T0" "${t_down[$n]}") -> +$(secs "$JG_T0" "${t_up[$n]}")"; done)
m4 admitted at +$(secs "$JG_T0" "$t_admit")
etcd role changes (seconds since the start):
$(for n in 1 2 3; do etcd_roles "$n" | awk -v t0="$JG_T0" -v m="m$n" '{ printf "  m%s +%.2f %s\n", substr(m, 2), $1 - t0, $2 }'; done | sort -k2 -t+ -n)
monitor around the admission (EPOCH etcd-in-m4 m4-readyz/state sidecar-version/role...):
$(awk -v t="$t_admit" '$1 >= t - 3 && $1 <= t + 3' "$W/monitor")"
# The sidecar's own record of what it was judged against.
jq -e '.leader != "" and .leader_version == "3.5.0" and .reason == "newer_than_leader"' <<<"$admitted_line" >/dev/null ||
    jg_fail "m4 was admitted without being judged against a leader at 3.5.0
$diag"
# Never before (log timestamps have millisecond precision).
awk -v l="$lag" 'BEGIN { exit !(l >= 0) }' ||
    jg_fail "m4 was admitted ${lag#-}s BEFORE any sidecar reported leading at 3.5.0
$diag"
awk -v l="$lag" -v m="$RETRY_MAX" 'BEGIN { exit !(l <= m + 2) }' ||
    jg_fail "m4 was admitted ${lag}s after a sidecar reported leading at 3.5.0, want at most $((RETRY_MAX + 2))s
$diag"
# Whoever led etcd at that moment ran beside its sidecar at 3.5.0 already.
[[ -n $leaders_at_admit ]] || jg_fail "m4 was admitted during an etcd election
$diag"
for l in $leaders_at_admit; do
    n=${l#m}
    [[ -n ${t_up[$n]:-} ]] && awk -v u="${t_up[$n]}" -v t="$t_admit" 'BEGIN { exit !(u <= t) }' ||
        jg_fail "m4 was admitted while the etcd leader $l did not run beside its 3.5.0 sidecar yet
$diag"
done

# The etcd of m4 never ran while its /readyz said 503.
bad=$(awk '$2 == "etcd4=yes" && $3 !~ /^ready=200\//' "$W/monitor" | head -n 3)
[[ -z $bad ]] || jg_fail "an etcd process ran in m4's namespace while its /readyz was not 200:
$bad"
n503=$(grep -c ' etcd4=no ready=503/' "$W/monitor" || true)
jg_log "monitor: $n503 samples with m4's /readyz 503 and no etcd in its namespace, none with an etcd"

# Retries with jitter, from the "waiting to join" lines.
mapfile -t waits < <(jq -c 'select(.msg == "waiting to join" and .event == "admission")' "$log4")
((${#waits[@]} >= 3)) || jg_fail "m4's sidecar logged ${#waits[@]} tries, want at least 3"
mapfile -t ts < <(for l in "${waits[@]}"; do epoch "$(jq -r .ts <<<"$l")"; done)
mapfile -t next_ms < <(for l in "${waits[@]}"; do jq -r .next_try_in_ms <<<"$l"; done)
intervals=()
for ((i = 1; i < ${#ts[@]}; i++)); do
    intervals+=("$(awk -v a="${ts[i - 1]}" -v b="${ts[i]}" 'BEGIN { printf "%d", (b - a) * 1000 }')")
done
jg_log "m4's tries: ${#waits[@]} (tries field $(jq -r .tries <<<"${waits[-1]}") at the last)," \
    "next_try_in_ms: ${next_ms[*]}"
jg_log "intervals between tries (ms): ${intervals[*]}"
for ms in "${next_ms[@]}"; do
    ((ms >= 500 && ms <= RETRY_MAX * 1000)) ||
        jg_fail "next_try_in_ms $ms outside [500, $((RETRY_MAX * 1000))] (initial 1s, max ${RETRY_MAX}s, jitter 0.5)"
done
spread=$(printf '%s\n' "${intervals[@]}" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print hi - lo }')
((spread >= 50)) || jg_fail "the intervals between m4's tries are all alike (spread ${spread} ms): ${intervals[*]}"
# ... and no two tries in lockstep with a fixed schedule: the jittered delays differ too
[[ $(printf '%s\n' "${next_ms[@]}" | sort -u | wc -l) -ge 3 ]] ||
    jg_fail "m4's next_try_in_ms values repeat: ${next_ms[*]}"

# ---------------------------------------------------------------------------------------
jg_log "step 5: m4's etcd catches up and is promoted; 4 voting members; every write everywhere"
jg_wait_named 4 30
jg_member_promote 4 60
jg_wait_healthy 60 1 2 3 4
set_targets 1 2 3 4
t_after=$EPOCHREALTIME
jg_wait_until 20 "the writer gets 10 puts acknowledged with m4 voting" \
    eval "(( \$(awk -v t=$t_after '\$1 > t' '$W/acked' | wc -l) >= 10 ))" ||
    jg_fail "the writer got fewer than 10 puts acknowledged after the promotion: $(tail -n 5 "$W/failed")"
stop_helper "$W/stop-writer" "$writer_pid" writer

mlist=$(jg_etcdctl "$(jg_endpoints)" member list -w json) || jg_fail "member list failed"
jq -e '.members | length == 4 and all(.isLearner != true) and
       ([.[].name] | sort == ["m1", "m2", "m3", "m4"])' <<<"$mlist" >/dev/null ||
    jg_fail "the member list is not 4 voting members m1..m4: $(jq -c '[.members[] | {name, isLearner}]' <<<"$mlist")"
jg_wait_healthy 30 1 2 3 4

t_m4=$(jg_elapsed)
acked=$(wc -l <"$W/acked")
failed=$(wc -l <"$W/failed")
# before: until the leader step; during: until m4 was promoted; after: the rest
phase_counts=$(awk -v a="$leader_step_t0" -v b="$t_after" '
    { if ($1 < a) p++; else if ($1 < b) d++; else q++ }
    END { printf "%d before the leader step, %d during the upgrade and the join, %d after the promotion", p, d, q }' \
    "$W/acked")
jg_log "writer: $acked acknowledged ($phase_counts), $failed refused or timed out"
cut -d' ' -f2 "$W/acked" | sort >"$W/acked.keys"
has_all() {
    jg_etcdctl "$(jg_endpoint "$1")" get fw/ --prefix --keys-only --consistency=s 2>/dev/null |
        grep -v '^$' | sort >"$W/m$1.keys" || return 1
    [[ -z $(comm -23 "$W/acked.keys" "$W/m$1.keys") ]]
}
for n in 1 2 3 4; do
    jg_wait_until 30 "m$n serves all $acked acknowledged keys" has_all "$n" ||
        jg_fail "m$n misses acknowledged keys: $(comm -23 "$W/acked.keys" "$W/m$n.keys" | head -n 10 | tr '\n' ' ')"
    jg_log "m$n serves all $acked acknowledged keys ($(wc -l <"$W/m$n.keys") keys in all)"
done
jg_log "PASS follower-controlled wait: m4 waited $(secs "$(epoch "$(jq -r .ts <<<"${waits[0]}")")" "$t_admit")s" \
    "(${#waits[@]} tries), admitted ${lag}s after the leader's sidecar reported 3.5.0; done at +${t_m4}s"
