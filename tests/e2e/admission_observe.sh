#!/usr/bin/env bash
# Observe mode: a real etcd 3.4.23 cluster of three members whose sidecars run
# admission.mode = "observe" (policy not-older-than-leader). A fourth member declaring
# 3.3.0 — one that mode "leader" would refuse — joins and gets all data, while the
# sidecars log the decision as would_reject (event admission) and count it in
# joingate_admission_decisions_total{decision="would_reject"}; nothing is refused.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_admission.sh
source "$(dirname "$0")/lib_admission.sh"

ADM=(--mode observe --admission 'policy = "not-older-than-leader"')

jg_setup 4

jg_log "step 0: three members at 3.4.23 (mode observe)"
jg_start_cluster 3 "${ADM[@]}"
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
jga_wait_leader_seen "$leader" 3.4.23 1 2 3
jga_write_keys observe/before 10

jg_log "step 1: m4 declaring 3.3.0 joins"
jg_member_add 4
t0=$EPOCHREALTIME
jg_start_member 4 --state existing --version 3.3.0 "${ADM[@]}"
jg_wait_healthy 60 1 2 3 4
jg_log "m4 healthy $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s after its start"
jga_serves_written 4 "$leader" observe/before 10
jg_put 4 observe/from-m4 ok || jg_fail "put through m4 failed"
jg_wait_value "$leader" observe/from-m4 ok || jg_fail "the leader m$leader does not serve the write made through m4"
jg_log "m4 (declared 3.3.0) joined and serves every key"

jg_log "step 2: the sidecars logged and counted would_reject, and refused nothing"
cond='.caller == "m4" and .caller_version == "3.3.0" and .decision == "would_reject" and .reason == "older_than_leader" and .observe == true'
for n in 1 2 3; do
    jga_has_admission_line "$n" "$cond and (.side == \"inbound\" or .side == \"outbound\")" ||
        jg_fail "m$n's sidecar logged no would_reject older_than_leader about m4 at 3.3.0: $(jga_admission_lines "$n" '.caller == "m4"' | tail -n 5)"
    c=$(jga_decisions "$n" decision=would_reject reason=older_than_leader)
    ((c >= 1)) || jg_fail "m$n counted no decision would_reject older_than_leader: $(jga_decision_summary "$n")"
    jg_log "m$n: $c would_reject; decisions: $(jga_decision_summary "$n")"
done
jg_log "the leader's sidecar: $(jga_admission_lines "$leader" "$cond" | head -n 1)"
for n in 1 2 3 4; do
    for d in reject wait refused_request; do
        c=$(jga_decisions "$n" "decision=$d")
        [[ $c == 0 ]] || jg_fail "m$n's sidecar (mode observe) counted $c decisions $d: $(jga_decision_summary "$n")"
    done
    for l in inbound outbound; do
        c=$(jg_metric "$n" joingate_requests_total "listener=\"$l\"" 'code="412"')
        [[ $c == 0 ]] || jg_fail "m$n's sidecar (mode observe) answered 412 to $c $l requests"
    done
done
# m4's own sidecar (the follower side) must not hold m4 back in observe mode, and says
# what the policy would have done: /readyz 200 with "would_reject": true.
readyz4() { curl -s --noproxy '*' --max-time 3 "$(jg_admin_url 4)/readyz"; }
code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 3 "$(jg_admin_url 4)/readyz")
[[ $code == 200 ]] || jg_fail "m4's /readyz answers $code in observe mode, want 200: $(readyz4)"
if jg_wait_until 5 "m4's /readyz reports would_reject" eval 'readyz4 | jq -e ".would_reject == true" >/dev/null'; then
    jg_log "m4's /readyz: $(readyz4)"
else
    jga_check_failed "m4's own sidecar (follower side, mode observe) never reports that m4 at 3.3.0 would be refused: /readyz $(readyz4); its follower log lines: $(jga_admission_lines 4 '.side == "follower"' | tr '\n' ' ')"
fi
jga_finish
jg_log "PASS observe mode: m4 at 3.3.0 joined, would_reject logged and counted, nothing refused"
