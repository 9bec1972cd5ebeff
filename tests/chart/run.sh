#!/usr/bin/env bash
# Tests of the Kubernetes deliverables: the Helm chart helm/joingate, its
# monitoring (PrometheusRule, dashboard), the joingate.sidecar.* named templates and the
# Dockerfile. No cluster and no helm binary are needed:
#   - ../shared/tools/helm-template renders the chart (default values and many value sets),
#   - ../shared/tools/k8s-validate --strict validates every rendered object,
#   - check_render.py asserts the structure that matters (native sidecar first, joingate
#     wait before etcd, probes on admin paths, HTTP_PROXY / advertise URLs / ports
#     consistent with each member's rendered joingate config, TLS, security context, ...),
#   - the real joingate binary accepts every rendered config (`joingate check-config`),
#     serves the /metrics that the alerts and dashboard query (promql_check.py against a
#     live scrape), and reloads on the SIGHUP the chart's reloader sends,
#   - promtool (Debian package prometheus), when installed, checks the scrape and the rules
#     and runs the alerts' unit tests (alerts_test.yml).
# Prints "N passed, N failed" last; exits 1 if anything failed.
#
#   tests/chart/run.sh                 JOINGATE_BIN=build/dev/joingate by default
#   JG_CHART_KEEP=1 tests/chart/run.sh keep the work directory (renders, configs, logs)
#   JG_CHART_ONLY=default,monitoring   run only the value sets whose names contain these
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/tests/chart
chart=$repo/helm/joingate
JOINGATE_BIN=${JOINGATE_BIN:-$repo/build/dev/joingate}

passed=0
failed=0
failures=()
work=$(mktemp -d /tmp/jg-chart.XXXXXX)
bg_pids=()

ns_pids=()

# stop_ns PID: end a PID namespace started with `unshare --fork` (PID): SIGKILL to the
# namespace's init (unshare's child) ends every process in it; unshare itself ignores SIGTERM.
stop_ns() {
    local child
    child=$(ps -o pid= --ppid "$1" 2>/dev/null | head -n1)
    [[ -n $child ]] && kill -KILL $child 2>/dev/null
    wait "$1" 2>/dev/null
}

cleanup() {
    local p
    for p in "${ns_pids[@]}"; do stop_ns "$p"; done
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
    if [[ -n ${JG_CHART_KEEP:-} ]]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# t NAME COMMAND...: one test; its output is shown only when it fails.
t() {
    local name=$1 log
    shift
    log="$work/log.$((passed + failed))"
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL  $name"
        sed 's/^/      /' "$log" | tail -n 80
    fi
}
skip() { echo "skip  $1 ($2)"; }
finish() {
    echo
    ((failed == 0)) || printf 'failed: %s\n' "${failures[@]}"
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit $?
}
fatal() {
    failed=$((failed + 1))
    failures+=("setup: $1")
    echo "FAIL  setup: $1"
    finish
}

# ------------------------------------------------------------------ prerequisites

tools=$(cd "$repo/../shared/tools" 2>/dev/null && pwd) || fatal "no chart tools at $repo/../shared/tools"
HT=$tools/helm-template
KV=$tools/k8s-validate
python3 -c 'import yaml, tomllib' 2>/dev/null || fatal "python3 with yaml (Debian python3-yaml) and tomllib (3.11+) is needed"
command -v openssl >/dev/null || fatal "openssl is needed"
[[ -x $JOINGATE_BIN ]] || fatal "no joingate binary at $JOINGATE_BIN (build it first: cmake --preset dev && cmake --build --preset dev --target joingate)"
have_promtool=
command -v promtool >/dev/null && have_promtool=1
# shellcheck source=tests/support/certs.sh
source "$repo/tests/support/certs.sh"
certs_ca "$work/ca" || fatal "cannot make a test CA"

# Warm the tools once (first use builds helm-template and installs k8s-validate's packages).
"$HT" "$chart" >"$work/warm.yaml" 2>"$work/warm.err" || { cat "$work/warm.err"; fatal "helm-template cannot render the default values"; }
"$KV" --strict "$work/warm.yaml" >/dev/null 2>&1 || true

# ------------------------------------------------------------------ a real joingate

# A stand-in etcd for the sidecar's probes: GET /version on the peer URL, and the etcd3
# leader probe (POST /v3/maintenance/status) saying that this member leads, so that the
# sidecar admits its member and exports joingate_leader_info too.
cat >"$work/fake_etcd.py" <<'EOF'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, obj):
        b = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        self.reply({"etcdserver": "3.5.17", "etcdcluster": "3.5.0"} if self.path == "/version" else {})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply({"header": {"member_id": "42"}, "leader": "42"})
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
EOF
free_ports() { python3 -c 'import socket
s = [socket.socket() for _ in range('"$1"')]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'; }
wait_for() { # SECONDS COMMAND...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

python3 "$work/fake_etcd.py" "$work/fake_etcd.port" &
bg_pids+=($!)
wait_for 10 test -s "$work/fake_etcd.port" || fatal "the stand-in etcd did not start"
etcd_port=$(cat "$work/fake_etcd.port")
read -r in_port admin_port < <(free_ports 2)
certs_member "$work/live" "$work/ca" m1 DNS:localhost IP:127.0.0.1 || fatal "cannot make a test certificate"
cat >"$work/live/joingate.toml" <<EOF
[member]
name = "m1"
version = "3.5.17"
peer = "http://127.0.0.1:$etcd_port"
client = "http://127.0.0.1:$etcd_port"
probe_interval = "1s"
[inbound]
listen = "127.0.0.1:$in_port"
[outbound]
listen = "127.0.0.1:0"
[cluster]
peers = ["127.0.0.1:$in_port"]
view_interval = "1s"
[tls]
cert = "tls.crt"
key = "tls.key"
ca = "ca.crt"
[admin]
listen = "127.0.0.1:$admin_port"
EOF
"$JOINGATE_BIN" run --config "$work/live/joingate.toml" >"$work/live/joingate.log" 2>&1 &
bg_pids+=($!)
admin=http://127.0.0.1:$admin_port
ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$admin/readyz") == 200 ]]; }
wait_for 20 ready || { tail -n 20 "$work/live/joingate.log"; fatal "the live joingate was not admitted within 20 s"; }
curl -sf "$admin/healthz" >/dev/null # one more request for joingate_requests_total
curl -sf "$admin/metrics" >"$work/scrape.txt" || fatal "cannot scrape $admin/metrics"

test_scrape_has_contract_metrics() {
    # DESIGN §8 plus the two the README adds; histograms as their _bucket series.
    local m missing=0
    for m in joingate_build_info joingate_member_info joingate_member_is_leader joingate_leader_info \
        joingate_cluster_members joingate_admission_decisions_total joingate_join_retries_total \
        joingate_join_waiting joingate_join_admitted joingate_join_wait_seconds_bucket \
        joingate_overrides_active joingate_requests_total joingate_request_duration_seconds_bucket \
        joingate_upstream_errors_total joingate_tls_handshake_errors_total joingate_connections_active \
        joingate_config_reloads_total joingate_cert_expiry_timestamp_seconds \
        joingate_connections_rejected_total joingate_timeouts_total; do
        grep -q "^$m[{ ]" "$work/scrape.txt" || { echo "missing from the scrape: $m"; missing=1; }
    done
    return "$missing"
}
t "live joingate: /metrics holds every metric of DESIGN §8 (+ connections_rejected, timeouts)" test_scrape_has_contract_metrics

test_admin_paths() {
    # Every path the chart's probes and scrape config use answers (not 404) on a real joingate.
    local p code rc=0
    for p in /healthz /readyz /metrics /status /joingate/v1/version; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$admin$p")
        echo "$p -> $code"
        [[ $code == 200 ]] || rc=1
    done
    grep -hoE 'path: /[a-z/0-9]+' "$chart/templates/_sidecar.tpl" "$chart/templates/servicemonitor.yaml" "$chart/templates/statefulset.yaml" | sort -u | while read -r _ p; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$admin$p")
        echo "chart path $p -> $code"
        [[ $code == 200 || $code == 503 ]] || exit 1
    done || rc=1
    return "$rc"
}
t "live joingate: the admin paths the chart uses answer" test_admin_paths

if [[ -n $have_promtool ]]; then
    t "promtool check metrics on the live scrape" bash -c "promtool check metrics <'$work/scrape.txt'"
else
    skip "promtool check metrics" "promtool not installed (Debian package prometheus)"
fi

# ------------------------------------------------------------------ value sets

# expect NAME JSON: the expectations of check_render.py, JSON merged over the defaults.
expect() {
    python3 - "$work/$1.expect.json" "$2" <<'EOF'
import json, sys
d = {"release": "release-name", "namespace": "default", "fullname": "release-name-joingate",
     "replicas": 3, "version": "3.5.17", "cert_manager": False, "tls_secret": "release-name-joingate-tls",
     "monitoring": {"annotations": True, "service_monitor": False, "rule": False, "dashboard": False},
     "reloader": True, "persistence": True, "roll_on_config_change": True, "wait_timeout": "",
     "config": {"admission.mode": "both", "admission.policy": "not-older-than-leader", "admission.fail": "closed"}}
over = json.loads(sys.argv[2])
for k, v in over.items():
    if isinstance(v, dict) and isinstance(d.get(k), dict):
        d[k].update(v)
    else:
        d[k] = v
json.dump(d, open(sys.argv[1], "w"), indent=1)
EOF
}

# certs_for DIR: the certificates the configs of a render need (check_render.py's certs.txt).
certs_for() {
    local dir member sans
    while read -r dir member sans; do
        [[ -n $dir ]] || continue
        # shellcheck disable=SC2086
        certs_member "$dir" "$work/ca" "$member" $sans || return 1
    done <"$1/certs.txt"
}

check_configs() { # DIR: joingate check-config on every member's file
    local f rc=0 out
    for f in "$1"/config/*.toml; do
        out=$("$JOINGATE_BIN" check-config --config "$f" 2>&1) || { echo "$f:"; echo "$out"; cat -n "$f"; rc=1; continue; }
        [[ $out == ok ]] || { echo "$f: check-config said: $out"; rc=1; }
    done
    return "$rc"
}

render_validate() { # DIR HELM-TEMPLATE-ARGS...
    local d=$1
    shift
    "$HT" "$@" >"$d/render.yaml" && "$KV" --strict --kube-version 1.29 "$d/render.yaml"
}
configs_ok() { certs_for "$1" && check_configs "$1"; }

# value_set NAME EXPECT-JSON HELM-TEMPLATE-ARGS...: render, validate, check the structure,
# and have joingate check every member's config.
value_set() {
    local name=$1 exp=$2 d=$work/$1
    shift 2
    if [[ -n ${JG_CHART_ONLY:-} ]]; then
        local want hit=
        for want in ${JG_CHART_ONLY//,/ }; do [[ $name == *"$want"* ]] && hit=1; done
        [[ -n $hit ]] || return 0
    fi
    mkdir -p "$d"
    expect "$name" "$exp"
    t "[$name] renders and validates (k8s-validate --strict, kube 1.29)" render_validate "$d" "$@"
    [[ -s $d/render.yaml ]] || return 0
    t "[$name] structure: sidecar order, probes, ports, proxy, TLS, security" \
        python3 "$here/check_render.py" "$d/render.yaml" "$work/$name.expect.json" "$d"
    if compgen -G "$d/config/*.toml" >/dev/null; then
        t "[$name] joingate check-config accepts every member's config" configs_ok "$d"
    fi
}

until_2h=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)

value_set default '{}' "$chart"
value_set cert-manager-3 \
    '{"release":"etcd","namespace":"db","fullname":"etcd-joingate","cert_manager":true}' \
    etcd "$chart" -n db --set tls.certManager.enabled=true
value_set cert-manager-issuer-5 \
    '{"release":"etcd","namespace":"db","fullname":"etcd","replicas":5,"cert_manager":true,"issuer":"corp-ca"}' \
    etcd "$chart" -n db -f "$here/values/cert-manager-issuer.yaml"
value_set monitoring-on \
    '{"release":"etcd","namespace":"db","fullname":"etcd","tls_secret":"etcd-tls","monitoring":{"annotations":true,"service_monitor":true,"rule":true,"dashboard":true}}' \
    etcd "$chart" -n db -f "$here/values/monitoring-on.yaml" -a monitoring.coreos.com/v1
value_set monitoring-off \
    '{"monitoring":{"annotations":false,"service_monitor":false,"rule":false,"dashboard":false}}' \
    "$chart" -f "$here/values/monitoring-off.yaml"
value_set replicas-5-secret \
    '{"replicas":5,"tls_secret":"peer-certs"}' \
    "$chart" --set replicas=5 --set tls.existingSecret=peer-certs
value_set policy-exact '{"config":{"admission.policy":"exact"}}' \
    "$chart" --set config.admission.policy=exact
value_set policy-not-older-than-leader-mode-leader \
    '{"config":{"admission.policy":"not-older-than-leader","admission.mode":"leader"}}' \
    "$chart" --set config.admission.policy=not-older-than-leader --set config.admission.mode=leader
value_set policy-skew \
    '{"config":{"admission.policy":"skew","admission.max_minor_skew":2,"admission.allow_older":true}}' \
    "$chart" -f "$here/values/policy-skew.yaml"
value_set policy-protocol \
    '{"config":{"admission.policy":"protocol","member.protocol":"1..2"}}' \
    "$chart" -f "$here/values/policy-protocol.yaml"
value_set mode-follower \
    '{"wait_timeout":"45m","config":{"admission.mode":"follower","admission.fail":"open","admission.on_reject":"exit","admission.retry.deadline":"30m","admission.retry.hold":"9s","admission.retry.multiplier":1.5}}' \
    "$chart" -f "$here/values/follower.yaml"
value_set mode-observe-override \
    "{\"release\":\"etcd\",\"namespace\":\"db\",\"fullname\":\"etcd-joingate\",\"tls_secret\":\"etcd-joingate-tls\",\"config\":{\"admission.mode\":\"observe\",\"admission.override\":[{\"member\":\"etcd-joingate-2\",\"until\":\"$until_2h\",\"reason\":\"INC-1: roll back etcd-joingate-2\"}],\"tls.allowed_peers\":[\"DNS:*.etcd-joingate-headless.db.svc\"],\"outbound.route\":[{\"listen\":\"127.0.0.1:12380\",\"peer\":\"legacy-0.legacy.db.svc:2380\"}],\"log.format\":\"text\",\"limits.max_header_bytes\":32768}}" \
    etcd "$chart" -n db -f "$here/values/observe.yaml" \
    --set "config.admission.override[0].member=etcd-joingate-2" \
    --set "config.admission.override[0].until=$until_2h" \
    --set "config.admission.override[0].reason=INC-1: roll back etcd-joingate-2"
value_set single-member-other-ports \
    '{"replicas":1,"version":"3.6.0-rc.1","reloader":false,"persistence":false,"roll_on_config_change":false,"config":{"cluster.bootstrap":true}}' \
    "$chart" -f "$here/values/single.yaml"

# ------------------------------------------------------------------ what must not render

expect_render_error() { # PATTERN HELM-TEMPLATE-ARGS...
    local pattern=$1 out
    shift
    if out=$("$HT" "$@" 2>&1); then
        echo "rendered although it should not have"
        return 1
    fi
    grep -qE -- "$pattern" <<<"$out" || { echo "error does not match /$pattern/:"; echo "$out"; return 1; }
}
t "refuses member.version = auto (joingate wait runs before etcd: it could never be admitted)" \
    expect_render_error 'cannot work with this chart' "$chart" --set config.member.version=auto
t "refuses an etcd tag that is not a version without config.member.version" \
    expect_render_error 'cannot take the member version from etcd.image.tag' "$chart" --set etcd.image.tag=latest
t "schema: a misspelt joingate key fails the render" \
    expect_render_error 'Additional property polcy is not allowed' "$chart" --set config.admission.polcy=exact
t "schema: a policy joingate does not know fails the render" \
    expect_render_error 'config.admission.policy' "$chart" --set config.admission.policy=newest
t "schema: a duration that is not a string fails the render" \
    expect_render_error 'idle_timeout' "$chart" --set config.limits.idle_timeout=300
t "schema: 0 replicas fail the render" expect_render_error 'replicas' "$chart" --set replicas=0
t "Chart.yaml kubeVersion: refuses Kubernetes 1.28 (no native sidecars)" \
    expect_render_error 'kubeVersion|incompatible|1.28' "$chart" --kube-version 1.28
test_kv_128() {
    local out
    "$HT" "$chart" >"$work/k128.yaml" || return 1
    if out=$("$KV" --strict --kube-version 1.28 "$work/k128.yaml" 2>&1); then
        echo "k8s-validate accepted the native sidecar on 1.28:"; echo "$out"; return 1
    fi
    echo "$out"
    grep -q '^FAIL StatefulSet/.*initContainers/0/restartPolicy' <<<"$out"
}
t "k8s-validate rejects the StatefulSet on 1.28 (native sidecar check is active)" test_kv_128

test_enabled_false() {
    local out
    out=$("$HT" "$chart" --set enabled=false) || return 1
    [[ -z $(grep -v '^\s*$' <<<"$out") ]] || { echo "enabled=false still rendered:"; echo "$out" | head -20; return 1; }
}
t "enabled=false renders no object" test_enabled_false

test_checksum() {
    local a b c
    a=$("$HT" "$chart" | grep 'checksum/config')
    b=$("$HT" "$chart" --set config.admission.policy=exact | grep 'checksum/config')
    c=$("$HT" "$chart" --set etcd.resources.requests.cpu=1 | grep 'checksum/config')
    [[ -n $a && $a != "$b" ]] || { echo "a config change does not change checksum/config: $a / $b"; return 1; }
    [[ $a == "$c" ]] || { echo "a change outside the config changes checksum/config: $a / $c"; return 1; }
    a=$("$HT" "$chart" --set replicas=5 | grep 'checksum/config')
    [[ $a != "$c" ]] || { echo "replicas (cluster.peers) does not change checksum/config"; return 1; }
}
t "checksum/config rolls the pods on config changes only" test_checksum

test_config_per_version() {
    # Members not replaced yet must keep reading the config of the version their etcd runs:
    # the reloader's SIGHUP or a sidecar restart must not make them declare the new one.
    local a b c
    cm() { "$HT" "$chart" "$@" | python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(("-config-3.5.17", "-config-3.5.18"))]
assert len(cms) == 1, [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"]
assert cms[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "the ConfigMap is not kept"
sts = next(d for d in docs if d["kind"] == "StatefulSet")
vol = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "joingate-config")
assert vol["configMap"]["name"] == cms[0]["metadata"]["name"], vol
print(cms[0]["metadata"]["name"])'; }
    a=$(cm) && b=$(cm --set etcd.image.tag=v3.5.18) && c=$(cm --set config.admission.policy=exact) || return 1
    echo "$a / $b / $c"
    [[ $a == release-name-joingate-config-3.5.17 && $b == release-name-joingate-config-3.5.18 && $c == "$a" ]]
}
t "each member version has its own ConfigMap (kept for pods still at the old version)" test_config_per_version

test_notes() {
    # helm-template renders NOTES.txt (its errors fail every render above) but does not
    # print it; here its commands are checked.
    grep -q 'joingate status' "$chart/templates/NOTES.txt" && grep -q 'rollout status' "$chart/templates/NOTES.txt"
}
t "NOTES.txt tells how to watch an upgrade (joingate status, rollout status)" test_notes

# ------------------------------------------------------------------ alerts and dashboard

# The PrometheusRule and the dashboard as the monitoring-on value set rendered them.
mon=$work/monitoring-on
if [[ ! -d $mon ]]; then
    skip "PrometheusRule and dashboard ConfigMap checks" "JG_CHART_ONLY leaves out the monitoring-on value set"
elif [[ ! -s $mon/rules.yml ]]; then
    t "the monitoring-on value set renders a PrometheusRule" false
else
    t "PrometheusRule: every expression names only metrics and labels of the live scrape; runbook entries exist" \
        python3 "$here/promql_check.py" "$work/scrape.txt" --rules "$mon/rules.yml" --runbook "$repo/docs/runbook.md"
    test_alert_set() {
        local want got
        want="JoingateCertificateExpiring JoingateConfigReloadFailing JoingateConnectionsRejected JoingateJoinRejected JoingateJoinWouldBeRejected JoingateMemberWaitingToJoin JoingateMixedVersionsTooLong JoingateNoLeaderKnown JoingateOverrideActive JoingateTLSHandshakeErrors JoingateUpstreamErrors"
        got=$(python3 -c 'import yaml,sys; print(" ".join(sorted(r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"])))' "$mon/rules.yml")
        [[ $got == "$want" ]] || { echo "alerts: $got"; echo "want:   $want"; return 1; }
    }
    t "PrometheusRule: waiting, rejected, no leader, certificate, reload failing (and the rest) are there" test_alert_set
    if [[ -n $have_promtool ]]; then
        t "promtool check rules" promtool check rules "$mon/rules.yml"
        test_alert_units() {
            mkdir -p "$work/alerts"
            python3 - "$mon/rules.yml" "$work/alerts/rules.yml" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for g in d["groups"]:
    for r in g["rules"]:
        r.pop("annotations", None)   # the unit tests are about expr, for and labels
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
EOF
            cp "$here/alerts_test.yml" "$work/alerts/" && promtool test rules "$work/alerts/alerts_test.yml"
        }
        t "promtool test rules: each alert fires on the series a real joingate exports (alerts_test.yml)" test_alert_units
    else
        skip "promtool check rules / test rules" "promtool not installed (Debian package prometheus)"
    fi
    test_dashboard_in_configmap() {
        [[ -s $mon/dashboard.json ]] || { echo "the monitoring-on render has no dashboard"; return 1; }
        python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(a!=b)' \
            "$mon/dashboard.json" "$chart/dashboards/joingate.json"
    }
    t "dashboard ConfigMap carries dashboards/joingate.json unchanged" test_dashboard_in_configmap
fi
t "dashboard JSON parses; every query and variable names only metrics and labels of the live scrape" \
    python3 "$here/promql_check.py" "$work/scrape.txt" --dashboard "$chart/dashboards/joingate.json"

# ------------------------------------------------------------------ the reloader, for real

# The reloader script of the rendered StatefulSet, run beside a real joingate in a PID
# namespace of their own (as shareProcessNamespace gives a pod): a changed config file or
# certificate must make joingate reload; a broken one must be refused and counted.
test_reloader() {
    local d=$work/reload script port pid
    mkdir -p "$d/config" "$d/tls"
    "$HT" "$chart" >"$d/render.yaml" || return 1
    python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "StatefulSet":
        c = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "reloader"][0]
        assert c["command"] == ["/bin/bash", "-c"], c["command"]
        print(c["args"][0])' "$d/render.yaml" >"$d/reload.sh" || return 1
    certs_member "$d/tls" "$work/ca" m1 DNS:localhost IP:127.0.0.1 || return 1
    read -r port < <(free_ports 1)
    sed -e "s#^cert = .*#cert = \"$d/tls/tls.crt\"#" -e "s#^key = .*#key = \"$d/tls/tls.key\"#" \
        -e "s#^ca = .*#ca = \"$d/tls/ca.crt\"#" -e "s#^listen = \"127.0.0.1:$admin_port\"#listen = \"127.0.0.1:$port\"#" \
        -e "s#^listen = \"127.0.0.1:$in_port\"#listen = \"127.0.0.1:0\"#" \
        "$work/live/joingate.toml" >"$d/config/m1.toml"
    unshare --pid --fork --kill-child --mount-proc bash -c '
        "$1" run --config "$2/config/m1.toml" >"$2/joingate.log" 2>&1 &
        JOINGATE_WATCH="$2/config $2/tls" JOINGATE_RELOAD_INTERVAL=1 bash "$2/reload.sh" >"$2/reloader.log" 2>&1 &
        wait' _ "$JOINGATE_BIN" "$d" &
    pid=$!
    ns_pids+=("$pid")
    reloads() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v r="result=\"$1\"" 'index($0, "joingate_config_reloads_total{") == 1 && index($0, r) { print $2 }'; }
    at_least() { local v; v=$(reloads "$1"); [[ -n $v ]] && ((${v%.*} >= $2)); }
    wait_for 15 at_least success 0 || { echo "joingate in the PID namespace did not start"; cat "$d/joingate.log"; return 1; }
    wait_for 10 grep -q '"watching"' "$d/reloader.log" || { echo "the reloader did not start:"; cat "$d/reloader.log"; return 1; }
    # 1. a renewed certificate (same names, new key), as cert-manager writes it
    certs_member "$d/tls.new" "$work/ca" m1 DNS:localhost IP:127.0.0.1 && cp "$d/tls.new/tls.crt" "$d/tls.new/tls.key" "$d/tls/"
    wait_for 15 at_least success 1 || { echo "no reload after the certificate changed"; cat "$d/reloader.log" "$d/joingate.log"; return 1; }
    # 2. a config change
    sed -i 's/^view_interval = .*/view_interval = "2s"/' "$d/config/m1.toml"
    wait_for 15 at_least success 2 || { echo "no reload after the config changed"; cat "$d/reloader.log"; return 1; }
    # 3. a broken config: refused, counted, joingate keeps serving
    echo 'bogus_key = 1' >>"$d/config/m1.toml"
    wait_for 15 at_least failure 1 || { echo "a broken config was not counted as a failed reload"; cat "$d/reloader.log" "$d/joingate.log"; return 1; }
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "joingate stopped serving after a failed reload"; return 1; }
    grep -q 'sent SIGHUP to joingate' "$d/reloader.log" || return 1
    echo "reloader log:"; cat "$d/reloader.log"
}
if unshare --pid --fork --mount-proc true 2>/dev/null; then
    t "reloader: SIGHUP on a renewed certificate and a changed config; a broken config is refused" test_reloader
else
    skip "reloader with a real joingate" "cannot create a PID namespace here (unshare --pid needs root); it would signal other joingates"
fi

# ------------------------------------------------------------------ the named templates in another chart

test_consumer() {
    local d=$work/consumer
    rm -rf "$d" && cp -r "$here/consumer" "$d" && mkdir -p "$d/charts" && cp -r "$chart" "$d/charts/joingate" || return 1
    "$HT" etcd "$d" -n db >"$d/render.yaml" || return 1
    "$KV" --strict --kube-version 1.29 "$d/render.yaml" || return 1
    python3 - "$d/render.yaml" "$d" <<'EOF' || return 1
import os, sys, yaml
docs = [x for x in yaml.safe_load_all(open(sys.argv[1])) if x]
kinds = sorted(f"{x['kind']}/{x['metadata']['name']}" for x in docs)
assert kinds == ["ConfigMap/etcd-joingate-3.5.17", "Service/etcd-peers", "StatefulSet/etcd"], f"objects {kinds}: joingate.enabled=false must add none"
sts = next(x for x in docs if x["kind"] == "StatefulSet")["spec"]["template"]["spec"]
inits = sts["initContainers"]
assert [c["name"] for c in inits] == ["joingate", "joingate-wait"], [c["name"] for c in inits]
assert inits[0]["restartPolicy"] == "Always" and "restartPolicy" not in inits[1]
assert inits[1]["args"][:3] == ["wait", "--admin", "http://127.0.0.1:9380"], inits[1]["args"]
etcd = sts["containers"][0]
env = {e["name"]: e.get("value") for e in etcd["env"]}
assert env["HTTP_PROXY"] == "http://127.0.0.1:2390", env
assert "--listen-peer-urls=http://127.0.0.1:2381" in etcd["args"]
assert sts["containers"][1]["name"] == "reloader" and sts["shareProcessNamespace"] is True
cm = next(x for x in docs if x["kind"] == "ConfigMap")
os.makedirs(os.path.join(sys.argv[2], "config"), exist_ok=True)
for k, v in cm["data"].items():
    open(os.path.join(sys.argv[2], "config", k), "w").write(v.replace("/etc/joingate/tls", os.path.join(sys.argv[2], "tls")))
open(os.path.join(sys.argv[2], "certs.txt"), "w").write(os.path.join(sys.argv[2], "tls") + " etcd DNS:*.etcd-peers.db.svc\n")
print("consumer chart:", kinds)
EOF
    certs_for "$d" && check_configs "$d"
}
t "joingate.sidecar.* templates in another chart (tests/chart/consumer): render, validate, check-config" test_consumer

# ------------------------------------------------------------------ Dockerfile

test_dockerfile() {
    python3 - "$repo" "$JOINGATE_BIN" <<'EOF'
import os, re, subprocess, sys
repo, binary = sys.argv[1], sys.argv[2]
errors = []
df = open(os.path.join(repo, "Dockerfile")).read()
text = re.sub(r"\\\n", " ", df)
args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)", text))
froms = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), f) for f in re.findall(r"(?m)^FROM (\S+)", text)]
if len(froms) < 2: errors.append(f"not a multi-stage build: FROM {froms}")
for f in froms:
    if not re.fullmatch(r"debian:bookworm(-slim)?", f.split(" ")[0]): errors.append(f"FROM {f}: want debian:bookworm")
stages = re.split(r"(?m)^FROM ", text)[1:]
build, runtime = stages[0], stages[-1]
def apt(stage):
    pk = []
    for m in re.finditer(r"apt-get install ([^&]*)", stage):
        pk += [w for w in m.group(1).split() if not w.startswith("-")]
    return pk
deps = open(os.path.join(repo, "scripts/deps")).read()
deps_pk = set(re.search(r"packages=\((.*?)\n\)", deps, re.S).group(1).split()) - {"#"}
for p in apt(build):
    if p not in deps_pk: errors.append(f"build stage installs {p}, which scripts/deps does not")
for p in ["build-essential", "cmake", "ninja-build", "pkg-config", "libboost1.81-dev", "libssl-dev",
          "libtomlplusplus-dev", "prometheus-cpp-dev", "libbenchmark-dev"]:
    if p not in apt(build): errors.append(f"build stage lacks {p}")
for cmd in ["cmake --preset release", "cmake --build --preset release --target joingate"]:
    if cmd not in build: errors.append(f"build stage does not run `{cmd}`")
    if cmd not in open(os.path.join(repo, "scripts/bench")).read() + open(os.path.join(repo, "scripts/test")).read():
        errors.append(f"`{cmd}` is not a build step of scripts/bench or scripts/test")
if "COPY --from=build /src/build/release/joingate /usr/local/bin/joingate" not in runtime:
    errors.append("the runtime stage must copy build/release/joingate to /usr/local/bin/joingate (the chart runs that path)")
if not re.search(r'(?m)^RUN \["/usr/local/bin/joingate", "version"\]', runtime): errors.append("no `joingate version` smoke test in the runtime stage")
if 'ENTRYPOINT ["/usr/local/bin/joingate"]' not in runtime: errors.append("ENTRYPOINT must be /usr/local/bin/joingate")
m = re.search(r"(?m)^USER (\d+)(?::(\d+))?", runtime)
if not m or int(m.group(1)) == 0: errors.append("the runtime stage must switch to a numeric non-root USER")
else:
    vals = open(os.path.join(repo, "helm/joingate/values.yaml")).read()
    uid = re.search(r"(?m)^podSecurityContext:\n(?:  .*\n)*?  runAsUser: (\d+)", vals)
    if not uid or uid.group(1) != m.group(1): errors.append(f"USER {m.group(1)} differs from the chart's podSecurityContext.runAsUser")
if re.search(r"build-essential|-dev\b|cmake", runtime): errors.append("the runtime stage installs build tools")
# Every shared library of the binary comes from a package the runtime stage installs or
# from the base image (libc, libstdc++, libgcc).
base = {"libc6", "libstdc++6", "libgcc-s1"}
rt = set(apt(runtime))
ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
for line in ldd.splitlines():
    mm = re.search(r"=> (\S+)", line)
    if not mm: continue
    path = os.path.realpath(mm.group(1))
    own = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if own.returncode:
        own = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/")], capture_output=True, text=True)
    pkg = own.stdout.split(":")[0].strip()
    if pkg not in rt | base: errors.append(f"{mm.group(1)} (package {pkg or '?'}) is not installed by the runtime stage")
    else: print(f"{os.path.basename(mm.group(1))}: {pkg}")
for p in rt:
    if subprocess.run(["apt-cache", "show", p], capture_output=True).returncode:
        errors.append(f"runtime package {p} is unknown to apt")
ign = [l.strip() for l in open(os.path.join(repo, ".dockerignore")) if l.strip() and not l.startswith("#")]
for keep in ["CMakeLists.txt", "CMakePresets.json", "config", "admission", "proxy", "metrics", "tests/bench"]:
    if any(keep == i or keep.startswith(i.rstrip("/") + "/") for i in ign):
        errors.append(f".dockerignore excludes {keep}, which the release build needs")
# Files the configure step reads or installs from the source tree must be in the context.
cml = open(os.path.join(repo, "CMakeLists.txt")).read()
for ref in sorted(set(re.findall(r"\$\{CMAKE_SOURCE_DIR\}/([\w./-]+)", cml))):
    if any(ref == i or ref.startswith(i.rstrip("/") + "/") for i in ign):
        errors.append(f".dockerignore excludes {ref}, which CMakeLists.txt uses")
# The image the chart runs by default is the one the Dockerfile documents: joingate:<version>.
version = re.search(r"project\(joingate VERSION ([0-9.]+)", cml).group(1)
chart_yaml = open(os.path.join(repo, "helm/joingate/Chart.yaml")).read()
app = re.search(r'(?m)^appVersion: "?([^"\s]+)"?', chart_yaml).group(1)
if app != version: errors.append(f"Chart.yaml appVersion {app} is not the project version {version} (the default image tag)")
if f"docker build -t joingate:{version} ." not in df: errors.append(f"the Dockerfile does not document `docker build -t joingate:{version} .`")
if not re.search(r"(?m)^  repository: joingate$", open(os.path.join(repo, "helm/joingate/values.yaml")).read()):
    errors.append("values.yaml image.repository is not joingate (the name the Dockerfile builds)")
for e in errors: print("  -", e)
sys.exit(1 if errors else 0)
EOF
}
t "Dockerfile: bookworm multi-stage, scripts/deps packages, release preset, runtime libraries, non-root" test_dockerfile

# ------------------------------------------------------------------ docs

test_docs() {
    local f s r rc=0
    for f in docs/kubernetes.md docs/runbook.md; do
        [[ -s $repo/$f ]] || { echo "missing $f"; rc=1; }
    done
    ((rc == 0)) || return 1
    # the troubleshooting part names every reason code of DESIGN §6
    for r in same_version newer_than_leader older_than_leader version_mismatch skew_exceeded \
        protocol_incompatible leader_unknown version_unknown override; do
        grep -q "\`$r\`" "$repo/docs/runbook.md" || { echo "docs/runbook.md does not explain reason $r"; rc=1; }
    done
    # the operator guide and the upgrade walkthrough: install, TLS, policy and mode, the
    # commands of a rolling upgrade, the named templates
    for s in 'helm install' 'certManager' 'existingSecret' 'admission.policy' 'admission.mode' \
        'helm upgrade' 'joingate status' 'rollout status' 'etcd.image.tag' 'joingate-wait' \
        'updatePartition' 'joingate.sidecar.containers' 'joingate.sidecar.config' 'docker build'; do
        grep -q -- "$s" "$repo/docs/kubernetes.md" || { echo "docs/kubernetes.md never mentions $s"; rc=1; }
    done
    # every values key the docs set with --set exists in values.yaml
    python3 - "$repo/docs/kubernetes.md" "$repo/docs/runbook.md" "$chart/values.yaml" <<'EOF' || rc=1
import re, sys, yaml
vals = yaml.safe_load(open(sys.argv[3]))
bad = 0
for doc in sys.argv[1:3]:
    for key in sorted(set(re.findall(r"--set(?:-string)? '?([A-Za-z][\w.]*)(?:\[\d+\][\w.]*)?=", open(doc).read()))):
        cur = vals
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                print(f"{doc}: --set {key}: no such key in values.yaml"); bad = 1; break
            cur = cur[part]
sys.exit(bad)
EOF
    # every alert has a runbook entry (the anchor the PrometheusRule links)
    for r in $(grep -o 'alert: Joingate[A-Za-z]*' "$chart/templates/prometheusrule.yaml" | cut -d' ' -f2); do
        grep -q "^## $r\$" "$repo/docs/runbook.md" || { echo "docs/runbook.md has no entry for $r"; rc=1; }
    done
    return "$rc"
}
t "docs: Kubernetes guide and upgrade walkthrough, runbook with every alert and reason code" test_docs

finish
