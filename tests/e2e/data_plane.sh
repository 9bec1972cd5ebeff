#!/usr/bin/env bash
# Data plane: an etcd 3.4 cluster forms, grows and replicates with every peer request
# relayed by joingate (admission observing only). Three members start as a new cluster, a
# fourth joins through `etcdctl member add`, a write on one member is read back from every
# member, and each sidecar's /metrics shows inbound and outbound requests that keep coming.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

jg_setup 4

jg_log "step 1: three members form a new cluster"
jg_start_cluster 3
leader=$(jg_leader) || jg_fail "no leader among m1..m3"
jg_log "leader is m$leader, raft term $(jg_raft_term "$leader")"

jg_log "step 2: m4 joins through etcdctl member add"
jg_member_add 4
jg_start_member 4 --state existing
jg_wait_healthy 60 1 2 3 4

jg_log "step 3: a write through m2 is served by every member"
value="written-through-m2-$RANDOM"
jg_put 2 data-plane/key "$value" || jg_fail "put through m2 failed"
for n in 1 2 3 4; do
    jg_wait_value "$n" data-plane/key "$value" 20 || jg_fail "m$n does not serve the write locally"
    got=$(jg_get "$n" data-plane/key) || jg_fail "linearizable get through m$n failed"
    [[ $got == "$value" ]] || jg_fail "m$n linearizable read: got '$got', want '$value'"
done
# and the other way round: a write through the newest member reaches the first one
jg_put 4 data-plane/from-m4 "hello-from-m4" || jg_fail "put through m4 failed"
jg_wait_value 1 data-plane/from-m4 hello-from-m4 20 || jg_fail "m1 does not serve m4's write"
jg_log "every member serves both writes"

if [[ -n ${JG_E2E_DIRECT:-} ]]; then
    # without sidecars etcd dials its peers itself: the bypass check below must see that
    conns=$(jg_etcd_direct_peer_conns 1)
    ((conns > 0)) || jg_fail "DIRECT mode: the bypass check sees no direct peer connection of m1"
    jg_log "DIRECT mode: m1 has $conns direct peer connections; no joingate checks"
    exit 0
fi

jg_log "step 4: every peer request went through joingate"
for n in 1 2 3 4; do
    conns=$(jg_etcd_direct_peer_conns "$n")
    [[ $conns == 0 ]] || jg_fail "etcd m$n has $conns peer connections that bypass joingate"
done

declare -A in0 out0
for n in 1 2 3 4; do
    in0[$n]=$(jg_metric "$n" joingate_requests_total 'listener="inbound"') ||
        jg_fail "cannot scrape $(jg_admin_url "$n")/metrics"
    out0[$n]=$(jg_metric "$n" joingate_requests_total 'listener="outbound"') ||
        jg_fail "cannot scrape $(jg_admin_url "$n")/metrics"
    jg_log "m$n: joingate_requests_total inbound=${in0[$n]} outbound=${out0[$n]}"
    ((in0[$n] > 0)) || jg_fail "m$n: no inbound request counted"
    ((out0[$n] > 0)) || jg_fail "m$n: no outbound request counted"
done

# etcd keeps probing its peers (GET /raft/probing, GET /version) every few seconds.
grown() {
    local n i o
    for n in 1 2 3 4; do
        i=$(jg_metric "$n" joingate_requests_total 'listener="inbound"') || return 1
        o=$(jg_metric "$n" joingate_requests_total 'listener="outbound"') || return 1
        ((i > in0[$n] && o > out0[$n])) || return 1
    done
}
jg_wait_until 30 "inbound and outbound request counts grow on every member" grown ||
    {
        for n in 1 2 3 4; do
            jg_log "m$n now: inbound=$(jg_metric "$n" joingate_requests_total 'listener="inbound"')" \
                "outbound=$(jg_metric "$n" joingate_requests_total 'listener="outbound"')"
        done
        jg_fail "joingate request counters did not grow"
    }
for n in 1 2 3 4; do
    jg_log "m$n: inbound=$(jg_metric "$n" joingate_requests_total 'listener="inbound"')" \
        "outbound=$(jg_metric "$n" joingate_requests_total 'listener="outbound"')"
done

jg_wait_healthy 10 1 2 3 4
jg_log "PASS data plane through joingate"
