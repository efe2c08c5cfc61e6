{{/*
Names, labels and small shared fragments. Every object carries the standard
app.kubernetes.io/* labels; selectors use only the stable subset (name,
instance, component) because selectors are immutable after install.
*/}}

{{/* Chart name, overridable. */}}
{{- define "wattfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "wattfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's object name: fullname-suffix, kept within 63 characters. */}}
{{- define "wattfleet.componentName" -}}
{{- $full := include "wattfleet.fullname" .root | trunc (int (sub 62 (len .suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $full .suffix }}
{{- end }}

{{- define "wattfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "wattfleet.labels" -}}
helm.sh/chart: {{ include "wattfleet.chart" . }}
app.kubernetes.io/name: {{ include "wattfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wattfleet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels shared by all components. */}}
{{- define "wattfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wattfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "exporter"). */}}
{{- define "wattfleet.componentLabels" -}}
{{ include "wattfleet.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "wattfleet.componentSelectorLabels" -}}
{{ include "wattfleet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The service account both components run under. */}}
{{- define "wattfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wattfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: digest wins over tag; the tag defaults to the chart's appVersion. */}}
{{- define "wattfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The exporter's image: the exporter-only build (Dockerfile.exporter: no DuckDB, no report stack). */}}
{{- define "wattfleet.exporterImage" -}}
{{- $repo := default .Values.image.repository .Values.image.exporterRepository }}
{{- if .Values.image.exporterDigest }}
{{- printf "%s@%s" $repo .Values.image.exporterDigest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* ---------------- exporter ---------------- */}}

{{/* ---------------- web config (exporter and serve: one format, one set of values each) ---------------- */}}

{{/* True when a web config file is passed (TLS, basic auth or an existing secret); call with a webConfig block. */}}
{{- define "wattfleet.webConfigEnabled" -}}
{{- if or .existingSecret .tls.enabled .basicAuthUsers }}true{{ end }}
{{- end }}

{{/*
The exporter-toolkit web config generated from a webConfig block, as YAML:
call with (dict "w" BLOCK "where" "exporter.webConfig"); `where` names the
values in errors. The files it names are where the pod mounts them
(wattfleet.webConfigVolumeMounts).
*/}}
{{- define "wattfleet.webConfigFile" -}}
{{- $w := .w }}
{{- $config := dict }}
{{- if $w.tls.enabled }}
{{- $_ := required (printf "%s.tls.certSecret is required when %s.tls.enabled is true (a kubernetes.io/tls Secret)" .where .where) $w.tls.certSecret }}
{{- $tls := dict "cert_file" "/etc/wattfleet/tls/tls.crt" "key_file" "/etc/wattfleet/tls/tls.key" "client_auth_type" $w.tls.clientAuthType "min_version" $w.tls.minVersion }}
{{- if $w.tls.clientCASecret }}
{{- $_ := set $tls "client_ca_file" "/etc/wattfleet/client-ca/ca.crt" }}
{{- else if ne $w.tls.clientAuthType "NoClientCert" }}
{{- fail (printf "%s.tls.clientCASecret is required for clientAuthType %s" .where $w.tls.clientAuthType) }}
{{- end }}
{{- $_ := set $config "tls_server_config" $tls }}
{{- end }}
{{- with $w.basicAuthUsers }}
{{- $_ := set $config "basic_auth_users" . }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* The container arguments that pass the web config, if any; call with a webConfig block. */}}
{{- define "wattfleet.webConfigArgs" -}}
{{- if include "wattfleet.webConfigEnabled" . }}
- --web.config.file
- /etc/wattfleet/web/web-config.yml
{{- end }}
{{- end }}

{{/* Mounts of the web config and the TLS files it names; call with a webConfig block. */}}
{{- define "wattfleet.webConfigVolumeMounts" -}}
{{- if include "wattfleet.webConfigEnabled" . }}
- name: web-config
  mountPath: /etc/wattfleet/web
  readOnly: true
{{- end }}
{{- if and .tls.enabled .tls.certSecret }}
- name: tls
  mountPath: /etc/wattfleet/tls
  readOnly: true
{{- end }}
{{- if and .tls.enabled .tls.clientCASecret }}
- name: client-ca
  mountPath: /etc/wattfleet/client-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Volumes of those mounts: call with (dict "w" BLOCK "secret" NAME-OF-THE-GENERATED-SECRET). */}}
{{- define "wattfleet.webConfigVolumes" -}}
{{- $w := .w }}
{{- if include "wattfleet.webConfigEnabled" $w }}
- name: web-config
  secret:
    secretName: {{ default .secret $w.existingSecret }}
    {{- if $w.existingSecret }}
    items:
      - key: {{ $w.existingSecretKey }}
        path: web-config.yml
    {{- end }}
{{- end }}
{{- if and $w.tls.enabled $w.tls.certSecret }}
- name: tls
  secret:
    secretName: {{ $w.tls.certSecret }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if and $w.tls.enabled $w.tls.clientCASecret }}
- name: client-ca
  secret:
    secretName: {{ $w.tls.clientCASecret }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{/*
Probes cannot authenticate (a password in the pod spec would be readable by
anyone who can read pods) and kubelet presents no client certificate. The
probe paths answer without basic auth; with a required client certificate,
or an existing web config the chart cannot read, probes fall back to a TCP
check. True (non-empty) when HTTP(S) probes work; call with a webConfig block.
*/}}
{{- define "wattfleet.webConfigHttpProbes" -}}
{{- if not (or .existingSecret (and .tls.enabled (has .tls.clientAuthType (list "RequireAnyClientCert" "RequireAndVerifyClientCert")))) }}true{{ end }}
{{- end }}

{{/* Liveness and readiness probes of a server with a webConfig: (dict "w" BLOCK "liveness" {...} "readiness" {...}). */}}
{{- define "wattfleet.webConfigProbes" -}}
{{- $scheme := ternary "HTTPS" "HTTP" (eq (toString .w.tls.enabled) "true") }}
{{- $http := include "wattfleet.webConfigHttpProbes" .w }}
{{- range $probe, $path := dict "livenessProbe" "/-/healthy" "readinessProbe" "/-/ready" }}
{{ $probe }}:
  {{- if $http }}
  httpGet:
    path: {{ $path }}
    port: metrics
    scheme: {{ $scheme }}
  {{- else }}
  tcpSocket:
    port: metrics
  {{- end }}
  {{- toYaml (get $ (ternary "liveness" "readiness" (eq $probe "livenessProbe"))) | nindent 2 }}
{{- end }}
{{- end }}

{{/*
How a monitor's endpoint scrapes a server with a web config: scheme, and
`prometheus.operator.tlsConfig` / `basicAuth` (one Prometheus client, for the
exporter's and serve's monitors alike). Call with (dict "op" OPERATOR-VALUES
"tls" BOOL "basicAuth" BOOL): basicAuth false leaves the credentials out.
*/}}
{{- define "wattfleet.monitorClient" -}}
{{- $op := .op }}
scheme: {{ ternary "https" "http" (eq (toString .tls) "true") }}
{{- if eq (toString .tls) "true" }}
tlsConfig:
  {{- with $op.tlsConfig.serverName }}
  serverName: {{ . }}
  {{- end }}
  {{- if $op.tlsConfig.insecureSkipVerify }}
  insecureSkipVerify: true
  {{- end }}
  {{- with $op.tlsConfig.caSecret }}
  ca:
    secret:
      name: {{ . }}
      key: ca.crt
  {{- end }}
  {{- with $op.tlsConfig.clientCertSecret }}
  cert:
    secret:
      name: {{ . }}
      key: tls.crt
  keySecret:
    name: {{ . }}
    key: tls.key
  {{- end }}
{{- end }}
{{- if .basicAuth }}
{{- with $op.basicAuth.secretName }}
basicAuth:
  username:
    name: {{ . }}
    key: {{ $op.basicAuth.usernameKey }}
  password:
    name: {{ . }}
    key: {{ $op.basicAuth.passwordKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the exporter serves HTTPS. */}}
{{- define "wattfleet.exporter.tls" -}}
{{- if .Values.exporter.webConfig.tls.enabled }}true{{ end }}
{{- end }}

{{/* True when a web config file is passed to the exporter (TLS, basic auth or an existing secret). */}}
{{- define "wattfleet.exporter.webConfigEnabled" -}}
{{- include "wattfleet.webConfigEnabled" .Values.exporter.webConfig }}
{{- end }}

{{/* Name of the Secret holding web-config.yml. */}}
{{- define "wattfleet.exporter.webConfigSecret" -}}
{{- if .Values.exporter.webConfig.existingSecret }}
{{- .Values.exporter.webConfig.existingSecret }}
{{- else }}
{{- include "wattfleet.componentName" (dict "root" . "suffix" "exporter-web") }}
{{- end }}
{{- end }}

{{/* HTTP(S) probes for the exporter (wattfleet.webConfigHttpProbes). */}}
{{- define "wattfleet.exporter.httpProbes" -}}
{{- include "wattfleet.webConfigHttpProbes" .Values.exporter.webConfig }}
{{- end }}

{{/* ---------------- aggregator ---------------- */}}

{{- define "wattfleet.aggregator.configMapName" -}}
{{- default (include "wattfleet.componentName" (dict "root" . "suffix" "aggregator-config")) .Values.aggregator.existingConfigMap }}
{{- end }}

{{- define "wattfleet.aggregator.gridConfigMapName" -}}
{{- default (include "wattfleet.componentName" (dict "root" . "suffix" "grid-data")) .Values.aggregator.gridData.existingConfigMap }}
{{- end }}

{{- define "wattfleet.aggregator.secretName" -}}
{{- default (include "wattfleet.componentName" (dict "root" . "suffix" "aggregator-tokens")) .Values.aggregator.tokens.existingSecret }}
{{- end }}

{{- define "wattfleet.aggregator.claimName" -}}
{{- default (include "wattfleet.componentName" (dict "root" . "suffix" "aggregator-data")) .Values.aggregator.persistence.existingClaim }}
{{- end }}

{{- define "wattfleet.aggregator.configPath" -}}
{{- printf "%s/wattfleet.yaml" .Values.aggregator.configMountPath }}
{{- end }}

{{- define "wattfleet.aggregator.dbPath" -}}
{{- printf "%s/%s" .Values.aggregator.persistence.mountPath .Values.aggregator.dbFile }}
{{- end }}

{{/* Volumes every aggregator pod mounts. */}}
{{- define "wattfleet.aggregator.volumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "wattfleet.aggregator.claimName" . }}
- name: config
  configMap:
    name: {{ include "wattfleet.aggregator.configMapName" . }}
{{- if or .Values.aggregator.gridData.files .Values.aggregator.gridData.existingConfigMap }}
- name: grid-data
  configMap:
    name: {{ include "wattfleet.aggregator.gridConfigMapName" . }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.aggregator.tmpSizeLimit }}
{{- end }}

{{- define "wattfleet.aggregator.volumeMounts" -}}
- name: data
  mountPath: {{ .Values.aggregator.persistence.mountPath }}
- name: config
  mountPath: {{ .Values.aggregator.configMountPath }}
  readOnly: true
{{- if or .Values.aggregator.gridData.files .Values.aggregator.gridData.existingConfigMap }}
- name: grid-data
  mountPath: {{ .Values.aggregator.gridData.mountPath }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
With a ReadWriteOnce volume every pod that mounts the DuckDB file must run on
the node where the volume is attached: the jobs follow the serve pod.
*/}}
{{- define "wattfleet.aggregator.jobAffinity" -}}
{{- if and .Values.aggregator.enabled .Values.aggregator.persistence.colocateJobs (eq .Values.aggregator.persistence.accessMode "ReadWriteOnce") }}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "wattfleet.componentSelectorLabels" (dict "root" . "component" "aggregator") | nindent 12 }}
{{- end }}
{{- end }}

{{/* ---------------- aggregate: store access and DuckDB ---------------- */}}

{{/*
Bytes in a Kubernetes quantity (64Mi, 1Gi, 1G, 1.5e9, 1073741824), as a float.
*/}}
{{- define "wattfleet.quantityBytes" -}}
{{- $q := toString . }}
{{- $units := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1000000000000000.0 "E" 1000000000000000000.0 }}
{{- $suffix := regexFind "(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)$" $q }}
{{- $number := float64 (trimPrefix "+" (trimSuffix $suffix $q)) }}
{{- if $suffix }}{{ mulf $number (get $units $suffix) }}{{ else }}{{ $number }}{{ end }}
{{- end }}

{{/*
Half the aggregate container's memory limit in MiB, or empty: DuckDB's advice
where the process must not be OOM-killed (some allocations bypass its limit,
and Python needs the rest). Empty when duckdb.memoryLimit is set, when there
is no memory limit to take half of, or when the inline facility config sets
store.memory_limit (a flag would silently win over it).
*/}}
{{- define "wattfleet.aggregator.derivedMemoryMiB" -}}
{{- $a := .Values.aggregator }}
{{- $limit := dig "limits" "memory" "" ($a.aggregate.resources | default dict) }}
{{- $fromConfig := dig "store" "memory_limit" "" ($a.config | default dict) }}
{{- if and (not $a.aggregate.duckdb.memoryLimit) $limit (not $fromConfig) }}
{{- max 1 (int64 (floor (divf (float64 (include "wattfleet.quantityBytes" $limit)) 2097152.0))) }}
{{- end }}
{{- end }}

{{/* `--duckdb-memory-limit` for the aggregate job: the value, else the derived half, else empty (no flag). */}}
{{- define "wattfleet.aggregator.duckdbMemoryLimit" -}}
{{- with .Values.aggregator.aggregate.duckdb.memoryLimit }}
{{- . }}
{{- else }}
{{- with include "wattfleet.aggregator.derivedMemoryMiB" . }}{{ . }}MiB{{ end }}
{{- end }}
{{- end }}

{{/*
`--duckdb-threads`: the value, else with a derived memory limit one thread per
256 MiB of it (DuckDB needs at least 125 MB per thread and otherwise starts
one per core of the node, not of the container), at most the container's CPU
limit when it has one; else empty (no flag: the config's store.threads, or
DuckDB's default).
*/}}
{{- define "wattfleet.aggregator.duckdbThreads" -}}
{{- $a := .Values.aggregator }}
{{- $d := $a.aggregate.duckdb }}
{{- if not (kindIs "invalid" $d.threads) }}
{{- printf "%d" (int64 $d.threads) }}
{{- else if not (dig "store" "threads" "" ($a.config | default dict)) }}
{{- with include "wattfleet.aggregator.derivedMemoryMiB" . }}
{{- $threads := max 1 (div (int64 .) 256) }}
{{- with dig "limits" "cpu" "" ($a.aggregate.resources | default dict) }}
{{- $threads = min $threads (max 1 (int64 (ceil (float64 (include "wattfleet.quantityBytes" .))))) }}
{{- end }}
{{- $threads }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wattfleet.aggregator.spillPath" -}}/var/tmp/duckdb{{- end }}

{{/* The arguments of `wattfleet aggregate` after the chart's fixed ones, from aggregator.store and aggregator.aggregate (JSON list). */}}
{{- define "wattfleet.aggregator.storeArgs" -}}
{{- $a := .Values.aggregator }}
{{- $s := $a.store }}
{{- $g := $a.aggregate }}
{{- $args := list }}
{{- if $s.auth.bearerToken.existingSecret }}
{{- $args = concat $args (list "--prometheus.bearer-token-file" "/etc/wattfleet/store-token/token") }}
{{- end }}
{{- if $s.auth.basic.username }}
{{- $args = concat $args (list "--prometheus.basic-auth-user" $s.auth.basic.username) }}
{{- end }}
{{- if $s.auth.basic.passwordSecret }}
{{- $args = concat $args (list "--prometheus.basic-auth-password-file" "/etc/wattfleet/store-password/password") }}
{{- end }}
{{- if $s.tls.caSecret }}
{{- $args = concat $args (list "--prometheus.ca-file" "/etc/wattfleet/store-ca/ca.crt") }}
{{- end }}
{{- if $s.tls.certSecret }}
{{- $args = concat $args (list "--prometheus.cert-file" "/etc/wattfleet/store-tls/tls.crt" "--prometheus.key-file" "/etc/wattfleet/store-tls/tls.key") }}
{{- end }}
{{- if $s.tls.insecureSkipVerify }}
{{- $args = append $args "--prometheus.insecure-skip-verify" }}
{{- end }}
{{- with $s.tenant }}
{{- $args = concat $args (list "--prometheus.tenant" .) }}
{{- end }}
{{- range $name, $value := $s.headers }}
{{- $args = concat $args (list "--prometheus.header" (printf "%s: %s" $name $value)) }}
{{- end }}
{{- if not (kindIs "invalid" $s.queryTimeout) }}
{{- $args = concat $args (list "--query-timeout" (toString $s.queryTimeout)) }}
{{- end }}
{{- if not (kindIs "invalid" $s.maxResponseBytes) }}
{{- $args = concat $args (list "--max-response-bytes" (printf "%d" (int64 $s.maxResponseBytes))) }}
{{- end }}
{{- if not (kindIs "invalid" $g.pageHours) }}
{{- $args = concat $args (list "--page-hours" (printf "%d" (int64 $g.pageHours))) }}
{{- end }}
{{- if not (kindIs "invalid" $g.shardNodes) }}
{{- $args = concat $args (list "--shard-nodes" (printf "%d" (int64 $g.shardNodes))) }}
{{- end }}
{{- if $g.preAggregated }}
{{- $args = append $args "--pre-aggregated" }}
{{- end }}
{{- with include "wattfleet.aggregator.duckdbMemoryLimit" . }}
{{- $args = concat $args (list "--duckdb-memory-limit" .) }}
{{- end }}
{{- with include "wattfleet.aggregator.duckdbThreads" . }}
{{- $args = concat $args (list "--duckdb-threads" .) }}
{{- end }}
{{- if eq $g.duckdb.tempDirectory.volume "emptyDir" }}
{{- $args = concat $args (list "--duckdb-temp-directory" (include "wattfleet.aggregator.spillPath" .)) }}
{{- end }}
{{- toJson $args }}
{{- end }}

{{/*
Volumes only the aggregate job mounts: the store's credentials (each Secret's
one key, read-only, mode 0440 with the pod's fsGroup) and the DuckDB spill
emptyDir. serve and report never see them.
*/}}
{{- define "wattfleet.aggregator.storeVolumes" -}}
{{- $s := .Values.aggregator.store }}
{{- with $s.auth.bearerToken.existingSecret }}
- name: store-token
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $s.auth.bearerToken.key }}
        path: token
{{- end }}
{{- with $s.auth.basic.passwordSecret }}
- name: store-password
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $s.auth.basic.passwordKey }}
        path: password
{{- end }}
{{- with $s.tls.caSecret }}
- name: store-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $s.tls.caKey }}
        path: ca.crt
{{- end }}
{{- with $s.tls.certSecret }}
- name: store-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- $t := .Values.aggregator.aggregate.duckdb.tempDirectory }}
{{- if eq $t.volume "emptyDir" }}
- name: duckdb-spill
  emptyDir:
    sizeLimit: {{ $t.sizeLimit }}
{{- end }}
{{- end }}

{{- define "wattfleet.aggregator.storeVolumeMounts" -}}
{{- $s := .Values.aggregator.store }}
{{- range $name, $on := dict "store-token" $s.auth.bearerToken.existingSecret "store-password" $s.auth.basic.passwordSecret "store-ca" $s.tls.caSecret "store-tls" $s.tls.certSecret }}
{{- if $on }}
- name: {{ $name }}
  mountPath: /etc/wattfleet/{{ $name }}
  readOnly: true
{{- end }}
{{- end }}
{{- if eq .Values.aggregator.aggregate.duckdb.tempDirectory.volume "emptyDir" }}
- name: duckdb-spill
  mountPath: {{ include "wattfleet.aggregator.spillPath" . }}
{{- end }}
{{- end }}
