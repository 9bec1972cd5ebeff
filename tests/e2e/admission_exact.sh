#!/usr/bin/env bash
# Policy "exact", mode "leader", on a real etcd 3.4.23 cluster of three members:
#   1. a fourth member whose sidecar declares 3.4.24 is refused (etcd exits non-zero with
#      "discovery failed"); it is then removed from the member list again;
#   2. member m2 stopped and restarted with its data, its sidecar declaring 3.4.24: the
#      other sidecars refuse it in both directions, so its raft index stops while the
#      others keep committing writes, and they count their outbound refusals;
#   3. an [[admission.override]] for m2 added to the other members' configs and reloaded
#      with SIGHUP: m2 catches up and serves every key written meanwhile.
# The cluster accepts writes throughout (two of three members are a quorum).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_admission.sh
source "$(dirname "$0")/lib_admission.sh"

ADM=(--mode leader --admission 'policy = "exact"')

jg_setup 4

jg_log "step 0: three members at 3.4.23 (mode leader, policy exact)"
jg_start_cluster 3 "${ADM[@]}"
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
jga_wait_leader_seen "$leader" 3.4.23 1 2 3
jga_write_keys exact/before 10

# ---------------------------------------------------------------------------------------
jg_log "step 1: m4 declaring 3.4.24 is refused under policy exact"
jg_member_add 4
jga_start_refused_joiner 4 3.4.24 "${ADM[@]}"
cond='.side == "inbound" and .caller == "m4" and .caller_version == "3.4.24" and .decision == "reject" and .reason == "version_mismatch"'
jg_wait_until 5 "the leader's sidecar (m$leader) logs the reject of m4" jga_has_admission_line "$leader" "$cond" ||
    jg_fail "the leader's sidecar m$leader logged no admission line with $cond; its admission lines:
$(jga_admission_lines "$leader" | tail -n 5)"
c=$(jga_decisions "$leader" side=inbound decision=reject reason=version_mismatch)
((c >= 1)) || jg_fail "m$leader counted no inbound reject version_mismatch: $(jga_decision_summary "$leader")"
jg_wait_healthy 15 1 2 3
jg_stop_member 4
# an unstarted voter counts for the quorum: remove it before stopping m2 below
id=$(jg_etcdctl "$(jg_endpoints)" member list -w simple | awk -F', ' -v u="$(jg_peer_url 4)" '$4 == u { print $1 }')
[[ -n $id ]] || jg_fail "the refused m4 is not in the member list"
jg_etcdctl "$(jg_endpoints)" member remove "$id" >/dev/null || jg_fail "member remove of the refused m4 ($id) failed"
jg_log "removed the refused m4 ($id) from the member list"

# ---------------------------------------------------------------------------------------
jg_log "step 2: m2 restarted with its data, its sidecar declaring 3.4.24"
id2=$(jg_member_id 2)
[[ -n $id2 ]] || jg_fail "m2 is not in the member list"
jg_stop_member 2
others=(1 3)
others_eps="$(jg_endpoint 1),$(jg_endpoint 3)"
put_others() { jg_etcdctl "$others_eps" put "$1" "$2" >/dev/null; }
leader=$(jg_leader) || jg_fail "no leader among m1 and m3 after m2 stopped"
jg_wait_until 10 "leader m$leader reports its raft status" jga_commit "$leader" ||
    jg_fail "no raft.status in $(jg_endpoint "$leader")/debug/vars"
idx_stop=$(jga_commit "$leader")
jg_log "m2 ($id2) stopped; leader m$leader, commit index $idx_stop, m2 matched up to $(jga_match "$leader" "$id2")"
for i in $(seq 1 5); do put_others "exact/while-down/$i" "d$i" || jg_fail "put exact/while-down/$i with m2 down failed"; done
declare -A out0
for n in "${others[@]}"; do
    out0[$n]=$(($(jga_decisions "$n" side=outbound decision=reject) + $(jga_decisions "$n" side=outbound decision=refused_request)))
done
m2_etcd_log_mark=$(wc -l <"$(jg_dir 2)/etcd.log")
declare -A etcd_mark
for n in "${others[@]}"; do etcd_mark[$n]=$(wc -l <"$(jg_dir "$n")/etcd.log"); done
jg_start_member 2 --version 3.4.24 "${ADM[@]}"
for n in "${others[@]}"; do
    cond='.side == "inbound" and .caller == "m2" and .caller_version == "3.4.24" and .decision == "reject" and .reason == "version_mismatch"'
    jg_wait_until 15 "m$n's sidecar refuses m2's inbound requests" jga_has_admission_line "$n" "$cond" ||
        jg_fail "m$n's sidecar logged no inbound reject version_mismatch of m2 at 3.4.24: $(jga_admission_lines "$n" '.caller == "m2"' | tail -n 5)"
    cond='.side == "outbound" and .caller == "m2" and .caller_version == "3.4.24" and .decision == "reject"'
    jg_wait_until 15 "m$n's sidecar refuses its etcd's requests to m2" jga_has_admission_line "$n" "$cond" ||
        jg_fail "m$n's sidecar logged no outbound reject of m2 at 3.4.24: $(jga_admission_lines "$n" '.caller == "m2"' | tail -n 5)"
done

# A restarted etcd 3.4 serves no client request until it has published its attributes
# through raft: while refused, m2 answers no `endpoint status`, and it is followed through
# the leader's view of its log (raft progress) instead.
m2_publish_failed() {
    tail -n +"$((m2_etcd_log_mark + 1))" "$(jg_dir 2)/etcd.log" |
        grep -q '"failed to publish local member to cluster through raft"'
}
jg_wait_until 20 "m2's etcd logs that it cannot publish itself through raft" m2_publish_failed ||
    jg_fail "m2's etcd did not log \"failed to publish local member to cluster through raft\": was it let in?"
jg_log "m2's etcd: $(tail -n +"$((m2_etcd_log_mark + 1))" "$(jg_dir 2)/etcd.log" | grep -m1 '"failed to publish local member' | cut -c1-300)"
if curl -sf --noproxy '*' --max-time 2 "$(jg_endpoint 2)/health" >/dev/null 2>&1; then
    jg_fail "m2 serves /health on its client port although it should not have been able to publish itself"
fi
match_a=$(jga_match "$leader" "$id2") || jg_fail "leader m$leader has no raft progress for m2 ($id2)"
((match_a <= idx_stop)) ||
    jga_check_failed "m2's log matches the leader's up to $match_a, beyond $idx_stop where it stopped: it received entries while refused"
t0=$SECONDS
i=0
while ((SECONDS - t0 < 6)); do
    i=$((i + 1))
    put_others "exact/isolated/$i" "i$i" || jg_fail "put exact/isolated/$i failed while m2 was refused (m1 and m3 are a quorum)"
    sleep 0.1
done
writes_isolated=$i
sleep 1
match_b=$(jga_match "$leader" "$id2") || jg_fail "leader m$leader has no raft progress for m2 ($id2)"
commit=$(jga_commit "$leader")
idx1=$(jga_raft_index 1)
idx3=$(jga_raft_index 3)
jg_log "after $writes_isolated writes in 6 s: the leader m$leader sees m2's log matching up to $match_b (was $match_a;" \
    "m2 stopped at $idx_stop); commit $commit; endpoint status raft index m1 $idx1, m3 $idx3"
((match_b == match_a)) || jga_check_failed "m2's raft log advanced from $match_a to $match_b while it was refused"
((commit >= idx_stop + 5 + writes_isolated)) ||
    jg_fail "the leader's commit index $commit did not grow by the $((5 + writes_isolated)) writes since m2 stopped at $idx_stop"
((idx1 > match_b && idx3 > match_b)) || jg_fail "m1 ($idx1) and m3 ($idx3) are not ahead of m2 ($match_b)"
if curl -sf --noproxy '*' --max-time 2 "$(jg_endpoint 2)/health" >/dev/null 2>&1; then
    jg_fail "m2 serves /health on its client port while refused"
fi
# Refused in both directions: no raft stream between m2 and another member, and no raft
# message of m2 (its campaign votes) reaches another member's etcd.
for n in "${others[@]}"; do
    leak=$(jga_etcd_lines_since "$n" "${etcd_mark[$n]}" \
        "(.msg == \"established TCP streaming connection with remote peer\" and .\"remote-peer-id\" == \"$id2\") or (.msg | test(\"Msg[A-Za-z]* from $id2\"))")
    if [[ -n $leak ]]; then
        jga_check_failed "m$n's etcd talked raft with the refused m2 ($id2) after its restart at 3.4.24: $(wc -l <<<"$leak") lines, first and last:
$(head -n 3 <<<"$leak" | cut -c1-330)
$(tail -n 1 <<<"$leak" | cut -c1-330)
m$n's sidecar decisions about m2: $(jga_admission_lines "$n" '.caller == "m2"' | jq -r '"\(.ts) \(.side) \(.caller_version) \(.decision)"' | tr '\n' ';')"
    else
        jg_log "m$n's etcd has no raft stream with m2 and received no message from it"
    fi
done
for n in "${others[@]}"; do
    now=$(($(jga_decisions "$n" side=outbound decision=reject) + $(jga_decisions "$n" side=outbound decision=refused_request)))
    jg_log "m$n: outbound refusals $((now - out0[$n])) since m2's restart; decisions: $(jga_decision_summary "$n")"
    ((now > out0[$n])) || jg_fail "m$n counted no outbound refusal (reject or refused_request) of m2"
    jg_log "m$n answered 412 to $(jg_metric "$n" joingate_requests_total 'listener="inbound"' 'code="412"') inbound" \
        "and $(jg_metric "$n" joingate_requests_total 'listener="outbound"' 'code="412"') outbound requests"
done

# ---------------------------------------------------------------------------------------
jg_log "step 3: an override for m2 on m1 and m3 (SIGHUP): m2 catches up"
for n in "${others[@]}"; do
    JGA_EXTRA[$n]=$(jga_override_text m2 "e2e: admit m2 at 3.4.24 under policy exact" 60)
    jga_reload "$n" "${ADM[@]}"
    # the gauge is refreshed once per view round (cluster.view_interval)
    jg_wait_until 5 "m$n shows joingate_overrides_active 1" eval "[[ \$(jg_metric $n joingate_overrides_active) == 1 ]]" ||
        jg_fail "m$n: joingate_overrides_active is $(jg_metric "$n" joingate_overrides_active) after the reload, want 1"
    jg_status_json "$n" | jq -e '.admission.overrides | any(.member == "m2" and .active == true)' >/dev/null ||
        jg_fail "m$n's /status shows no active override for m2: $(jg_status_json "$n" | jq -c .admission.overrides)"
done
t_ovr=$EPOCHREALTIME
for n in "${others[@]}"; do
    cond='.caller == "m2" and .caller_version == "3.4.24" and .decision == "admit" and .reason == "override"'
    jg_wait_until 20 "m$n's sidecar admits m2 by the override" jga_has_admission_line "$n" "$cond" ||
        jg_fail "m$n's sidecar logged no admit override of m2: $(jga_admission_lines "$n" '.caller == "m2"' | tail -n 5)"
    jg_log "m$n: $(jga_admission_lines "$n" "$cond" | head -n 1)"
done
# writes go on while m2 rejoins (its campaigns while isolated raised its term: one
# election may follow, which costs at most a few seconds)
failed=0
for i in $(seq 1 20); do
    put_others "exact/rejoining/$i" "r$i" || failed=$((failed + 1))
    sleep 0.1
done
((failed <= 5)) || jg_fail "$failed of 20 writes failed while m2 rejoined"
target=$(jga_raft_index 1)
jg_wait_until 30 "m2's raft index reaches $target" jga_index_at_least 2 "$target" ||
    jg_fail "m2's raft index $(jga_raft_index 2) did not reach m1's $target after the override"
jg_log "m2 caught up to raft index $target, $(awk -v a="$t_ovr" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s after the override"
check_m2() {
    local key=$1 want=$2 got
    got=$(jg_get 2 "$key" --consistency=s) || jg_fail "serializable get of $key on m2 failed"
    [[ $got == "$want" ]] || jg_fail "m2 serves $key='$got', want '$want'"
}
for i in $(seq 1 10); do check_m2 "exact/before/$i" "v$i"; done
for i in $(seq 1 5); do check_m2 "exact/while-down/$i" "d$i"; done
for i in $(seq 1 "$writes_isolated"); do check_m2 "exact/isolated/$i" "i$i"; done
jg_log "m2 serves the 10 keys from before, the 5 written while it was down and the $writes_isolated written while it was refused"
jg_wait_healthy 30 1 2 3
jg_put 2 exact/through-m2 ok || jg_fail "put through m2 failed after the override"
jg_wait_value 1 exact/through-m2 ok || jg_fail "m1 does not serve the write made through m2"
for n in 1 2 3; do jg_log "m$n decisions: $(jga_decision_summary "$n")"; done
jga_finish
jg_log "PASS policy exact: refused joiner, isolated restarted member, override"
