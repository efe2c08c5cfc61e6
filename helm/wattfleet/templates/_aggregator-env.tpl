{{/*
Environment of one aggregator workload, with only the secrets its code reads:
call with (dict "root" $ "workload" "serve|aggregate|report"). `aggregate`
loads grid intensity (the Electricity Maps and WattTime tokens) and queries
Prometheus (its credentials); `serve` and `report` read the DuckDB file and
the config, so a leak from them exposes no credential. Every workload gets a
writable HOME and caches in /tmp, and `aggregator.extraEnv`.
*/}}
{{- define "wattfleet.aggregator.workloadEnv" -}}
{{- $root := .root }}
{{- $a := $root.Values.aggregator }}
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- if eq .workload "aggregate" }}
{{- if or $a.tokens.create $a.tokens.existingSecret }}
{{- $secret := include "wattfleet.aggregator.secretName" $root }}
{{- range $env, $key := dict "ELECTRICITYMAPS_TOKEN" "electricityMapsToken" "WATTTIME_USERNAME" "wattTimeUsername" "WATTTIME_PASSWORD" "wattTimePassword" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}
{{- with $a.prometheusAuth.existingSecret }}
{{- $secret := . }}
{{- $auth := $a.prometheusAuth }}
{{- range $env, $key := dict "WATTFLEET_PROMETHEUS_TOKEN" $auth.tokenKey "WATTFLEET_PROMETHEUS_USER" $auth.usernameKey "WATTFLEET_PROMETHEUS_PASSWORD" $auth.passwordKey }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- with $a.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
