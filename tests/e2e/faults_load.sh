#!/usr/bin/env bash
# Faults, part 1 (bounded, test namespaces only), on a 3-member etcd cluster; each prints
# the sidecar's descriptors and resident memory before and after:
#  1. m3's etcd killed (SIGKILL) under its raft streams and restarted, three times: the
#     sidecar stays up, the cluster recovers, no descriptor or memory growth;
#  2. 2000 slow clients on m1's inbound (1000 half-open TLS handshakes, 1000 slowloris
#     heads) while puts run: every put succeeds and stays fast, joingate closes the slow
#     ones by its handshake and header timeouts;
#  3. the descriptor limit: m2's sidecar lowered to a few spare descriptors (prlimit) and
#     flooded with connections: new ones are refused without a busy loop, nothing crashes,
#     and it serves again once the flood ends;
#  4. a reload storm: 100 SIGHUPs to m1 (every fifth with an invalid config) and a burst of
#     20 more, under a writer: counters exact, the process survives, every put succeeds.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

jg_setup 3
jg_start_cluster 3
# KNOWN_BUGS: defects of joingate still to be fixed; each is checked, printed as KNOWN-BUG
# and fails the suite at its end (after every fault ran) unless JG_E2E_ALLOW_KNOWN_BUGS=1.
KNOWN_BUGS=()
# A sidecar's descriptors move by up to ~6 at rest (pooled upstream connections, etcd's
# raft stream re-dials after a fault); a leak after these faults would be hundreds (one
# per slow client, per restart, per reload), so the checks allow 8.
fd_slack=8
known_bug_hits=0
known_bug() { # NAME MESSAGE: a listed defect showed up
    [[ " ${KNOWN_BUGS[*]} " == *" $1 "* ]] || jg_fail "$2"
    printf 'KNOWN-BUG %s: %s\n' "$1" "$2" >&2
    known_bug_hits=$((known_bug_hits + 1))
}
gate_numbers() { printf 'fds %s, VmRSS %s kB' "$(jg_fds "$1")" "$(jg_rss_kb "$1")"; }

# a writer through m1 for the whole suite; "ok I" / "fail I" per put
writes=$JG_DIR/writes
(
    i=0
    while :; do
        i=$((i + 1))
        s=$EPOCHREALTIME
        if timeout 5 etcdctl --endpoints="$(jg_endpoint 1)" --dial-timeout=2s --command-timeout=4s \
            put "load/$i" "$i" >/dev/null 2>&1; then
            echo "ok $i $(awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
        else echo "fail $i"; fi
        sleep 0.1
    done
) >"$writes" 2>&1 &
jg_track_pid $!
writes_since() { tail -n +"$(($1 + 1))" "$writes"; }
mark() { wc -l <"$writes"; }

# ---------------------------------------------------------------- 1. upstream killed
jg_log "fault 1: m3's etcd killed mid-stream and restarted (3 times)"
g3=${JG_GATE_PID[3]}
fd_a=$(jg_fds "$g3"); rss_a=$(jg_rss_kb "$g3")
jg_log "m3 sidecar before: $(gate_numbers "$g3")"
for round in 1 2 3; do
    jg_kill_etcd 3
    sleep 2
    jg__alive "$g3" || jg_fail "m3's sidecar died when its etcd was killed"
    jg_health 1 || jg_fail "m1 unhealthy with m3's etcd down"
    jg_restart_etcd 3
    jg_wait_healthy 30 1 2 3
    sleep 1
    jg_log "m3 sidecar after round $round: $(gate_numbers "$g3")"
    [[ $round == 1 ]] && { fd_1=$(jg_fds "$g3"); rss_1=$(jg_rss_kb "$g3"); }
done
# The count moves with pooled upstream connections and etcd's stream re-dials (±5 between
# rounds on a busy machine); a leak would grow by a few descriptors every round and stay.
fd_base=$((fd_a > fd_1 ? fd_a : fd_1))
jg_wait_until 15 "m3's sidecar is back to its descriptors" eval "(( \$(jg_fds $g3) <= fd_base + fd_slack ))" || true
fd_b=$(jg_fds "$g3"); rss_b=$(jg_rss_kb "$g3")
jg_log "fault 1 result: fds $fd_a -> $fd_b, VmRSS $rss_a -> $rss_b kB" \
    "(after round 1: fds $fd_1, VmRSS $rss_1 kB)"
((fd_b <= fd_base + fd_slack)) || jg_fail "m3's sidecar grows descriptors across etcd restarts ($fd_base -> $fd_b)"
((rss_b <= rss_1 + 2048)) || jg_fail "m3's sidecar grows memory across etcd restarts ($rss_1 -> $rss_b kB)"
closed=$(jg_metric 3 joingate_upstream_errors_total 'listener="inbound"')
jg_log "m3 inbound upstream errors counted: $closed"

# ---------------------------------------------------------------- 2. slow clients
jg_log "fault 2: 2000 slow clients on m1's inbound while puts run"
g1=${JG_GATE_PID[1]}
fd_a=$(jg_fds "$g1"); rss_a=$(jg_rss_kb "$g1")
jg_log "m1 sidecar before: $(gate_numbers "$g1")"
hs0=$(jg_metric 1 joingate_timeouts_total 'listener="inbound"' 'timeout="handshake"')
hd0=$(jg_metric 1 joingate_timeouts_total 'listener="inbound"' 'timeout="header"')
w0=$(mark)
d2=$(jg_dir 2)/tls
slow_out=$JG_DIR/slow.out
(ulimit -n 8192; exec timeout 60 python3 "$JG_REPO/tests/e2e/slowclients.py" --addr "$(jg_ip 1):2380" \
    --halfopen 1000 --slowloris 1000 --cert "$d2/tls.crt" --key "$d2/tls.key" --ca "$d2/ca.crt" \
    --hold 16) >"$slow_out" 2>&1 &
slow=$!
jg_track_pid "$slow"
# the peak of open inbound connections while they come (joingate closes the oldest ones
# by its 10 s timeouts while the last ones still connect on a busy machine)
peak_file=$JG_DIR/peak
(
    peak=0
    while :; do
        a=$(jg_metric 1 joingate_connections_active 'listener="inbound"' 2>/dev/null) || a=0
        ((a > peak)) && peak=$a && echo "$peak $(jg_fds "$g1") $(jg_rss_kb "$g1")" >"$peak_file"
        sleep 0.5
    done
) &
sampler=$!
jg_track_pid "$sampler"
jg_wait_until 30 "2000 slow clients connected" grep -q '^opened' "$slow_out" ||
    { cat "$slow_out" >&2; jg_fail "the slow clients did not connect"; }
jg_log "$(head -n1 "$slow_out"); m1 sidecar now: $(gate_numbers "$g1")"
wait "$slow" || true
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
cat "$slow_out" >&2
read -r peak peak_fds peak_rss <"$peak_file"
jg_log "peak: $peak inbound connections open at once (sidecar fds $peak_fds, VmRSS $peak_rss kB)"
((peak >= 1000)) || jg_fail "at most $peak slow clients were connected at once, want >= 1000"
w1=$(mark)
hs1=$(jg_metric 1 joingate_timeouts_total 'listener="inbound"' 'timeout="handshake"')
hd1=$(jg_metric 1 joingate_timeouts_total 'listener="inbound"' 'timeout="header"')
jg_log "handshake timeouts +$((hs1 - hs0)), header timeouts +$((hd1 - hd0))"
grep -q 'closed_by_server halfopen=1000/1000 slowloris=1000/1000' "$slow_out" ||
    jg_fail "joingate did not close every slow client within 16 s"
((hs1 - hs0 >= 1000)) || jg_fail "the handshake timeouts were not counted (+$((hs1 - hs0)), want >= 1000)"
((hd1 - hd0 >= 1000)) ||
    known_bug header_timeouts_counted "1000 slowloris heads closed, header timeouts counted +$((hd1 - hd0))"
nok=$(writes_since "$w0" | head -n $((w1 - w0)) | grep -c '^ok' || true)
nfail=$(writes_since "$w0" | head -n $((w1 - w0)) | grep -c '^fail' || true)
worst=$(writes_since "$w0" | head -n $((w1 - w0)) | awk '$1 == "ok" && $3 > m { m = $3 } END { print m + 0 }')
jg_log "puts during the slow clients: $nok ok, $nfail failed, slowest ${worst}s"
((nok >= 20 && nfail == 0)) || jg_fail "puts failed while slow clients were connected"
awk -v w="$worst" 'BEGIN { exit !(w < 2.0) }' || jg_fail "a put took ${worst}s during the slow clients"
# pooled upstream connections and etcd's own reconnections settle within seconds; a leak
# would stay
jg_wait_until 15 "m1's sidecar is back to its descriptors" eval "(( \$(jg_fds $g1) <= fd_a + fd_slack ))" || true
fd_b=$(jg_fds "$g1"); rss_b=$(jg_rss_kb "$g1")
jg_log "fault 2 result: fds $fd_a -> $fd_b, VmRSS $rss_a -> $rss_b kB"
((fd_b <= fd_a + fd_slack)) || jg_fail "m1's sidecar kept descriptors after the slow clients left ($fd_a -> $fd_b)"

# ---------------------------------------------------------------- 3. descriptor limit
jg_log "fault 3: m2's sidecar at its descriptor limit"
g2=${JG_GATE_PID[2]}
fd_a=$(jg_fds "$g2"); rss_a=$(jg_rss_kb "$g2")
limit0=$(prlimit --pid "$g2" --nofile --output SOFT,HARD --noheadings | awk '{ print $1 ":" $2 }')
low=$((fd_a + 24))
prlimit --pid "$g2" --nofile="$low:${limit0#*:}" || jg_fail "prlimit failed" # soft limit only: restorable
jg_log "m2 sidecar before: $(gate_numbers "$g2"), RLIMIT_NOFILE $limit0 -> $low"
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hog_out=$JG_DIR/hog.out
exec {hog_in}> >(exec timeout 60 python3 "$JG_REPO/tests/e2e/slowclients.py" --addr "$(jg_ip 2):2380" \
    --hog 200 --hold 50 >"$hog_out" 2>&1)
jg_wait_until 20 "200 connections opened to m2" grep -q '^hog' "$hog_out" || jg_fail "the flood did not connect"
sleep 1
c0=$(cpu "$g2")
sleep 3
c1=$(cpu "$g2")
ticks=$(getconf CLK_TCK)
jg_log "$(cat "$hog_out"); m2 sidecar at the limit: $(gate_numbers "$g2"), CPU $(((c1 - c0) * 100 / ticks / 3))% over 3 s"
jg__alive "$g2" || jg_fail "m2's sidecar died at its descriptor limit"
(((c1 - c0) < 3 * ticks / 2)) || jg_fail "m2's sidecar spins at its descriptor limit"
out=$(printf 'GET /joingate/v1/version HTTP/1.1\r\nHost: m2\r\nConnection: close\r\n\r\n' |
    timeout 4 openssl s_client -connect "$(jg_ip 2):2380" -CAfile "$JG_DIR/ca/ca.crt" \
        -cert "$(jg_dir 1)/tls/tls.crt" -key "$(jg_dir 1)/tls/tls.key" -ign_eof 2>&1 || true)
grep -q '^HTTP/1.1 200' <<<"$out" && jg_fail "m2 answered a new connection while out of descriptors"
jg_log "a new mTLS connection to m2 at the limit: not served (refused cleanly)"
warns=$(grep -c '"accept failed"' "$(jg_dir 2)/joingate.log" || true)
jg_log "m2 logged $warns accept warnings"
exec {hog_in}>&- # the flood ends
sleep 1
jg_wait_until 20 "m2 serves mTLS again" eval "printf 'GET /joingate/v1/version HTTP/1.1\r\nHost: m2\r\nConnection: close\r\n\r\n' |
    timeout 4 openssl s_client -connect $(jg_ip 2):2380 -CAfile $JG_DIR/ca/ca.crt \
        -cert $(jg_dir 1)/tls/tls.crt -key $(jg_dir 1)/tls/tls.key -ign_eof 2>&1 | grep -q '^HTTP/1.1 200'" ||
    jg_fail "m2's sidecar did not recover after the flood"
jg_wait_healthy 30 1 2 3
prlimit --pid "$g2" --nofile="$limit0" || jg_fail "could not restore m2's descriptor limit"
fd_b=$(jg_fds "$g2"); rss_b=$(jg_rss_kb "$g2")
jg_log "fault 3 result: fds $fd_a -> $fd_b, VmRSS $rss_a -> $rss_b kB; recovered, cluster healthy"

# ---------------------------------------------------------------- 4. reload storm
jg_log "fault 4: reload storm on m1 (100 SIGHUPs, 20 invalid) under the writer"
cfg=$(jg_dir 1)/joingate.toml
cp "$cfg" "$cfg.good"
{ cat "$cfg.good"; printf '\n[limits]\nmax_header_bytes = "lots"\nno_such_key = 1\n'; } >"$cfg.bad"
fd_a=$(jg_fds "$g1"); rss_a=$(jg_rss_kb "$g1")
ok0=$(jg_metric 1 joingate_config_reloads_total 'result="success"')
bad0=$(jg_metric 1 joingate_config_reloads_total 'result="failure"')
w0=$(mark)
reloads() { echo $(($(jg_metric 1 joingate_config_reloads_total 'result="success"') + $(jg_metric 1 joingate_config_reloads_total 'result="failure"'))); }
for ((i = 1; i <= 100; i++)); do
    if ((i % 5 == 0)); then cp "$cfg.bad" "$cfg.tmp"; else cp "$cfg.good" "$cfg.tmp"; fi
    mv "$cfg.tmp" "$cfg"
    r0=$(reloads)
    kill -HUP "$g1"
    jg_wait_until 5 "reload $i counted" eval "(( \$(reloads) > $r0 ))" || jg_fail "reload $i was not counted"
done
cp "$cfg.good" "$cfg"
for ((i = 1; i <= 20; i++)); do kill -HUP "$g1"; done # a burst: signals may coalesce
sleep 2
jg__alive "$g1" || jg_fail "m1's sidecar died in the reload storm"
ok1=$(jg_metric 1 joingate_config_reloads_total 'result="success"')
bad1=$(jg_metric 1 joingate_config_reloads_total 'result="failure"')
w1=$(mark)
nok=$(writes_since "$w0" | head -n $((w1 - w0)) | grep -c '^ok' || true)
nfail=$(writes_since "$w0" | head -n $((w1 - w0)) | grep -c '^fail' || true)
jg_log "reloads: success +$((ok1 - ok0)), failure +$((bad1 - bad0)); puts during the storm: $nok ok, $nfail failed"
((bad1 - bad0 == 20)) || jg_fail "want 20 failed reloads, counted $((bad1 - bad0))"
((ok1 - ok0 >= 81 && ok1 - ok0 <= 100)) || jg_fail "want 80 successful reloads plus 1..20 for the burst, counted $((ok1 - ok0))"
((nok >= 10 && nfail == 0)) || jg_fail "puts failed during the reload storm"
grep -q 'no_such_key' "$(jg_dir 1)/joingate.log" || jg_fail "the invalid config's error is not in m1's log"
jg_wait_healthy 20 1 2 3
jg_wait_until 15 "m1's sidecar is back to its descriptors" eval "(( \$(jg_fds $g1) <= fd_a + fd_slack ))" || true
fd_b=$(jg_fds "$g1"); rss_b=$(jg_rss_kb "$g1")
jg_log "fault 4 result: fds $fd_a -> $fd_b, VmRSS $rss_a -> $rss_b kB"
((fd_b <= fd_a + fd_slack)) || jg_fail "m1's sidecar grows descriptors across reloads ($fd_a -> $fd_b)"

total_fail=$(grep -c '^fail' "$writes" || true)
jg_log "writer: $(grep -c '^ok' "$writes") puts ok, $total_fail failed over the suite"
if ((known_bug_hits)) && [[ -z ${JG_E2E_ALLOW_KNOWN_BUGS:-} ]]; then
    jg_fail "$known_bug_hits known bug(s) of joingate to fix (KNOWN-BUG lines above)"
fi
jg_log "PASS faults (load)"
