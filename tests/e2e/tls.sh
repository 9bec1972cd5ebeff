#!/usr/bin/env bash
# TLS on the inbound listener, probed with `openssl s_client` from the host against m1 of a
# 3-member etcd cluster:
#  - protocols: TLS 1.0 and 1.1 refused, 1.2 and 1.3 accepted;
#  - ciphers: weak ones (CBC-SHA1, SHA-256 CBC, NULL, anonymous) refused, the Mozilla
#    "intermediate" AEAD suites accepted;
#  - client certificates: expired, not yet valid, from an untrusted CA, outside
#    tls.allowed_peers, and none at all are refused (no HTTP answer) and each counts one
#    joingate_tls_handshake_errors_total{listener="inbound"}; a good one gets 200;
#  - rotation: m1's certificate replaced on disk while a writer runs, then SIGHUP: the new
#    certificate (serial, notAfter) is served, the established raft stream connections
#    survive, no leader change, every write succeeds.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

jg_setup 3
jg_start_cluster 3
ip1=$(jg_ip 1)
d1=$(jg_dir 1)
ca=$JG_DIR/ca
client=$(jg_dir 2)/tls # a member certificate: valid, SAN DNS:m2
bad=$JG_DIR/badcerts
failures=0

# A request that answers 200 only after a complete mTLS handshake with an accepted cert.
REQ=$'GET /joingate/v1/version HTTP/1.1\r\nHost: m1\r\nConnection: close\r\n\r\n'

# probe [s_client options...]: print the s_client output of one connection that sends REQ.
probe() {
    printf '%s' "$REQ" | timeout 10 openssl s_client -connect "$ip1:2380" -servername m1 \
        -CAfile "$ca/ca.crt" -ign_eof "$@" 2>&1 || true
}
answered() { grep -q '^HTTP/1.1 200' <<<"$1"; }
handshake_errors() { jg_metric 1 joingate_tls_handshake_errors_total 'listener="inbound"'; }

report() { # RESULT NAME DETAIL
    printf '%-5s %-44s %s\n' "$1" "$2" "$3"
    [[ $1 == PASS ]] || failures=$((failures + 1))
}

# ---------------------------------------------------------------- protocols and ciphers
jg_log "step 1: protocol versions and cipher suites"
# SECLEVEL=0 lets this client offer what the server must refuse: a refusal is the server's
proto_case() { # NAME WANT(accept|refuse) s_client options...
    local name=$1 want=$2 out proto
    shift 2
    out=$(probe -cert "$client/tls.crt" -key "$client/tls.key" "$@")
    if grep -qE 'no protocols available|no cipher match|Call to SSL_CONF_cmd.*failed' <<<"$out"; then
        report FAIL "$name" "inconclusive: this openssl cannot offer it ($(grep -m1 -E 'no (protocols|cipher)' <<<"$out"))"
        return
    fi
    proto=$(awk -F': *' '/^ *Protocol *:/ { print $2; exit }' <<<"$out")
    local cipher
    cipher=$(awk '/^New, .*Cipher is/ { print $NF; exit }' <<<"$out")
    if [[ $want == accept ]]; then
        if answered "$out"; then report PASS "$name" "accepted: $proto $cipher, 200"
        else report FAIL "$name" "refused, want accepted: $(grep -m1 -iE 'alert|error' <<<"$out")"; fi
    else
        if answered "$out" || [[ -n $cipher && $cipher != "(NONE)" ]]; then
            report FAIL "$name" "accepted ($proto $cipher), want refused"
        else report PASS "$name" "refused: $(grep -m1 -ioE 'alert [a-z ]+|wrong version number|no shared cipher|unsupported protocol|handshake failure' <<<"$out" | head -n1 || echo 'no handshake')"; fi
    fi
}
proto_case tls1.0 refuse -tls1 -cipher 'DEFAULT@SECLEVEL=0'
proto_case tls1.1 refuse -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
proto_case tls1.2 accept -tls1_2
proto_case tls1.3 accept -tls1_3
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
    proto_case "tls1.2 $c" accept -tls1_2 -cipher "$c"
done
for c in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    proto_case "tls1.3 $c" accept -tls1_3 -ciphersuites "$c"
done
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA ECDHE-ECDSA-AES128-SHA256 \
    ECDHE-ECDSA-AES256-SHA384 ECDHE-ECDSA-NULL-SHA AECDH-AES128-SHA; do
    proto_case "tls1.2 weak $c" refuse -tls1_2 -cipher "$c@SECLEVEL=0"
done

# ---------------------------------------------------------------- client certificates
jg_log "step 2: client certificates"
now=$(date -u +%s)
certs_member_dated "$bad/expired" "$ca" m2 \
    "$(date -u -d @$((now - 86400 * 10)) +%Y%m%d%H%M%SZ)" "$(date -u -d @$((now - 86400)) +%Y%m%d%H%M%SZ)" \
    "IP:$(jg_ip 2)" DNS:m2 || jg_fail "could not make the expired certificate"
certs_member_dated "$bad/future" "$ca" m2 \
    "$(date -u -d @$((now + 86400)) +%Y%m%d%H%M%SZ)" "$(date -u -d @$((now + 86400 * 10)) +%Y%m%d%H%M%SZ)" \
    "IP:$(jg_ip 2)" DNS:m2 || jg_fail "could not make the not-yet-valid certificate"
certs_ca "$bad/otherca" || jg_fail "could not make the untrusted CA"
certs_member "$bad/untrusted" "$bad/otherca" m2 "IP:$(jg_ip 2)" DNS:m2 ||
    jg_fail "could not make the untrusted certificate"
certs_member "$bad/wrongsan" "$ca" intruder DNS:intruder.example IP:10.213.250.250 ||
    jg_fail "could not make the wrong-SAN certificate"

# The SAN allow-list: member certificates only (DNS:m<N>); a SIGHUP applies it.
sed -i 's|^ca = .*|&\nallowed_peers = ["DNS:m*"]|' "$d1/joingate.toml"
grep -q '^allowed_peers' "$d1/joingate.toml" || jg_fail "could not add tls.allowed_peers to m1's config"
reload_ok0=$(jg_metric 1 joingate_config_reloads_total 'result="success"')
kill -HUP "${JG_GATE_PID[1]}"
jg_wait_until 10 "m1 reloads with tls.allowed_peers" \
    eval '(($(jg_metric 1 joingate_config_reloads_total result=\"success\") > reload_ok0))' ||
    jg_fail "m1 did not reload its config"

cert_case() { # NAME WANT(accept|refuse) s_client options...
    local name=$1 want=$2 out e0 e1
    shift 2
    e0=$(handshake_errors)
    out=$(probe "$@")
    sleep 0.3
    e1=$(handshake_errors)
    if [[ $want == accept ]]; then
        if answered "$out" && ((e1 == e0)); then report PASS "$name" "accepted, 200, errors +0"
        else report FAIL "$name" "want accepted: answered=$(answered "$out" && echo yes || echo no), errors +$((e1 - e0))"; fi
    else
        if answered "$out"; then report FAIL "$name" "accepted (200), want refused"
        elif ((e1 - e0 != 1)); then report FAIL "$name" "refused, but joingate_tls_handshake_errors_total +$((e1 - e0)), want +1"
        else report PASS "$name" "refused, joingate_tls_handshake_errors_total +1"; fi
    fi
}
cert_case "client cert: member m2 (good)" accept -cert "$client/tls.crt" -key "$client/tls.key"
cert_case "client cert: expired" refuse -cert "$bad/expired/tls.crt" -key "$bad/expired/tls.key"
cert_case "client cert: not yet valid" refuse -cert "$bad/future/tls.crt" -key "$bad/future/tls.key"
cert_case "client cert: untrusted CA" refuse -cert "$bad/untrusted/tls.crt" -key "$bad/untrusted/tls.key"
cert_case "client cert: SAN not in allowed_peers" refuse -cert "$bad/wrongsan/tls.crt" -key "$bad/wrongsan/tls.key"
cert_case "client cert: none" refuse
cert_case "client cert: none, TLS 1.2" refuse -tls1_2
cert_case "client cert: expired, TLS 1.2" refuse -tls1_2 -cert "$bad/expired/tls.crt" -key "$bad/expired/tls.key"
jg_health 1 && jg_health 2 && jg_health 3 || jg_fail "the cluster is not healthy after the certificate probes"

# ---------------------------------------------------------------- rotation under traffic
jg_log "step 3: m1's certificate rotated on disk under traffic, SIGHUP"
served() { # "serial notAfter" of the certificate m1 serves
    probe -cert "$client/tls.crt" -key "$client/tls.key" -showcerts </dev/null |
        openssl x509 -noout -serial -enddate 2>/dev/null | tr '\n' ' '
}
# established inbound connections of m1 (its peers' raft streams), stable over 1 s
streams() {
    jg_ns_exec 1 ss -Htn state established "( sport = :2380 )" | awk '{ print $3 "-" $4 }' | sort
}
s_a=$(streams); sleep 1; s_b=$(streams)
stable=$(comm -12 <(echo "$s_a") <(echo "$s_b"))
nstable=$(grep -c . <<<"$stable" || true)
((nstable >= 2)) || jg_fail "m1 has $nstable stable inbound connections, want the raft streams of m2 and m3"
before=$(served)
term0=$(jg_raft_term 1)
leader0=$(jg_leader) || jg_fail "no leader before the rotation"
expiry0=$(jg_metric 1 joingate_cert_expiry_timestamp_seconds)

writes=$JG_DIR/writes
(
    i=0
    while :; do
        i=$((i + 1))
        if timeout 5 etcdctl --endpoints="$(jg_endpoint 2)" --dial-timeout=2s --command-timeout=3s \
            put "rot/$i" "$i" >/dev/null 2>&1; then echo "ok $i"; else echo "fail $i"; fi
        sleep 0.05
    done
) >"$writes" 2>&1 &
writer=$!
jg_track_pid "$writer"
sleep 2

CERTS_DAYS=5 certs_member "$JG_DIR/rotated" "$ca" m1 "IP:$ip1" DNS:m1 || jg_fail "could not make the new certificate"
cp "$JG_DIR/rotated/tls.key" "$d1/tls/tls.key.new"
cp "$JG_DIR/rotated/tls.crt" "$d1/tls/tls.crt.new"
mv "$d1/tls/tls.key.new" "$d1/tls/tls.key"
mv "$d1/tls/tls.crt.new" "$d1/tls/tls.crt"
reload_ok0=$(jg_metric 1 joingate_config_reloads_total 'result="success"')
kill -HUP "${JG_GATE_PID[1]}"
jg_wait_until 10 "m1 reloads the rotated certificate" \
    eval '(($(jg_metric 1 joingate_config_reloads_total result=\"success\") > reload_ok0))' ||
    jg_fail "m1 did not reload after the rotation"
sleep 3
after=$(served)
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
term1=$(jg_raft_term 1)
leader1=$(jg_leader) || jg_fail "no leader after the rotation"
expiry1=$(jg_metric 1 joingate_cert_expiry_timestamp_seconds)
s_c=$(streams)
lost=$(comm -23 <(echo "$stable") <(echo "$s_c"))
ok=$(grep -c '^ok' "$writes" || true)
bad_writes=$(grep -c '^fail' "$writes" || true)

want_new="$(openssl x509 -in "$JG_DIR/rotated/tls.crt" -noout -serial) notAfter=$(openssl x509 -in "$JG_DIR/rotated/tls.crt" -noout -enddate | cut -d= -f2) "
jg_log "served before: $before"
jg_log "served after:  $after"
[[ $before != "$after" ]] && [[ $after == "$want_new" ]] &&
    report PASS "rotation: new certificate served" "${after}" ||
    report FAIL "rotation: new certificate served" "after '$after', want '$want_new'"
((expiry1 > expiry0)) && report PASS "rotation: cert expiry metric" "$expiry0 -> $expiry1" ||
    report FAIL "rotation: cert expiry metric" "$expiry0 -> $expiry1"
[[ -z $lost ]] && report PASS "rotation: raft stream connections kept" "$nstable stable connections, all still established" ||
    report FAIL "rotation: raft stream connections kept" "lost: $(echo $lost)"
[[ $term0 == "$term1" && $leader0 == "$leader1" ]] &&
    report PASS "rotation: no leader change" "leader m$leader1, term $term1" ||
    report FAIL "rotation: no leader change" "leader m$leader0 term $term0 -> m$leader1 term $term1"
((ok > 20 && bad_writes == 0)) && report PASS "rotation: writes under traffic" "$ok puts, 0 failed" ||
    report FAIL "rotation: writes under traffic" "$ok puts ok, $bad_writes failed"
jg_wait_healthy 20 1 2 3

((failures == 0)) || jg_fail "$failures TLS case(s) failed"
jg_log "PASS tls"
