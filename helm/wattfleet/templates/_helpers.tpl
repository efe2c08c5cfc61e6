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

{{/* True (non-empty) when the exporter serves HTTPS. */}}
{{- define "wattfleet.exporter.tls" -}}
{{- if .Values.exporter.webConfig.tls.enabled }}true{{ end }}
{{- end }}

{{/* True when a web config file is passed to the exporter (TLS, basic auth or an existing secret). */}}
{{- define "wattfleet.exporter.webConfigEnabled" -}}
{{- $w := .Values.exporter.webConfig }}
{{- if or $w.existingSecret $w.tls.enabled $w.basicAuthUsers }}true{{ end }}
{{- end }}

{{/* Name of the Secret holding web-config.yml. */}}
{{- define "wattfleet.exporter.webConfigSecret" -}}
{{- if .Values.exporter.webConfig.existingSecret }}
{{- .Values.exporter.webConfig.existingSecret }}
{{- else }}
{{- include "wattfleet.componentName" (dict "root" . "suffix" "exporter-web") }}
{{- end }}
{{- end }}

{{/*
Probes cannot authenticate (a password in the pod spec would be readable by
anyone who can read pods) and kubelet presents no client certificate, so with
basic auth or a required client certificate they fall back to a TCP check.
*/}}
{{- define "wattfleet.exporter.httpProbes" -}}
{{- $w := .Values.exporter.webConfig }}
{{- /* probe paths answer without basic auth; kubelet cannot present a client certificate (mTLS: TCP checks) */}}
{{- if not (or $w.existingSecret (and $w.tls.enabled (has $w.tls.clientAuthType (list "RequireAnyClientCert" "RequireAndVerifyClientCert")))) }}true{{ end }}
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
