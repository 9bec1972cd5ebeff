#!/usr/bin/env bash
# A rolling change of the declared version (3.4.23 -> 3.5.0) in mode "leader", policy
# not-older-than-leader, on a real etcd 3.4.23 cluster of three members, under a steady
# write load. Each member's sidecar is restarted in turn declaring 3.5.0 (followers first,
# the leader last), then leadership is moved if it did not move by itself. Admitted
# members must never be cut off:
#   - every acknowledged write is on every member at the end;
#   - no sidecar refused anyone (no reject/wait/refused_request decision inbound or
#     outbound, no 412 answered);
#   - the writer's longest run without a successful put stays below 5 s (one election).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_admission.sh
source "$(dirname "$0")/lib_admission.sh"

ADM=(--mode leader --admission 'policy = "not-older-than-leader"')
MAX_GAP=${JGA_MAX_WRITE_GAP:-5}

jg_setup 3

jg_log "step 0: three members at 3.4.23 (mode leader, not-older-than-leader)"
jg_start_cluster 3 "${ADM[@]}"
leader0=$(jg_leader) || jg_fail "no leader among m1..m3"
for n in 1 2 3; do
    jg_wait_until 15 "m$n's sidecar sees leader m$leader0 at 3.4.23" \
        eval "[[ \$(jga_view_leader $n) == 'm$leader0 3.4.23' ]]" ||
        jg_fail "the sidecar of m$n does not see the leader m$leader0 at 3.4.23: $(jga_view_leader "$n")"
done

# Refusals are counted per sidecar process: baseline now (a new cluster may count a few
# leader_unknown waits while it elects its first leader), then add up each process's
# count when it stops and at the end.
REFUSING=(reject wait refused_request)
refusals() { # N: refusals (inbound and outbound decisions) counted by mN's sidecar
    local n=$1 d s sum=0 c
    for s in inbound outbound; do
        for d in "${REFUSING[@]}"; do
            c=$(jga_decisions "$n" "side=$s" "decision=$d") || return 1
            sum=$((sum + c))
        done
    done
    echo "$sum"
}
declare -A base refused
for n in 1 2 3; do
    base[$n]=$(refusals "$n") || jg_fail "cannot scrape m$n's metrics"
    refused[$n]=0
    ((base[$n] == 0)) || jg_log "m$n: ${base[$n]} refusals while the cluster formed: $(jga_decision_summary "$n")"
done
t_roll=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)

# ---------------------------------------------------------------- the writer
WLOG=$JG_DIR/writer.log
WSTOP=$JG_DIR/writer.stop
writer() {
    trap - EXIT INT TERM HUP
    local parent=$1 eps=$2 i=0 t1 t2 deadline=$((SECONDS + 170))
    while [[ ! -e $WSTOP ]] && kill -0 "$parent" 2>/dev/null && ((SECONDS < deadline)); do
        i=$((i + 1))
        t1=$EPOCHREALTIME
        if timeout 5 etcdctl --endpoints="$eps" --dial-timeout=1s --command-timeout=2s \
            put "roll/key-$i" "v$i" >/dev/null 2>&1; then
            echo "$i ok $t1 $EPOCHREALTIME"
        else
            echo "$i fail $t1 $EPOCHREALTIME"
        fi
        sleep 0.1
    done >"$WLOG"
}
writer $$ "$(jg_endpoints)" &
WPID=$!
! declare -F jg_track_pid >/dev/null || jg_track_pid "$WPID"
jg_log "writer started (pid $WPID): put roll/key-\$i every 100 ms through m1..m3"
sleep 3

writes_ok() { awk '$2 == "ok"' "$WLOG" | wc -l; }
wait_writes() { # wait until N more writes succeeded
    local want=$(($(writes_ok) + $1))
    jg_wait_until 20 "$1 more acknowledged writes" eval "(( \$(writes_ok) >= $want ))" ||
        jg_fail "the writer got no $1 acknowledged writes within 20 s: $(tail -n 3 "$WLOG")"
}
wait_writes 5

# ---------------------------------------------------------------- the rolling change
order=()
for n in 1 2 3; do ((n == leader0)) || order+=("$n"); done
order+=("$leader0")
jg_log "rolling order: ${order[*]/#/m} (m$leader0 leads)"
for n in "${order[@]}"; do
    jg_log "step: m$n's sidecar restarts declaring 3.5.0"
    now=$(refusals "$n") || jg_fail "cannot scrape m$n's metrics"
    refused[$n]=$((refused[$n] + now - base[$n]))
    ((now == base[$n])) ||
        jg_log "m$n's sidecar counted $((now - base[$n])) refusals before its restart: $(jga_decision_summary "$n")"
    t0=$EPOCHREALTIME
    jga_restart_gate "$n" --version 3.5.0 "${ADM[@]}"
    base[$n]=0
    jg_wait_healthy 30 1 2 3
    for m in 1 2 3; do
        jg_wait_until 15 "m$m's sidecar sees m$n at 3.5.0" jga_view_has "$m" "m$n" 3.5.0 ||
            jg_fail "m$m's sidecar does not see m$n at 3.5.0: $(jg_status_json "$m" | jq -c .cluster)"
    done
    wait_writes 5
    jg_log "m$n done in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s;" \
        "leader now m$(jg_leader || echo '?'); writes so far: $(writes_ok) ok," \
        "$(awk '$2 == "fail"' "$WLOG" | wc -l) failed"
done

leader=$(jg_leader) || jg_fail "no leader after the rolling change"
if ((leader == leader0)); then
    to=${order[0]}
    jg_log "step: leadership stayed on m$leader; move it to m$to"
    jg_etcdctl "$(jg_endpoint "$leader")" move-leader "$(jg_member_id "$to")" >/dev/null ||
        jg_fail "etcdctl move-leader to m$to failed"
    jg_wait_until 15 "m$to leads" eval "[[ \$(jg_leader) == $to ]]" || jg_fail "m$to did not become the leader"
    leader=$to
fi
for m in 1 2 3; do
    jg_wait_until 15 "m$m's sidecar sees leader m$leader at 3.5.0" \
        eval "[[ \$(jga_view_leader $m) == 'm$leader 3.5.0' ]]" ||
        jg_fail "the sidecar of m$m does not see the leader m$leader at 3.5.0: $(jga_view_leader "$m")"
done
wait_writes 10
touch "$WSTOP"
wait "$WPID" || true
jg_log "writer stopped"

# ---------------------------------------------------------------- checks
total=$(wc -l <"$WLOG")
okn=$(writes_ok)
failn=$((total - okn))
gap=$(awk '$2 == "ok" { if (last != "" && $4 - last > max) { max = $4 - last; at = $1 } last = $4 }
           END { printf "%.2f %s", max, at }' "$WLOG")
jg_log "writer: $total puts, $okn acknowledged, $failn failed; longest time between two acknowledged puts ${gap% *}s (before put ${gap#* })"
awk -v m="$MAX_GAP" -v g="${gap% *}" 'BEGIN { exit !(g < m) }' ||
    jg_fail "the writer went ${gap% *}s without an acknowledged put (before put ${gap#* }): more than an election ($MAX_GAP s); failures: $(awk '$2 == "fail" { printf "%s ", $1 }' "$WLOG")"

target=$(jga_raft_index "$leader") || jg_fail "no endpoint status from the leader m$leader"
for n in 1 2 3; do
    jg_wait_until 20 "m$n's raft index reaches $target" jga_index_at_least "$n" "$target" ||
        jg_fail "m$n's raft index $(jga_raft_index "$n") did not reach $target"
    have=$(jg_etcdctl "$(jg_endpoint "$n")" get roll/ --prefix --keys-only --consistency=s | grep -c '^roll/') ||
        jg_fail "cannot list roll/ on m$n"
    missing=$(comm -23 <(awk '$2 == "ok" { print "roll/key-" $1 }' "$WLOG" | sort) \
        <(jg_etcdctl "$(jg_endpoint "$n")" get roll/ --prefix --keys-only --consistency=s | grep '^roll/' | sort))
    [[ -z $missing ]] || jg_fail "m$n lacks $(wc -l <<<"$missing") acknowledged writes: $(head -n 10 <<<"$missing" | tr '\n' ' ')"
    jg_log "m$n holds all $okn acknowledged writes ($have keys under roll/)"
done

for n in 1 2 3; do
    now=$(refusals "$n") || jg_fail "cannot scrape m$n's metrics"
    refused[$n]=$((refused[$n] + now - base[$n]))
    jg_log "m$n decisions since its restart: $(jga_decision_summary "$n")"
done
for n in 1 2 3; do
    # every refusal is logged once per (caller, version, decision) and sidecar process;
    # later ones are counted as refused_request: show the non-admit lines of the whole run
    lines=$(jga_admission_lines "$n" "(.side == \"inbound\" or .side == \"outbound\") and .decision != \"admit\"")
    if ((refused[$n] != 0)) || [[ -n $lines ]]; then
        jga_check_failed "m$n's sidecar refused an admitted member during the rolling change: ${refused[$n]} refusals counted (decisions ${REFUSING[*]}); its admission log lines:
$(head -n 5 <<<"$lines" | jq -c 'del(.level, .msg, .event, .policy, .mode, .override, .observe)')
m$n's sidecar (re)started at: $(jq -r 'select(.msg == "starting") | .ts' "$(jg_dir "$n")/joingate.log" | tr '\n' ' '); the rolling change began at $t_roll; decisions of the running sidecar: $(jga_decision_summary "$n")"
    fi
    jg_log "m$n answered 412 (its own refusals and relayed ones) to" \
        "$(jg_metric "$n" joingate_requests_total 'listener="inbound"' 'code="412"') inbound and" \
        "$(jg_metric "$n" joingate_requests_total 'listener="outbound"' 'code="412"') outbound requests since its restart"
done
jga_finish
jg_log "PASS rolling change to 3.5.0: no refusal, every acknowledged write on every member"
