{{- /*
joingate.sidecar.* — named templates that add joingate to any chart's peers.

This file is self-contained (it uses nothing else from this chart), so another chart can
either copy it into its own templates/ or depend on this chart with `joingate.enabled:
false` (which renders none of this chart's objects but keeps these templates). This chart
builds its own StatefulSet from them. docs/kubernetes.md has a complete example.

  joingate.sidecar.config      one member's joingate TOML (a ConfigMap value)
  joingate.sidecar.containers  the initContainers entries: the joingate native sidecar
                               (restartPolicy: Always) and `joingate wait` after it
  joingate.sidecar.peerEnv     env entries for the peer: HTTP_PROXY to joingate's outbound
  joingate.sidecar.reloader    a container that sends joingate SIGHUP when the mounted
                               certificates or config change (needs shareProcessNamespace)
  joingate.sidecar.peerHost    <member>.<service>.<namespace>.svc
  joingate.sidecar.toml        any map rendered as TOML (used by joingate.sidecar.config)

Ports (a dict, every key required): peer (joingate inbound, the advertised peer port),
etcdPeer (the peer's own plain listener on loopback), proxy (joingate outbound on
loopback), admin (joingate admin), client (the peer's client port on loopback, for the
etcd3 leader probe; 0 or absent = no client probe).

Example, in a chart whose pods run a Go peer that honours HTTP_PROXY:

  # ConfigMap: one file per member
  data:
    {{- range $i := until 3 }}
    {{- $m := printf "mypeer-%d" $i }}
    {{ $m }}.toml: |
      {{- include "joingate.sidecar.config" (dict "member" $m "version" "3.5.17"
            "peers" $peers "ports" $ports "tls" $tls "config" .Values.joingateConfig) | nindent 6 }}
    {{- end }}

  # Pod spec
  shareProcessNamespace: true
  initContainers:
    {{- include "joingate.sidecar.containers" (dict "image" "joingate:0.1.0"
          "configFile" "/etc/joingate/config/$(POD_NAME).toml" "ports" $ports
          "volumeMounts" $mounts) | nindent 4 }}
  containers:
    - name: mypeer
      env: {{- include "joingate.sidecar.peerEnv" (dict "ports" $ports) | nindent 8 }}
    {{- include "joingate.sidecar.reloader" (dict "image" "joingate:0.1.0"
          "watch" (list "/etc/joingate/config" "/etc/joingate/tls") "volumeMounts" $mounts) | nindent 4 }}
*/ -}}

{{- /* ---------------------------------------------------------------- TOML */ -}}

{{- /*
joingate.sidecar.toml (dict "table" MAP ["path" "a.b"] ["orders" (dict PATH (list KEY...))])
Scalars and arrays of scalars first (as JSON, which TOML reads for strings, numbers,
booleans and arrays), then sub-tables as [path.key], then arrays of maps as [[path.key]].
Keys listed in orders[path] come first, the rest alphabetically; nulls and empty maps are
left out.
*/ -}}
{{- define "joingate.sidecar.toml" -}}
{{- $t := .table -}}
{{- $path := .path | default "" -}}
{{- $orders := .orders | default dict -}}
{{- $order := get $orders $path | default list -}}
{{- $keys := list -}}
{{- range $order }}{{ if hasKey $t . }}{{ $keys = append $keys . }}{{ end }}{{ end -}}
{{- range (keys $t | sortAlpha) }}{{ if not (has . $order) }}{{ $keys = append $keys . }}{{ end }}{{ end -}}
{{- range $k := $keys }}
{{- $v := index $t $k }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "joingate.sidecar.isTableArray" $v)) }}
{{ $k }} = {{ toJson $v }}
{{- end }}
{{- end }}
{{- range $k := $keys }}
{{- $v := index $t $k }}
{{- $p := ternary $k (printf "%s.%s" $path $k) (eq $path "") }}
{{- if and (kindIs "map" $v) (gt (len $v) 0) }}

[{{ $p }}]
{{- include "joingate.sidecar.toml" (dict "table" $v "path" $p "orders" $orders) }}
{{- else if include "joingate.sidecar.isTableArray" $v }}
{{- range $e := $v }}

[[{{ $p }}]]
{{- include "joingate.sidecar.toml" (dict "table" $e "path" $p "orders" $orders) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "joingate.sidecar.isTableArray" -}}
{{- if kindIs "slice" . -}}
{{- if gt (len .) 0 -}}
{{- if kindIs "map" (first .) }}true{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* ---------------------------------------------------------------- config */ -}}

{{- /*
joingate.sidecar.config (dict
    "member"  "etcd-0"                       member.name
    "version" "3.5.17"                       member.version
    "peers"   (list "etcd-0.etcd-headless.ns.svc:2380" ...)   cluster.peers
    "ports"   (dict "peer" 2380 "etcdPeer" 2381 "proxy" 2390 "admin" 9380 "client" 2379)
    "tls"     (dict "cert" "/etc/joingate/tls/tls.crt" "key" ... "ca" ...)
    "config"  MAP      optional: every other key, as joingate names it (DESIGN §9)
    "extra"   TEXT     optional: appended verbatim (e.g. a [profile] table))
The computed keys win over the same keys in "config": inbound listens on 0.0.0.0:<peer>,
outbound on 127.0.0.1:<proxy>, admin on 0.0.0.0:<admin> (kubelet probes and Prometheus
reach it; it is read-only), the peer is http://127.0.0.1:<etcdPeer>.
*/ -}}
{{- define "joingate.sidecar.config" -}}
{{- $p := required "joingate.sidecar.config: ports is required" .ports -}}
{{- $user := deepCopy (.config | default dict) -}}
{{- $member := dict
      "name" (required "joingate.sidecar.config: member is required" .member)
      "version" (toString (required "joingate.sidecar.config: version is required" .version))
      "peer" (printf "http://127.0.0.1:%v" (required "joingate.sidecar.config: ports.etcdPeer is required" $p.etcdPeer)) -}}
{{- if $p.client }}{{ $_ := set $member "client" (printf "http://127.0.0.1:%v" $p.client) }}{{ end -}}
{{- $tls := required "joingate.sidecar.config: tls is required" .tls -}}
{{- $computed := dict
      "member" $member
      "inbound" (dict "listen" (printf "0.0.0.0:%v" (required "joingate.sidecar.config: ports.peer is required" $p.peer)))
      "outbound" (dict "listen" (printf "127.0.0.1:%v" (required "joingate.sidecar.config: ports.proxy is required" $p.proxy)))
      "cluster" (dict "peers" (required "joingate.sidecar.config: peers is required" .peers))
      "tls" (dict "cert" (required "joingate.sidecar.config: tls.cert is required" $tls.cert)
                  "key" (required "joingate.sidecar.config: tls.key is required" $tls.key)
                  "ca" (required "joingate.sidecar.config: tls.ca is required" $tls.ca))
      "admin" (dict "listen" (printf "0.0.0.0:%v" (required "joingate.sidecar.config: ports.admin is required" $p.admin))) -}}
{{- $cfg := mergeOverwrite $user $computed -}}
{{- $orders := dict
      "" (list "member" "inbound" "outbound" "cluster" "tls" "admission" "profile" "admin" "log" "limits")
      "member" (list "name" "version" "profile" "protocol" "peer" "client" "probe_interval")
      "outbound" (list "listen" "route")
      "cluster" (list "peers" "bootstrap" "view_interval")
      "tls" (list "cert" "key" "ca" "allowed_peers")
      "admission" (list "mode" "policy" "fail" "max_minor_skew" "allow_older" "on_reject" "retry" "override")
      "admission.retry" (list "initial" "max" "multiplier" "jitter" "deadline" "hold")
      "admission.override" (list "member" "version" "until" "reason")
      "limits" (list "max_header_bytes" "max_uri_bytes" "handshake_timeout" "header_timeout" "connect_timeout" "idle_timeout" "drain_timeout" "max_connections") -}}
# joingate config of member {{ .member }}; check it with: joingate check-config --config FILE
{{- include "joingate.sidecar.toml" (dict "table" $cfg "path" "" "orders" $orders) }}
{{- with .extra }}

{{ . }}
{{- end }}
{{ end -}}

{{- /* ---------------------------------------------------------------- containers */ -}}

{{- /*
joingate.sidecar.containers (dict
    "image"           "repo/joingate:0.1.0"
    "pullPolicy"      "IfNotPresent"                optional
    "configFile"      "/etc/joingate/config/$(POD_NAME).toml"   ($(POD_NAME) is set in env)
    "ports"           (dict "peer" 2380 "admin" 9380 ...)
    "volumeMounts"    LIST   the config file's and the certificates' mounts
    "resources"       MAP    optional, the sidecar
    "waitResources"   MAP    optional, the wait init container
    "securityContext" MAP    optional, both containers
    "probes"          (dict "startup" MAP "liveness" MAP "readiness" MAP)  optional timing
    "waitTimeout"     "10m"  optional: joingate wait --timeout; empty = until admitted
    "env"             LIST   optional, extra env of the sidecar)
Two initContainers entries, in this order: joingate as a native sidecar (it starts before
everything after it and stops after the peer; the kubelet starts the next init container
once its startup probe on /healthz passes), then joingate-wait, which blocks until
/readyz is 200, i.e. until this member is admitted. The peer's containers start after it.
*/ -}}
{{- define "joingate.sidecar.containers" -}}
{{- $p := .ports -}}
{{- $probes := .probes | default dict -}}
- name: joingate
  image: {{ required "joingate.sidecar.containers: image is required" .image | quote }}
  imagePullPolicy: {{ .pullPolicy | default "IfNotPresent" }}
  restartPolicy: Always
  command: ["/usr/local/bin/joingate"]
  args: ["run", "--config", {{ required "joingate.sidecar.containers: configFile is required" .configFile | quote }}]
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- with .env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: peer
      containerPort: {{ $p.peer }}
      protocol: TCP
    - name: admin
      containerPort: {{ $p.admin }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml (merge (dict) (get $probes "startup" | default dict) (dict "periodSeconds" 1 "failureThreshold" 30)) | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    {{- toYaml (merge (dict) (get $probes "liveness" | default dict) (dict "periodSeconds" 10 "failureThreshold" 3)) | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    {{- toYaml (merge (dict) (get $probes "readiness" | default dict) (dict "periodSeconds" 5 "failureThreshold" 2)) | nindent 4 }}
  {{- with .volumeMounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- name: joingate-wait
  image: {{ .image | quote }}
  imagePullPolicy: {{ .pullPolicy | default "IfNotPresent" }}
  command: ["/usr/local/bin/joingate"]
  args: ["wait", "--admin", {{ printf "http://127.0.0.1:%v" $p.admin | quote }}{{ with .waitTimeout }}, "--timeout", {{ . | quote }}{{ end }}]
  {{- with .waitResources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- /*
joingate.sidecar.peerEnv (dict "ports" (dict "proxy" 2390 ...))
HTTP_PROXY points the peer's outbound peer traffic at joingate; NO_PROXY covers loopback
only (Go never proxies loopback anyway), never the peers' names.
*/ -}}
{{- define "joingate.sidecar.peerEnv" -}}
- name: HTTP_PROXY
  value: {{ printf "http://127.0.0.1:%v" .ports.proxy | quote }}
- name: http_proxy
  value: {{ printf "http://127.0.0.1:%v" .ports.proxy | quote }}
- name: NO_PROXY
  value: "127.0.0.1,localhost"
- name: no_proxy
  value: "127.0.0.1,localhost"
{{- end -}}

{{- /*
joingate.sidecar.peerHost (dict "member" "etcd-0" "service" "etcd-headless" "namespace" "db")
*/ -}}
{{- define "joingate.sidecar.peerHost" -}}
{{ .member }}.{{ .service }}.{{ .namespace }}.svc
{{- end -}}

{{- /*
joingate.sidecar.reloader (dict
    "image" "repo/joingate:0.1.0"  "pullPolicy" "IfNotPresent"
    "watch" (list "/etc/joingate/config" "/etc/joingate/tls")   directories to watch
    "intervalSeconds" 30   "volumeMounts" LIST   "resources" MAP   "securityContext" MAP)
A regular container running bash from the joingate image. Every interval it checksums the
files in the watched directories (one level of subdirectories too, as projected volumes
lay them out) and, when that changes, sends SIGHUP to the process running `joingate run`:
joingate then reloads its config and certificates (an invalid new config keeps the running
one and counts joingate_config_reloads_total{result="failure"}). The pod needs
shareProcessNamespace: true and this container must run as joingate's user.
*/ -}}
{{- define "joingate.sidecar.reloader" -}}
- name: reloader
  image: {{ required "joingate.sidecar.reloader: image is required" .image | quote }}
  imagePullPolicy: {{ .pullPolicy | default "IfNotPresent" }}
  command: ["/bin/bash", "-c"]
  args:
    - |
      {{- include "joingate.sidecar.reloadScript" . | nindent 6 }}
  env:
    - name: JOINGATE_WATCH
      value: {{ join " " (required "joingate.sidecar.reloader: watch is required" .watch) | quote }}
    - name: JOINGATE_RELOAD_INTERVAL
      value: {{ .intervalSeconds | default 30 | toString | quote }}
  {{- with .volumeMounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "joingate.sidecar.reloadScript" -}}
# joingate reloader: SIGHUP to `joingate run` when a watched file changes.
set -u
interval=${JOINGATE_RELOAD_INTERVAL:-30}
log() { printf '{"ts":"%s","level":"%s","msg":"%s"%s}\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2" "${3:-}"; }
state() {
  local d f
  for d in $JOINGATE_WATCH; do
    for f in "$d"/* "$d"/*/*; do
      [[ -f $f ]] && printf '%s %s\n' "$f" "$(cksum <"$f")"
    done
  done
}
joingate_pid() {
  local d argv
  for d in /proc/[0-9]*; do
    mapfile -d '' -t argv 2>/dev/null <"$d/cmdline" || continue
    if [[ ${#argv[@]} -ge 2 && ${argv[0]##*/} == joingate && ${argv[1]} == run ]]; then
      echo "${d#/proc/}"
      return 0
    fi
  done
  return 1
}
trap 'exit 0' TERM INT
last=$(state)
log info "watching" ",\"dirs\":\"$JOINGATE_WATCH\",\"interval_s\":$interval"
while :; do
  sleep "$interval" & wait $!
  now=$(state)
  [[ $now == "$last" ]] && continue
  if pid=$(joingate_pid); then
    if kill -HUP "$pid"; then
      log info "files changed: sent SIGHUP to joingate" ",\"pid\":$pid"
      last=$now
    else
      log warn "could not signal joingate" ",\"pid\":$pid"
    fi
  else
    log warn "files changed but no joingate process is visible (is shareProcessNamespace on?)"
  fi
done
{{- end -}}
