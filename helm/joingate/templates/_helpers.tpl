{{- /* Names, labels and the values every template derives from. */ -}}

{{- define "joingate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /*
The full name is also the StatefulSet's, so members are <fullname>-<i>. It is kept short
enough that <fullname>-<i>.<fullname>-headless stays within DNS label limits.
*/ -}}
{{- define "joingate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "joingate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "joingate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "joingate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "joingate.labels" -}}
helm.sh/chart: {{ include "joingate.chart" . }}
{{ include "joingate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: joingate
{{- end -}}

{{- define "joingate.headless" -}}
{{- printf "%s-headless" (include "joingate.fullname" .) -}}
{{- end -}}

{{- define "joingate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "joingate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "joingate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "joingate.etcdImage" -}}
{{- printf "%s:%s" .Values.etcd.image.repository (toString .Values.etcd.image.tag) -}}
{{- end -}}

{{- /* The replica count as an int (values from YAML files are float64). */ -}}
{{- define "joingate.replicas" -}}
{{- $n := int .Values.replicas -}}
{{- if lt $n 1 -}}{{ fail "replicas must be 1 or more" }}{{- end -}}
{{- $n -}}
{{- end -}}

{{- /* Member (= pod) names, as a JSON list. */ -}}
{{- define "joingate.members" -}}
{{- $full := include "joingate.fullname" . -}}
{{- $out := list -}}
{{- range $i := until (int (include "joingate.replicas" .)) -}}
{{- $out = append $out (printf "%s-%d" $full $i) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- /* host:port of every member's joingate inbound (cluster.peers), as a JSON list. */ -}}
{{- define "joingate.peers" -}}
{{- $root := . -}}
{{- $out := list -}}
{{- range $m := include "joingate.members" . | fromJsonArray -}}
{{- $host := include "joingate.sidecar.peerHost" (dict "member" $m "service" (include "joingate.headless" $root) "namespace" $root.Release.Namespace) -}}
{{- $out = append $out (printf "%s:%v" $host $root.Values.ports.peer) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- /* --initial-cluster: name=http://<member peer host>:<peer port>,... */ -}}
{{- define "joingate.initialCluster" -}}
{{- $root := . -}}
{{- $out := list -}}
{{- range $m := include "joingate.members" . | fromJsonArray -}}
{{- $host := include "joingate.sidecar.peerHost" (dict "member" $m "service" (include "joingate.headless" $root) "namespace" $root.Release.Namespace) -}}
{{- $out = append $out (printf "%s=http://%s:%v" $m $host $root.Values.ports.peer) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{- /*
member.version: config.member.version, else the etcd image tag without its "v". joingate
wait runs before etcd, so the sidecar cannot ask etcd ("auto" would never be admitted).
*/ -}}
{{- define "joingate.memberVersion" -}}
{{- $v := toString (.Values.config.member.version | default "") -}}
{{- if eq $v "auto" -}}
{{- fail "config.member.version: \"auto\" cannot work with this chart: joingate wait holds etcd back until the member is admitted, so the sidecar could never probe etcd's version. Set the version etcd.image runs, or leave it empty to take it from etcd.image.tag." -}}
{{- end -}}
{{- if $v -}}
{{- $v -}}
{{- else -}}
{{- $tag := toString .Values.etcd.image.tag -}}
{{- if not (regexMatch "^v?[0-9]+\\.[0-9]+\\.[0-9]+$" $tag) -}}
{{- fail (printf "config.member.version: cannot take the member version from etcd.image.tag %q (not vMAJOR.MINOR.PATCH); set config.member.version to the etcd version the image runs" $tag) -}}
{{- end -}}
{{- trimPrefix "v" $tag -}}
{{- end -}}
{{- end -}}

{{- /*
The ConfigMap of the member version the pod template runs: <fullname>-config-<version>.
Members still at the old version during a rolling upgrade (or below updatePartition) keep
reading the old version's ConfigMap, so neither a SIGHUP from the reloader nor a restart of
their sidecar makes them declare a version their etcd does not run yet. The ConfigMap of an
older version is kept by Helm (resource-policy keep) for pods that are recreated at the old
revision; delete it once no member runs that version.
*/ -}}
{{- define "joingate.configMapName" -}}
{{- $v := regexReplaceAll "[^a-z0-9.-]" (include "joingate.memberVersion" . | lower) "-" -}}
{{- printf "%s-config-%s" (include "joingate.fullname" .) $v | trunc 63 | trimSuffix "-" | trimSuffix "." -}}
{{- end -}}

{{- /* Ports as a dict for the joingate.sidecar.* templates. */ -}}
{{- define "joingate.portsJson" -}}
{{- $p := .Values.ports -}}
{{- toJson (dict "peer" (int $p.peer) "etcdPeer" (int $p.etcdPeer) "proxy" (int $p.proxy) "admin" (int $p.admin) "client" (int $p.client)) -}}
{{- end -}}

{{- define "joingate.tlsSecret" -}}
{{- default (printf "%s-tls" (include "joingate.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- /* Paths of one member's certificate files: (dict "root" $ "member" NAME) -> JSON. */ -}}
{{- define "joingate.tlsPaths" -}}
{{- $dir := "/etc/joingate/tls" -}}
{{- if .root.Values.tls.certManager.enabled -}}
{{- $dir = printf "/etc/joingate/tls/%s" .member -}}
{{- end -}}
{{- toJson (dict "cert" (printf "%s/tls.crt" $dir) "key" (printf "%s/tls.key" $dir) "ca" (printf "%s/ca.crt" $dir)) -}}
{{- end -}}

{{- /* DNS names of one member's certificate: (dict "root" $ "member" NAME) -> JSON. */ -}}
{{- define "joingate.memberDnsNames" -}}
{{- $root := .root -}}
{{- $svc := include "joingate.headless" $root -}}
{{- $ns := $root.Release.Namespace -}}
{{- $host := include "joingate.sidecar.peerHost" (dict "member" .member "service" $svc "namespace" $ns) -}}
{{- toJson (list $host (printf "%s.%s" $host $root.Values.clusterDomain) (printf "%s.%s.%s" .member $svc $ns) (printf "%s.%s" .member $svc) .member) -}}
{{- end -}}

{{- /* The issuer of peer certificates. */ -}}
{{- define "joingate.issuerRef" -}}
{{- $cm := .Values.tls.certManager -}}
{{- if $cm.issuerRef.name -}}
name: {{ $cm.issuerRef.name }}
kind: {{ $cm.issuerRef.kind | default "Issuer" }}
group: {{ $cm.issuerRef.group | default "cert-manager.io" }}
{{- else -}}
name: {{ include "joingate.fullname" . }}-ca
kind: Issuer
group: cert-manager.io
{{- end -}}
{{- end -}}

{{- /* Every member's joingate config, keyed <member>.toml (the ConfigMap's data). */ -}}
{{- define "joingate.configData" -}}
{{- $root := . -}}
{{- $peers := include "joingate.peers" . | fromJsonArray -}}
{{- $ports := include "joingate.portsJson" . | fromJson -}}
{{- $version := include "joingate.memberVersion" . -}}
{{- $out := "" -}}
{{- range $m := include "joingate.members" . | fromJsonArray -}}
{{- $toml := include "joingate.sidecar.config" (dict "member" $m "version" $version "peers" $peers "ports" $ports "tls" (include "joingate.tlsPaths" (dict "root" $root "member" $m) | fromJson) "config" $root.Values.config "extra" $root.Values.extraConfig) -}}
{{- $out = printf "%s%s.toml: |\n%s\n" $out $m (indent 2 $toml) -}}
{{- end -}}
{{- /* no whitespace-only lines: kubectl would show the files as quoted strings */ -}}
{{- regexReplaceAll "(?m)^[ \t]+$" $out "" | trimSuffix "\n" -}}
{{- end -}}

{{- /* PromQL label matchers for this release's sidecars. */ -}}
{{- define "joingate.alertSelector" -}}
{{- with .Values.metrics.prometheusRule.selector -}}
{{- . -}}
{{- else -}}
namespace="{{ .Release.Namespace }}",pod=~"{{ include "joingate.fullname" . }}-[0-9]+"
{{- end -}}
{{- end -}}
