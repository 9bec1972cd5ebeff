#!/usr/bin/env bash
# Faults, part 2 (bounded, test namespaces only), on a 3-member etcd cluster:
#  1. SIGTERM to a follower's sidecar while its raft streams run: it drains and exits 0
#     within limits.drain_timeout; restarted, the member rejoins the streams;
#  2. a writer runs while m2's sidecar is killed (SIGKILL) and restarted five times: every
#     acknowledged write is served afterwards by every member, none lost.
# Prints the sidecar's descriptors and resident memory before and after each fault.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

jg_setup 3
jg_start_cluster 3
gate_numbers() { printf 'fds %s, VmRSS %s kB' "$(jg_fds "$1")" "$(jg_rss_kb "$1")"; }

# ---------------------------------------------------------------- 1. SIGTERM under streams
leader=$(jg_leader) || jg_fail "no leader"
f=1; ((f == leader)) && f=2
jg_log "fault 1: SIGTERM to the sidecar of follower m$f during its raft streams (leader m$leader)"
streams=$(jg_ns_exec "$f" ss -Htn state established "( sport = :2380 )" | grep -c . || true)
((streams >= 2)) || jg_fail "m$f has $streams inbound connections, want its peers' raft streams"
pid=${JG_GATE_PID[$f]}
jg_log "m$f sidecar before: $(gate_numbers "$pid"), $streams inbound connections"
t0=$EPOCHREALTIME
kill -TERM "$pid"
jg_wait_gate_exit "$f" 20
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
((JG_GATE_RC == 0)) || jg_fail "m$f's sidecar exited with $JG_GATE_RC on SIGTERM, want 0"
awk -v t="$took" 'BEGIN { exit !(t <= 17) }' || jg_fail "m$f's sidecar took ${took}s to drain (drain_timeout 15s)"
grep -q '"draining"\|drain' "$(jg_dir "$f")/joingate.log" || jg_log "(no drain line in the log)"
jg_log "m$f sidecar: SIGTERM -> exit 0 in ${took}s"
jg_health "$leader" || jg_fail "the cluster lost quorum when one sidecar stopped"
jg_start_gate "$f"
jg_wait_healthy 30 1 2 3
jg_wait_until 15 "m$f's raft streams back through its new sidecar" \
    eval "(( \$(jg_ns_exec $f ss -Htn state established '( sport = :2380 )' | grep -c .) >= 2 ))" ||
    jg_fail "m$f's raft streams did not come back"
jg_log "fault 1 result: m$f rejoined; new sidecar $(gate_numbers "${JG_GATE_PID[$f]}")"

# ---------------------------------------------------------------- 2. kill -9 under a writer
jg_log "fault 2: m2's sidecar killed (SIGKILL) and restarted 5 times under a writer"
acked=$JG_DIR/acked
(
    i=0
    while :; do
        i=$((i + 1))
        n=$((i % 3 + 1)) # every member in turn, m2 included
        if timeout 5 etcdctl --endpoints="$(jg_endpoint "$n")" --dial-timeout=1s --command-timeout=3s \
            put "acked/$i" "v$i" >/dev/null 2>&1; then echo "$i"; fi
    done
) >"$acked" 2>/dev/null &
writer=$!
jg_track_pid "$writer"
sleep 2
first=${JG_GATE_PID[2]}
fd_a=$(jg_fds "$first"); rss_a=$(jg_rss_kb "$first")
jg_log "m2 sidecar before: $(gate_numbers "$first")"
for round in 1 2 3 4 5; do
    jg_kill_gate 2
    sleep 1.5
    jg_start_gate 2
    jg_wait_healthy 30 1 2 3
    jg_log "round $round: m2's sidecar killed and restarted; $(wc -l <"$acked") writes acknowledged so far"
    sleep 1
done
sleep 2
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
last=${JG_GATE_PID[2]}
jg_log "m2 sidecar after (a new process): $(gate_numbers "$last") (first process: fds $fd_a, VmRSS $rss_a kB)"
n_acked=$(wc -l <"$acked")
((n_acked >= 30)) || jg_fail "only $n_acked writes were acknowledged"
for n in 1 2 3; do
    # every acknowledged key, with its value, as mN serves it
    jg_wait_until 20 "m$n caught up" eval "[[ \$(jg_get $n acked/$(tail -n1 "$acked") --consistency=s) == v$(tail -n1 "$acked") ]]" ||
        jg_fail "m$n does not serve the last acknowledged write"
    jg_etcdctl "$(jg_endpoint "$n")" get --prefix acked/ --consistency=s -w json |
        jq -r '.kvs[]? | [(.key | @base64d), (.value | @base64d)] | @tsv' >"$JG_DIR/served.$n" ||
        jg_fail "could not read the keys from m$n"
    lost=0
    while read -r i; do
        grep -qx "acked/$i	v$i" "$JG_DIR/served.$n" || { lost=$((lost + 1)); jg_log "m$n lost acked/$i"; }
    done <"$acked"
    ((lost == 0)) || jg_fail "m$n lost $lost acknowledged writes"
    jg_log "m$n serves all $n_acked acknowledged writes ($(wc -l <"$JG_DIR/served.$n") keys)"
done
jg_log "PASS faults (cluster)"
