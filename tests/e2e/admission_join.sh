#!/usr/bin/env bash
# Admission of joiners, leader-controlled (mode "leader", policy not-older-than-leader), on
# a real etcd 3.4.23 cluster of three members:
#   1. a fourth member whose sidecar declares 3.3.0 is refused: its etcd exits non-zero
#      with "discovery failed", the leader's sidecar logs and counts a reject
#      older_than_leader, the cluster stays healthy;
#   2. the same member restarted with its sidecar declaring 3.4.23 joins and serves every
#      key written before; `joingate status` shows every member's version and the leader;
#   3. a fifth member declaring 3.5.0 (newer than the leader) joins and has all data.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_admission.sh
source "$(dirname "$0")/lib_admission.sh"

ADM=(--mode leader --admission 'policy = "not-older-than-leader"')

jg_setup 5

jg_log "step 0: three members at 3.4.23 (mode leader, not-older-than-leader)"
jg_start_cluster 3 "${ADM[@]}"
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
jga_wait_leader_seen "$leader" 3.4.23 1 2 3
jga_write_keys admission/before 20
jg_log "leader m$leader; 20 keys written"

# ---------------------------------------------------------------------------------------
jg_log "step 1: m4 declaring 3.3.0 is refused"
jg_member_add 4
jga_start_refused_joiner 4 3.3.0 "${ADM[@]}"

cond='.side == "inbound" and .caller == "m4" and .caller_version == "3.3.0" and .decision == "reject" and .reason == "older_than_leader"'
jg_wait_until 5 "the leader's sidecar (m$leader) logs the reject of m4" jga_has_admission_line "$leader" "$cond" ||
    jg_fail "the leader's sidecar m$leader logged no admission line with $cond; its admission lines:
$(jga_admission_lines "$leader" | tail -n 5)"
jg_log "m$leader logged: $(jga_admission_lines "$leader" "$cond" | head -n1)"
rejects=$(jga_decisions "$leader" side=inbound decision=reject reason=older_than_leader)
((rejects >= 1)) ||
    jg_fail "the leader's sidecar m$leader counted no decision side=inbound reject older_than_leader: $(jga_decision_summary "$leader")"
for n in 1 2 3; do
    jg_log "m$n decisions: $(jga_decision_summary "$n")"
done
refused_admits=$(jga_decisions "$leader" side=inbound decision=admit reason=older_than_leader)
[[ $refused_admits == 0 ]] || jg_fail "m$leader admitted m4 at 3.3.0 as well"

jg_wait_healthy 15 1 2 3
jg_log "member list after the refusal:"
jg_etcdctl "$(jg_endpoints)" member list -w simple | sed 's/^/    /' >&2
jg_etcdctl "$(jg_endpoints)" member list -w json |
    jq -e --arg url "$(jg_peer_url 4)" '[.members[] | select(.peerURLs == [$url] and (.name // "") == "")] | length == 1' \
        >/dev/null || jg_fail "m4 is not an unstarted member of the member list after its etcd was refused"

# ---------------------------------------------------------------------------------------
jg_log "step 2: m4 restarted declaring 3.4.23 joins"
jg_stop_member 4
t0=$EPOCHREALTIME
jg_start_member 4 --state existing --version 3.4.23 "${ADM[@]}"
jg_wait_healthy 60 1 2 3 4
jg_log "m4 healthy $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s after its start"

# every key written before, from m4's own copy
jga_serves_written 4 "$leader" admission/before 20
jg_log "m4 serves all 20 keys written before it joined"
cond='.side == "inbound" and .caller == "m4" and .caller_version == "3.4.23" and .decision == "admit"'
jga_has_admission_line "$leader" "$cond" ||
    jg_fail "the leader's sidecar m$leader logged no admit of m4 at 3.4.23: $(jga_admission_lines "$leader" '.caller == "m4"' | tail -n 5)"

jg_log "step 2b: joingate status shows every member's version and the leader"
leader=$(jg_leader) || jg_fail "no leader among m1..m4"
view_complete() {
    local m role
    for m in 1 2 3 4; do
        role=follower
        ((m == leader)) && role=leader
        jg_status_json 1 | jq -e --arg m "m$m" --arg r "$role" \
            '.cluster.members | any(.member == $m and .version == "3.4.23" and .role == $r)' >/dev/null || return 1
    done
    [[ $(jga_view_leader 1) == "m$leader 3.4.23" ]]
}
jg_wait_until 15 "m1's sidecar sees m1..m4 at 3.4.23 with their roles and leader m$leader" view_complete ||
    jg_fail "m1's /status does not show m1..m4 at 3.4.23 with leader m$leader: $(jg_status_json 1)"
table=$(jga_status_table 1) || jg_fail "joingate status --admin $(jg_admin_url 1) failed: $table"
printf '%s\n' "$table" | sed 's/^/    /' >&2
grep -Eq "^leader m$leader \(3\.4\.23\)$" <<<"$table" ||
    jg_fail "joingate status does not say 'leader m$leader (3.4.23)'"
for m in 1 2 3 4; do
    row=$(awk -v m="m$m" '$1 == m' <<<"$table")
    [[ -n $row ]] || jg_fail "joingate status has no row for m$m"
    read -r _ addr ver _ role _ <<<"$row"
    [[ $addr == "$(jg_ip "$m"):2380" ]] || jg_fail "joingate status: m$m at address '$addr', want $(jg_ip "$m"):2380"
    [[ $ver == 3.4.23 ]] || jg_fail "joingate status: m$m at version '$ver', want 3.4.23"
    want=follower
    ((m == leader)) && want=leader
    [[ $role == "$want" ]] || jg_fail "joingate status: m$m has role '$role', want $want"
done

# ---------------------------------------------------------------------------------------
jg_log "step 3: m5 declaring 3.5.0 (newer than the leader) joins"
jg_put 1 admission/before-m5 present || jg_fail "put through m1 failed"
jg_member_add 5
jg_start_member 5 --state existing --version 3.5.0 "${ADM[@]}"
jg_wait_healthy 60 1 2 3 4 5
jga_serves_written 5 "$leader" admission/before 20
[[ $(jg_get 5 admission/before-m5 --consistency=s) == present ]] || jg_fail "m5 does not serve admission/before-m5"
cond='.side == "inbound" and .caller == "m5" and .caller_version == "3.5.0" and .decision == "admit" and .reason == "newer_than_leader"'
jga_has_admission_line "$leader" "$cond" ||
    jg_fail "the leader's sidecar m$leader logged no admit newer_than_leader of m5: $(jga_admission_lines "$leader" '.caller == "m5"' | tail -n 5)"
jg_put 5 admission/from-m5 ok || jg_fail "put through m5 failed"
jg_wait_value 1 admission/from-m5 ok || jg_fail "m1 does not serve the write made through m5"
for n in 1 2 3 4 5; do jg_log "m$n decisions: $(jga_decision_summary "$n")"; done
jg_log "PASS admission of joiners (refused older, admitted same and newer)"
