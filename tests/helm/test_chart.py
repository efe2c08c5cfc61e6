"""The Helm chart in helm/wattfleet, rendered and linted by Helm's own engine.

helm-python-sdk binds Helm's Go SDK (no helm binary, no cluster), so these
tests run what `helm lint` and `helm template` run. Every rendered object is
validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict), and the containers' arguments are parsed with wattfleet's real
argument parser so that chart and code cannot drift apart.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from paths import REPO

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed (pip install helm-python-sdk)")
kubernetes_validate = pytest.importorskip("kubernetes_validate",
                                          reason="kubernetes-validate is not installed")

from wattfleet.cli import build_parser  # noqa: E402
from wattfleet.core.webconfig import CLIENT_AUTH_TYPES, TLS_VERSIONS, load_web_config  # noqa: E402
from wattfleet.exporter import cli as exporter_cli  # noqa: E402

CHART = REPO / "helm" / "wattfleet"
KUBE_VERSION = kubernetes_validate.latest_version()
RELEASE, NAMESPACE = "wf", "energy"
BCRYPT = "$2b$10$EyOtU8Nc8keA6SKo6upWae2SKJmBcqDoDm8sRIjUP88biJLjFfCUi"
# serve's scrape user in the tests that run it: a known password, hashed cheaply (cost 4).
SERVE_PASSWORD = "scrape-pw"
SERVE_BCRYPT = bcrypt.hashpw(SERVE_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
OPERATOR_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}

# A valid facility configuration (aggregator/facility.example.yaml's format) and two hours of
# EIA-930 CISO 2022 (shared/data/grid-eia930-2022/CISO.csv) it refers to.
FACILITY = {"version": 1, "sites": [{"name": "sfo1", "zone": "CISO", "pue": 1.2, "wue_liters_per_kwh": 1.0,
                                     "nodes": ["sfo1-*"], "grid": {"source": "eia930", "path": "../grid/CISO.csv"}}]}
GRID_LINES = ["timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI",
              "2022-01-01 00:00:00+00:00,3130.0,1367.0,2304.0,44.0,6764.0,19.0,2265.0,189.0,222.29592090536002",
              "2022-01-01 01:00:00+00:00,3013.0,0.0,2723.0,42.0,8603.0,19.0,2265.0,1159.0,260.9175830341113"]
# The aggregator is off by default (it needs a facility config); the matrix turns it on elsewhere.
AGGREGATOR = {"aggregator": {"enabled": True, "config": FACILITY,
                             "gridData": {"files": {"CISO.csv": "\n".join(GRID_LINES) + "\n"}}}}

# Value sets every structural test runs against: the issue's matrix plus one
# that turns every optional feature on.
MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "aggregator": AGGREGATOR,
    "operator-podmonitor": {"prometheus": {"operator": {"enabled": True, "labels": {"release": "kps"}}}},
    "operator-servicemonitor-mtls-basic-auth": {
        "exporter": {"webConfig": {
            "basicAuthUsers": {"prometheus": BCRYPT},
            "tls": {"enabled": True, "certSecret": "wf-exporter-tls", "clientCASecret": "wf-client-ca",
                    "clientAuthType": "RequireAndVerifyClientCert", "minVersion": "TLS13"}}},
        "prometheus": {"operator": {"enabled": True, "monitorKind": "ServiceMonitor",
                                    "tlsConfig": {"caSecret": "wf-exporter-ca", "serverName": "wattfleet",
                                                  "clientCertSecret": "wf-prometheus-client"},
                                    "basicAuth": {"secretName": "wf-scrape-auth"}}},
    },
    "tls": {"exporter": {"webConfig": {"tls": {"enabled": True, "certSecret": "wf-exporter-tls"}}}},
    "no-gpus": {"exporter": {"gpu": {"enabled": False}, "stateFile": {"enabled": False}}},
    "gpu-nodes-only": {"exporter": {"cpuNodes": {"enabled": False}, "gpu": {"runtimeClassName": ""}}},
    # Non-default host and container sysfs paths, and another port.
    "custom-sysfs": {"exporter": {"sysfs": {"hostPath": "/host/sys", "mountPath": "/hostfs/sys"}, "port": 19880,
                                  "stateFile": {"hostPath": "/data/wattfleet-state"},
                                  "workloads": {"owners": {"enabled": False}}}},
    "everything-on": {
        "imagePullSecrets": [{"name": "regcred"}],
        "logLevel": "DEBUG",
        "logFormat": "json",
        "image": {"digest": "sha256:" + "ab" * 32},
        "commonLabels": {"team": "energy"},
        "exporter": {
            "cluster": "prod", "site": "sfo1", "interval": 0.5, "disableCollectors": ["inference"],
            "inferenceEngines": [{"engine": "vllm", "url": "http://127.0.0.1:8000/metrics", "gpus": [0, 1]}],
            "extraArgs": ["--estimate-cpu=always"],
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "nodeSelector": {"pool": "compute"},
            # The GPU Operator's set-up: GPU nodes labelled by feature discovery, the `nvidia` runtime class.
            "gpu": {"runtimeClassName": "nvidia", "nodeSelector": {"nvidia.com/gpu.present": "true"}},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
            "priorityClassName": "system-node-critical",
            "hostNetwork": True,
            "webConfig": {"existingSecret": "my-web-config", "existingSecretKey": "config.yml"},
        },
        "aggregator": {
            "enabled": True,
            "config": FACILITY,
            "gridData": {"files": {"CISO.csv": "\n".join(GRID_LINES) + "\n"}},
            "prometheusAuth": {"existingSecret": "thanos-reader"},
            "tokens": {"create": True, "electricityMapsToken": "em-token", "wattTimeUsername": "u",
                       "wattTimePassword": "p"},
            "persistence": {"storageClass": "-", "accessMode": "ReadWriteMany"},
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "nodeSelector": {"pool": "services"},
            "affinity": {"podAntiAffinity": {}},
            "aggregate": {"extraArgs": ["--page-hours=6"], "schedule": "@hourly"},
            "report": {"month": "2026-10"},
        },
        "prometheus": {"operator": {"enabled": True}, "rules": {"labels": {"role": "alert-rules"}}},
        "dashboards": {"namespace": "grafana", "annotations": {"grafana_folder": "Energy"}},
        "networkPolicy": {
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "aggregatorFrom": [
                {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["grafana"]}]}},
                {"ipBlock": {"cidr": "10.0.0.0/8"}}],
        },
    },
    "basic-auth": {"exporter": {"webConfig": {"basicAuthUsers": {"prometheus": BCRYPT}}}},
    "everything-off": {"exporter": {"enabled": False}, "aggregator": {"enabled": False},
                       "dashboards": {"enabled": False}, "networkPolicy": {"enabled": False},
                       "prometheus": {"rules": {"enabled": False}}, "serviceAccount": {"create": False}},
}
for _case in ("operator-podmonitor", "operator-servicemonitor-mtls-basic-auth", "tls", "no-gpus", "custom-sysfs"):
    MATRIX[_case] = {**MATRIX[_case], **AGGREGATOR}
del _case


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge value overrides (later wins), as `-f a.yaml -f b.yaml` would."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


# serve's /metrics over TLS with basic auth, scraped by a ServiceMonitor with the operator's client settings.
MATRIX["serve-tls-basic-auth"] = merged(AGGREGATOR, {
    "aggregator": {"serve": {"webConfig": {"basicAuthUsers": {"prometheus": SERVE_BCRYPT},
                                           "tls": {"enabled": True, "certSecret": "wf-aggregator-tls",
                                                   "minVersion": "TLS13"}}}},
    "prometheus": {"operator": {"enabled": True, "monitorKind": "ServiceMonitor",
                                "tlsConfig": {"caSecret": "wf-ca", "serverName": "wattfleet"},
                                "basicAuth": {"secretName": "wf-scrape-auth"}}}})
# A long-term store behind a token, a private CA, a client certificate and a tenant, read in small
# requests with DuckDB spilling to a node-local volume: every store and ingest value set.
MATRIX["store-token-mtls"] = merged(AGGREGATOR, {"aggregator": {
    "prometheusUrl": "https://mimir.example.com/prometheus",
    "store": {"auth": {"bearerToken": {"existingSecret": "mimir-reader", "key": "jwt"}},
              "tls": {"caSecret": "mimir-ca", "caKey": "bundle.pem", "certSecret": "mimir-client"},
              "tenant": "fleet-a|fleet-b", "headers": {"X-Request-Source": "wattfleet"},
              "queryTimeout": 30.5, "maxResponseBytes": 67108864},
    "aggregate": {"pageHours": 6, "shardNodes": 0, "duckdb": {"memoryLimit": "700MB", "threads": 2,
                                                              "tempDirectory": {"volume": "emptyDir",
                                                                                "sizeLimit": "4Gi"}}}}})
# Basic auth to a self-signed test store, pre-aggregated reads with the other rules off.
MATRIX["store-basic-pre-aggregated"] = merged(AGGREGATOR, {
    "aggregator": {"store": {"auth": {"basic": {"username": "reader", "passwordSecret": "thanos-password"}},
                             "tls": {"insecureSkipVerify": True}},
                   "aggregate": {"preAggregated": True}},
    "prometheus": {"rules": {"enabled": False}}})


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


_RENDER_CACHE: dict[str, tuple[list[dict[str, Any]], str]] = {}


def render(chart: Any, values: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(every rendered object, NOTES.txt) for these values; cached per value set."""
    key = json.dumps(values, sort_keys=True)
    if key not in _RENDER_CACHE:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        notes = "".join(v for k, v in out.items() if k.endswith("NOTES.txt"))
        objects = [doc for k, v in sorted(out.items()) if not k.endswith("NOTES.txt")
                   for doc in yaml.safe_load_all(v) if doc]
        _RENDER_CACHE[key] = (objects, notes)
    return _RENDER_CACHE[key]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def values_with_defaults(chart: Any, values: dict[str, Any]) -> dict[str, Any]:
    return chart.merge_values(values)


# ---------------------------------------------------------------- lint and schema validation


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_lint_is_clean(case: str) -> None:
    report = helm.lint(CHART, MATRIX[case], strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings and errors fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_rendered_object_is_valid_kubernetes(chart: Any, case: str) -> None:
    objects, notes = render(chart, MATRIX[case])
    assert notes.strip(), "NOTES.txt rendered empty"
    seen = set()
    for obj in objects:
        ident = (obj["kind"], obj["metadata"]["name"])
        assert ident not in seen, f"{ident} rendered twice"
        seen.add(ident)
        assert len(obj["metadata"]["name"]) <= 63, ident
        labels = obj["metadata"]["labels"]
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                      "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert label in labels, f"{ident} lacks label {label}"
        if obj["kind"] in OPERATOR_KINDS:
            check_operator_object(obj)
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{case}: {ident} is not valid Kubernetes {KUBE_VERSION}: {path}: {exc.message}")


def check_operator_object(obj: dict[str, Any]) -> None:
    """Prometheus Operator CRDs have no schema in kubernetes-validate: check the fields we use."""
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    spec = obj["spec"]
    if obj["kind"] == "PrometheusRule":
        assert spec["groups"] and all(g["name"] and g["rules"] for g in spec["groups"])
        return
    endpoints = spec["podMetricsEndpoints" if obj["kind"] == "PodMonitor" else "endpoints"]
    allowed = {"port", "path", "interval", "scrapeTimeout", "scheme", "tlsConfig", "basicAuth", "relabelings",
               "metricRelabelings", "honorLabels"}
    for ep in endpoints:
        assert set(ep) <= allowed, set(ep) - allowed
        assert ep["port"] == "metrics" and ep["scheme"] in ("http", "https")
    endpoints_key = "podMetricsEndpoints" if obj["kind"] == "PodMonitor" else "endpoints"
    assert set(spec) == {"selector", "namespaceSelector", endpoints_key}


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_the_exporter_monitor_keeps_the_workload_labels(chart: Any, kind: str) -> None:
    """The operator's namespace/pod/container target labels (the exporter pod's own) are dropped before the
    scrape and honorLabels keeps the published ones: workload series keep the workload's (CONTRACTS.md)."""
    objects, _ = render(chart, {"prometheus": {"operator": {"enabled": True, "monitorKind": kind}}})
    (monitor,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith("-exporter")]
    (ep,) = monitor["spec"]["podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"]
    assert ep["honorLabels"] is True
    relabel = ep["relabelings"]
    drops = [r for r in relabel if r.get("action") == "labeldrop"]
    assert drops == [{"action": "labeldrop", "regex": "(namespace|pod|container)"}]
    kept = {r["targetLabel"]: r["sourceLabels"] for r in relabel if "targetLabel" in r}
    assert kept["exporter_namespace"] == ["__meta_kubernetes_namespace"]
    assert kept["exporter_pod"] == ["__meta_kubernetes_pod_name"]
    assert relabel.index(drops[0]) > max(relabel.index(r) for r in relabel if "targetLabel" in r)


def test_workload_mounts_are_read_only_and_follow_the_switches(chart: Any) -> None:
    (ds, *_) = exporter_daemonsets(chart, {})
    spec = pod_spec(ds)
    (container,) = spec["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for name, host in (("pod-resources", "/var/lib/kubelet/pod-resources"), ("cgroup", "/sys/fs/cgroup"),
                       ("pod-logs", "/var/log/pods")):
        assert mounts[name]["readOnly"] is True and volumes[name]["hostPath"]["path"] == host
    args = parse_container_args(container)
    assert args.kubelet_socket == "/var/lib/kubelet/pod-resources/kubelet.sock"
    assert args.workload_cgroups == ["kubernetes"] and args.cgroup_root == mounts["cgroup"]["mountPath"]
    assert args.pod_logs_dir == mounts["pod-logs"]["mountPath"]
    off = {"exporter": {"workloads": {"gpus": {"enabled": False}, "cgroups": {"enabled": False}}}}
    (ds, *_) = exporter_daemonsets(chart, off)
    (container,) = pod_spec(ds)["containers"]
    assert not {"pod-resources", "cgroup", "pod-logs"} & {m["name"] for m in container["volumeMounts"]}
    args = parse_container_args(container)
    assert args.kubelet_socket == "" and args.workload_cgroups == []


def test_default_values_pass_schema_and_every_schema_key_has_a_default(chart: Any) -> None:
    chart.validate_schema({})
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        if "$ref" in node:
            return  # a shared definition (resources, securityContext...): optional fields
        for key, sub in node.get("properties", {}).items():
            if path == "" and key == "global":
                continue
            assert isinstance(value, dict) and key in value, f"schema key {path}{key} has no default in values.yaml"
            walk(sub, value[key], f"{path}{key}.")

    walk(schema, defaults, "")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


# Objects whose content is a Kubernetes API object or a wattfleet file format,
# checked downstream (API server, wattfleet's loaders) instead of by the schema.
PASSTHROUGH = {
    "global",
    "definitions.affinity.nodeAffinity", "definitions.affinity.podAffinity", "definitions.affinity.podAntiAffinity",
    "exporter.inferenceEngines[]", "aggregator.config",
}


def test_schema_is_closed_at_every_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    open_objects = set()

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "object":
            extra = node.get("additionalProperties")
            if extra is None or extra is True:
                open_objects.add(path)
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")
        if "items" in node:
            walk(node["items"], f"{path}[]")
        for alt in node.get("anyOf", []):
            walk(alt, path)

    walk(schema, "")
    for name, definition in schema["definitions"].items():
        walk(definition, f"definitions.{name}")
    assert open_objects == PASSTHROUGH
    for path in PASSTHROUGH - {"global"}:
        assert "$comment" in lookup(schema, path), f"{path}: say why it is open"


def lookup(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node: dict[str, Any] = schema
    parts = path.split(".")
    if parts[0] == "definitions":
        node, parts = schema["definitions"][parts[1]], parts[2:]
    for part in parts:
        node = resolve(schema, node)
        if part.endswith("[]"):
            node = resolve(schema, node["properties"][part[:-2]])["items"]
        else:
            node = node["properties"][part]
    return node


BAD_VALUES = {
    "wrong type: port as string": {"exporter": {"port": "9880"}},
    "wrong type: interval as string": {"exporter": {"interval": "1s"}},
    "wrong type: enabled as string": {"aggregator": {"enabled": "yes"}},
    "unknown top-level key": {"exporters": {}},
    "unknown nested key": {"exporter": {"webConfig": {"tls": {"cert": "x"}}}},
    "unknown key in a toleration": {"exporter": {"tolerations": [{"key": "a", "operator": "Exists", "efect": "x"}]}},
    "unknown key in resources": {"aggregator": {"serve": {"resources": {"request": {"cpu": "1"}}}}},
    "label value not a string": {"exporter": {"gpu": {"nodeSelector": {"nvidia.com/gpu.present": True}}}},
    "unknown collector": {"exporter": {"disableCollectors": ["gpu"]}},
    "unknown estimate mode": {"exporter": {"estimateCpu": "sometimes"}},
    "relative sysfs mount path": {"exporter": {"sysfs": {"mountPath": "host/sys"}}},
    "sysfs mounted over /": {"exporter": {"sysfs": {"mountPath": "/"}}},
    "state directory is /": {"exporter": {"stateFile": {"hostPath": "/"}}},
    "relative state directory": {"exporter": {"stateFile": {"hostPath": "var/lib/wattfleet"}}},
    "plain-text password instead of bcrypt": {"exporter": {"webConfig": {"basicAuthUsers": {"p": "secret"}}}},
    "unknown client auth type": {"exporter": {"webConfig": {"tls": {"clientAuthType": "Require"}}}},
    "bad report month": {"aggregator": {"report": {"month": "2026-13"}}},
    "report dir escapes the volume": {"aggregator": {"report": {"outDir": "../etc"}}},
    "volume mode the jobs cannot share": {"aggregator": {"persistence": {"accessMode": "ReadWriteOncePod"}}},
    "bad quantity": {"aggregator": {"persistence": {"size": "ten gigs"}}},
    "bad scrape interval": {"prometheus": {"operator": {"interval": "15 seconds"}}},
    "unknown monitor kind": {"prometheus": {"operator": {"monitorKind": "Probe"}}},
    "bad image digest": {"image": {"digest": "latest"}},
    "empty network policy peer": {"networkPolicy": {"metricsFrom": [{}]}},
    "cron schedule with four fields": {"aggregator": {"aggregate": {"schedule": "7 * * * "}}},
    "time zone inside the schedule": {"aggregator": {"report": {"schedule": "CRON_TZ=UTC 30 2 1 * *"}}},
    "unknown key in prometheusAuth": {"aggregator": {"prometheusAuth": {"secret": "x"}}},
    "facility config not a mapping": {"aggregator": {"config": "sites: []"}},
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_invalid_values_fail_the_schema(chart: Any, name: str) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(BAD_VALUES[name])
    # `helm install`/`template` run the same check before rendering.
    with pytest.raises(helm.HelmValuesError):
        chart.render(BAD_VALUES[name], name=RELEASE, namespace=NAMESPACE)


def test_schema_enums_match_the_code() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    exporter = schema["properties"]["exporter"]["properties"]
    assert set(exporter["disableCollectors"]["items"]["enum"]) == set(exporter_cli.COLLECTORS)
    parser = argparse.ArgumentParser()
    exporter_cli.add_arguments(parser)
    choices = {a.dest: a.choices for a in parser._actions if a.choices is not None}
    assert set(exporter["estimateCpu"]["enum"]) == set(choices["estimate_cpu"])
    root_choices = {a.dest: a.choices for a in build_parser()._actions if a.choices is not None}
    assert set(schema["properties"]["logLevel"]["enum"]) == set(root_choices["log_level"])
    serve = schema["properties"]["aggregator"]["properties"]["serve"]["properties"]
    assert serve["webConfig"] == exporter["webConfig"]  # one format, the same checks for both servers
    tls = exporter["webConfig"]["properties"]["tls"]["properties"]
    assert set(tls["clientAuthType"]["enum"]) == set(CLIENT_AUTH_TYPES)
    assert set(tls["minVersion"]["enum"]) == set(TLS_VERSIONS)


def test_values_yaml_is_documented_line_by_line() -> None:
    """helm-docs style: every key has a `# --` comment, or sits under a documented key."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_indent: int | None = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        indent = len(line) - len(line.lstrip())
        if documented_indent is not None and indent > documented_indent:
            continue  # inside a documented key's value
        documented_indent = None
        key, _, rest = stripped.partition(":")
        j = i - 1
        comment: list[str] = []
        while j >= 0 and lines[j].strip().startswith("#"):
            comment.insert(0, lines[j].strip())
            j -= 1
        if any(c.startswith("# --") for c in comment):
            documented_indent = indent
            continue
        nxt = next((ln for ln in lines[i + 1:] if ln.strip() and not ln.strip().startswith("#")), "")
        is_parent = rest.strip() == "" and (len(nxt) - len(nxt.lstrip())) > indent and not nxt.strip().startswith("- ")
        if not is_parent:
            undocumented.append(f"values.yaml:{i + 1}: {key}")
    assert undocumented == []


# ---------------------------------------------------------------- exporter


def exporter_daemonsets(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    return of_kind(render(chart, values)[0], "DaemonSet")


def strict_parser() -> argparse.ArgumentParser:
    """wattfleet's parser with prefix matching off, so an abbreviated flag in the chart fails."""
    parser = build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        p.allow_abbrev = False
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return parser


def parse_container_args(container: dict[str, Any]) -> argparse.Namespace:
    assert container["command"] == ["wattfleet"]
    try:
        return strict_parser().parse_args(container["args"])
    except SystemExit as exc:  # argparse reports and exits on bad arguments
        pytest.fail(f"{container['name']}: `wattfleet {' '.join(container['args'])}` does not parse ({exc})")


EXPORTER_CASES = sorted(c for c in MATRIX if c != "everything-off")


@pytest.mark.parametrize("case", EXPORTER_CASES)
def test_daemonset_args_parse_with_the_exporter_parser(chart: Any, case: str) -> None:
    values = values_with_defaults(chart, MATRIX[case])
    exporter = values["exporter"]
    daemonsets = exporter_daemonsets(chart, MATRIX[case])
    assert daemonsets
    for ds in daemonsets:
        spec = pod_spec(ds)
        (container,) = spec["containers"]
        args = parse_container_args(container)
        assert args.command == "exporter" and args.func is exporter_cli.run
        assert args.log_level == values["logLevel"]
        assert args.node == "$(NODE_NAME)"
        assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container["env"]
        # --sysfs-root is where the host's sysfs is mounted, read-only.
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert args.sysfs_root == exporter["sysfs"]["mountPath"]
        sysfs_mount = mounts[args.sysfs_root]
        assert sysfs_mount.get("readOnly") is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes[sysfs_mount["name"]]["hostPath"]["path"] == exporter["sysfs"]["hostPath"]
        # The exporter writes only its state file, in the one host directory mounted read-write for it.
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        if exporter["stateFile"]["enabled"]:
            (state,) = writable
            assert state["mountPath"] == exporter["stateFile"]["hostPath"]
            assert volumes[state["name"]]["hostPath"] == {"path": exporter["stateFile"]["hostPath"],
                                                          "type": "DirectoryOrCreate"}
            assert args.state_file == f"{state['mountPath']}/{ds['metadata']['name']}.json"
        else:
            assert writable == [] and args.state_file is None, "the exporter writes nothing"
        # The port it listens on is the port the pod declares and the probes use.
        assert args.listen_address == f":{exporter['port']}"
        assert container["ports"] == [{"name": "metrics", "containerPort": exporter["port"], "protocol": "TCP"}]
        # Files named on the command line are inside mounted volumes.
        for path in (args.web_config_file, args.inference_config):
            if path:
                assert any(path.startswith(mp.rstrip("/") + "/") for mp in mounts), f"{path} is not mounted"
        assert args.interval == pytest.approx(exporter["interval"])
        assert args.cluster == exporter["cluster"] and args.site == exporter["site"]
        assert args.estimate_cpu == exporter["estimateCpu"] or "--estimate-cpu=always" in exporter["extraArgs"]
        assert args.rapl_max_watts == exporter["raplMaxWatts"]
        assert args.gpu_max_watts == exporter["gpuMaxWatts"]
        assert args.cpu_idle_watts_per_core == exporter["cpuModel"]["idleWattsPerCore"]
        assert args.cpu_max_watts_per_core == exporter["cpuModel"]["maxWattsPerCore"]
        assert args.memory_watts_per_gb == exporter["cpuModel"]["memoryWattsPerGb"]
        assert set(exporter["disableCollectors"]) <= set(args.disable_collector)
        assert container["resources"] == exporter["resources"]
        check_least_privilege(spec, container, token=exporter["workloads"]["owners"]["enabled"])
        assert args.pod_owners is exporter["workloads"]["owners"]["enabled"]
        check_gpu_variant(ds, spec, container, args, exporter)


# Flags the chart leaves to `extraArgs` on purpose, with the reason. Any other flag a command gains
# must be rendered from a value (or listed here), so that chart and code cannot drift apart.
NOT_RENDERED = {
    "exporter": {"--once": "prints one scrape and exits: not a daemon",
                 "--procfs-root": "the container's /proc/stat is the node's (not namespaced): the default is right",
                 "--kubernetes.node-name": "the default, env NODE_NAME, is set from the downward API (spec.nodeName)"},
    "aggregate": {"--embedded-targets": "the Prometheus-less mode is a long-running scraper, not an hourly job",
                  "--scrape-interval": "embedded mode only", "--once": "embedded mode only",
                  "--from": "backfills are one-off runs", "--to": "backfills are one-off runs"},
    "serve": {},
    "report": {},
}


def flag_family(flag: str) -> str:
    """``--collector.X`` and ``--no-collector.X`` are one family, rendered from ``exporter.disableCollectors``."""
    return re.sub(r"^--(no-)?collector\..*$", "--[no-]collector.NAME", flag)


def subcommand_flags(name: str) -> set[str]:
    """The flags a command documents; deprecated aliases (hidden from --help) are not rendered."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {flag_family(o) for a in sub.choices[name]._actions if a.help != argparse.SUPPRESS
            for o in a.option_strings if o.startswith("--") and o != "--help"}


def test_every_flag_is_rendered_or_deliberately_left_out(chart: Any) -> None:
    rendered: dict[str, set[str]] = {name: set() for name in NOT_RENDERED}
    for case in MATRIX:
        values = values_with_defaults(chart, MATRIX[case])
        extra = set(values["exporter"]["extraArgs"]) | {
            a for job in ("serve", "aggregate", "report") for a in values["aggregator"][job]["extraArgs"]}
        objects, _ = render(chart, MATRIX[case])
        for w in of_kind(objects, "DaemonSet") + aggregator_workloads(objects):
            (container,) = pod_spec(w)["containers"]
            args = container["args"]
            command = next(a for a in args if a in rendered)
            rendered[command] |= {flag_family(a.split("=")[0]) for a in args[args.index(command) + 1:]
                                  if a.startswith("--") and a not in extra}
    for name, left_out in NOT_RENDERED.items():
        flags = subcommand_flags(name)
        assert rendered[name] <= flags, f"{name}: the chart passes flags the parser lacks"
        assert flags - rendered[name] == set(left_out), \
            f"{name}: flags neither rendered from a value nor listed in NOT_RENDERED"


def check_least_privilege(spec: dict[str, Any], container: dict[str, Any], token: bool = False) -> None:
    """``token``: the pod mounts its ServiceAccount token (the exporter reading pod owners, nothing else)."""
    sc = container["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is token
    assert "hostPID" not in spec and "hostIPC" not in spec


def check_gpu_variant(ds: dict[str, Any], spec: dict[str, Any], container: dict[str, Any],
                      args: argparse.Namespace, exporter: dict[str, Any]) -> None:
    env = {e["name"]: e.get("value") for e in container["env"]}
    node_type = ds["metadata"]["labels"]["wattfleet.io/node-type"]
    assert ds["spec"]["selector"]["matchLabels"]["wattfleet.io/node-type"] == node_type
    if node_type == "gpu":
        assert exporter["gpu"]["enabled"]
        assert spec.get("runtimeClassName", "") == exporter["gpu"]["runtimeClassName"]
        assert env["NVIDIA_VISIBLE_DEVICES"] == exporter["gpu"]["visibleDevices"]
        assert env["NVIDIA_DRIVER_CAPABILITIES"] == exporter["gpu"]["driverCapabilities"]
        assert "nvml" not in args.disable_collector
        for key, value in exporter["gpu"]["nodeSelector"].items():
            assert spec["nodeSelector"][key] == value
        for toleration in exporter["gpu"]["tolerations"]:
            assert toleration in spec["tolerations"]
        # A GPU exporter must not take GPUs from workloads.
        assert "nvidia.com/gpu" not in json.dumps(container["resources"])
    else:
        assert "runtimeClassName" not in spec and "NVIDIA_VISIBLE_DEVICES" not in env
        assert "nvml" in args.disable_collector
        if exporter["gpu"]["enabled"]:
            # Keeps off GPU nodes, in every node selector term.
            terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"]
            for term in terms:
                for key, value in exporter["gpu"]["nodeSelector"].items():
                    assert {"key": key, "operator": "NotIn", "values": [value]} in term["matchExpressions"]


def test_gpu_and_cpu_daemonsets_follow_the_gpu_switch(chart: Any) -> None:
    kinds = {c: sorted(d["metadata"]["labels"]["wattfleet.io/node-type"] for d in exporter_daemonsets(chart, MATRIX[c]))
             for c in ("defaults", "no-gpus", "gpu-nodes-only", "everything-on")}
    # Without a GPU node label (the NVIDIA container toolkit alone) one DaemonSet runs everywhere;
    # with one (the GPU Operator's, in everything-on) GPU and CPU nodes get their own.
    assert kinds == {"defaults": ["gpu"], "no-gpus": ["cpu"], "gpu-nodes-only": ["gpu"],
                     "everything-on": ["cpu", "gpu"]}
    (gpu,) = exporter_daemonsets(chart, MATRIX["gpu-nodes-only"])
    assert "runtimeClassName" not in pod_spec(gpu)  # empty: the node's default runtime
    # User affinity terms are kept and each gains the "not a GPU node" rule.
    cpu = [d for d in exporter_daemonsets(chart, MATRIX["everything-on"])
           if d["metadata"]["labels"]["wattfleet.io/node-type"] == "cpu"][0]
    (term,) = pod_spec(cpu)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]} in term["matchExpressions"]


def probes(chart: Any, case: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for ds in exporter_daemonsets(chart, MATRIX[case]):
        (container,) = pod_spec(ds)["containers"]
        out.append((container["livenessProbe"], container["readinessProbe"]))
    return out


def test_probes_use_the_health_endpoints_with_the_right_scheme(chart: Any) -> None:
    for live, ready in probes(chart, "defaults"):
        assert live["httpGet"] == {"path": "/-/healthy", "port": "metrics", "scheme": "HTTP"}
        assert ready["httpGet"] == {"path": "/-/ready", "port": "metrics", "scheme": "HTTP"}
    for live, ready in probes(chart, "tls"):
        assert live["httpGet"]["scheme"] == ready["httpGet"]["scheme"] == "HTTPS"
    # The probe paths answer without basic auth, so HTTP probes (and a stale snapshot fails readiness) ...
    for _live, ready in probes(chart, "basic-auth"):
        assert ready["httpGet"] == {"path": "/-/ready", "port": "metrics", "scheme": "HTTP"}
    # ... but kubelet cannot present a client certificate: TCP checks under mTLS.
    for case in ("operator-servicemonitor-mtls-basic-auth", "everything-on"):
        for live, ready in probes(chart, case):
            assert live["tcpSocket"] == ready["tcpSocket"] == {"port": "metrics"}


def test_scrape_annotations_only_without_the_operator(chart: Any) -> None:
    def annotations(case: str) -> list[dict[str, str]]:
        return [pod_template_annotations(d) for d in exporter_daemonsets(chart, MATRIX[case])]

    for a in annotations("defaults"):
        assert a["prometheus.io/scrape"] == "true" and a["prometheus.io/scheme"] == "http"
        assert a["prometheus.io/port"] == "9880" and a["prometheus.io/path"] == "/metrics"
    for a in annotations("tls"):
        assert a["prometheus.io/scheme"] == "https"
    for a in annotations("operator-podmonitor"):
        assert "prometheus.io/scrape" not in a
    (serve,) = of_kind(render(chart, MATRIX["aggregator"])[0], "Deployment")
    a = pod_template_annotations(serve)
    assert (a["prometheus.io/scrape"], a["prometheus.io/port"], a["prometheus.io/path"]) == ("true", "9881", "/metrics")


def pod_template_annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("annotations", {})


def _self_signed(directory: Path, name: str) -> None:
    directory.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=wattfleet", "-keyout", str(directory / "tls.key"),
                    "-out", str(directory / name)], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_generated_web_config_is_accepted_by_the_exporter(chart: Any, tmp_path: Path) -> None:
    """The Secret the chart writes loads with the exporter's own web config loader."""
    objects, _ = render(chart, MATRIX["operator-servicemonitor-mtls-basic-auth"])
    sandbox = PodSandbox(tmp_path, objects, of_kind(objects, "DaemonSet")[0])
    args = parse_container_args({"name": "exporter", "command": ["wattfleet"], "args": sandbox.args()})
    cfg = load_web_config(args.web_config_file)
    assert cfg.tls and cfg.client_auth_type == "RequireAndVerifyClientCert" and cfg.min_version == "TLS13"
    assert cfg.client_ca_file is not None
    assert list(cfg.users) == ["prometheus"]


def test_inference_engines_load_with_the_exporter_loader(chart: Any, tmp_path: Path) -> None:
    """The ConfigMap behind --inference-config is a file the exporter's own loader accepts."""
    from wattfleet.exporter.inference.config import load_inference_config

    objects, _ = render(chart, MATRIX["everything-on"])
    sandbox = PodSandbox(tmp_path, objects, of_kind(objects, "DaemonSet")[0])
    args = parse_container_args({"name": "exporter", "command": ["wattfleet"], "args": sandbox.args()})
    (engine,) = load_inference_config(args.inference_config)
    assert (engine.engine, engine.url, engine.gpus) == ("vllm", "http://127.0.0.1:8000/metrics", ("0", "1"))


def test_web_config_errors_are_clear(chart: Any) -> None:
    with pytest.raises(helm.HelmRenderError, match="certSecret is required"):
        chart.render({"exporter": {"webConfig": {"tls": {"enabled": True}}}}, name=RELEASE)
    with pytest.raises(helm.HelmRenderError, match="clientCASecret is required"):
        chart.render({"exporter": {"webConfig": {"tls": {"enabled": True, "certSecret": "c",
                                                         "clientAuthType": "VerifyClientCertIfGiven"}}}},
                     name=RELEASE)
    serve = merged(AGGREGATOR, {"aggregator": {"serve": {"webConfig": {"tls": {"enabled": True}}}}})
    with pytest.raises(helm.HelmRenderError, match="aggregator.serve.webConfig.tls.certSecret is required"):
        chart.render(serve, name=RELEASE)
    serve = merged(serve, {"aggregator": {"serve": {"webConfig": {"tls": {
        "certSecret": "c", "clientAuthType": "RequireAnyClientCert"}}}}})
    with pytest.raises(helm.HelmRenderError, match="aggregator.serve.webConfig.tls.clientCASecret is required"):
        chart.render(serve, name=RELEASE)
    with pytest.raises(helm.HelmRenderError, match="needs exporter.service.enabled"):
        chart.render({"exporter": {"service": {"enabled": False}},
                      "prometheus": {"operator": {"enabled": True, "monitorKind": "ServiceMonitor"}}}, name=RELEASE)


def test_aggregator_without_a_facility_config_fails_the_install(chart: Any) -> None:
    """Better a clear error at `helm install` than pods that crash-loop on an empty config."""
    with pytest.raises(helm.HelmRenderError, match="aggregator.enabled needs the facility configuration"):
        chart.render({"aggregator": {"enabled": True}}, name=RELEASE)
    # An existing ConfigMap is enough: the chart cannot read it, the aggregator validates it.
    objects, _ = render(chart, {"aggregator": {"enabled": True, "existingConfigMap": "my-facility"}})
    (deployment,) = of_kind(objects, "Deployment")
    config_volume = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "config"]
    assert config_volume == [{"name": "config", "configMap": {"name": "my-facility"}}]
    assert not [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("aggregator-config")]


def test_notes_say_what_to_do_next(chart: Any) -> None:
    _, notes = render(chart, MATRIX["defaults"])
    assert "pod-security.kubernetes.io/enforce=privileged" in notes  # the hostPath sysfs mount
    assert "ds/wf-wattfleet-exporter-gpu" in notes
    assert "Aggregator not deployed" in notes and "aggregator.enabled=true" in notes
    _, notes = render(chart, MATRIX["aggregator"])
    assert "svc/wf-wattfleet-aggregator 9881" in notes and "Aggregator not deployed" not in notes
    _, notes = render(chart, MATRIX["no-gpus"])
    assert "ds/wf-wattfleet-exporter-cpu" in notes


def test_monitor_matches_the_exporter_endpoint(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["operator-servicemonitor-mtls-basic-auth"])
    monitors = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in of_kind(objects, "ServiceMonitor")}
    assert set(monitors) == {"exporter", "aggregator"}
    services = {s["metadata"]["labels"]["app.kubernetes.io/component"]: s for s in of_kind(objects, "Service")}
    for component, monitor in monitors.items():
        # A ServiceMonitor selects the Service, whose port named like the endpoint's exists.
        assert monitor["spec"]["selector"]["matchLabels"].items() <= services[component]["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in services[component]["spec"]["ports"]}
    monitor, service = monitors["exporter"], services["exporter"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (ep,) = monitor["spec"]["endpoints"]
    assert ep["scheme"] == "https" and ep["tlsConfig"]["ca"]["secret"]["name"] == "wf-exporter-ca"
    # Mutual TLS: Prometheus presents a client certificate.
    assert ep["tlsConfig"]["cert"]["secret"] == {"name": "wf-prometheus-client", "key": "tls.crt"}
    assert ep["tlsConfig"]["keySecret"] == {"name": "wf-prometheus-client", "key": "tls.key"}
    assert ep["basicAuth"]["password"] == {"name": "wf-scrape-auth", "key": "password"}
    objects, _ = render(chart, MATRIX["operator-podmonitor"])
    pod_monitors = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in of_kind(objects, "PodMonitor")}
    assert set(pod_monitors) == {"exporter", "aggregator"}
    workloads = {"exporter": of_kind(objects, "DaemonSet"), "aggregator": of_kind(objects, "Deployment")}
    for component, pod_monitor in pod_monitors.items():
        assert pod_monitor["metadata"]["labels"]["release"] == "kps"
        for w in workloads[component]:
            template = w["spec"]["template"]
            assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
            ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
            assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports


# ---------------------------------------------------------------- aggregator


def aggregator_workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_kind(objects, "Deployment") + of_kind(objects, "CronJob")


@pytest.mark.parametrize("case", ["aggregator", "everything-on"])
def test_aggregator_args_parse_with_the_aggregator_parser(chart: Any, case: str) -> None:
    pytest.importorskip("wattfleet.aggregator.cli",
                        reason="wattfleet.aggregator.cli (serve/aggregate/report) is not written yet")
    objects, _ = render(chart, MATRIX[case])
    values = values_with_defaults(chart, MATRIX[case])["aggregator"]
    db = f"{values['persistence']['mountPath']}/{values['dbFile']}"
    config = f"{values['configMountPath']}/wattfleet.yaml"
    commands = {}
    pending = []
    for workload in aggregator_workloads(objects):
        (container,) = pod_spec(workload)["containers"]
        if "report" in container["args"] and values["report"]["month"] == "previous" and not month_previous_ok():
            pending.append(container)
            continue
        args = parse_container_args(container)
        commands[args.command] = args
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert args.db == db and values["persistence"]["mountPath"] in mounts
        assert args.config == config and mounts[values["configMountPath"]]["readOnly"] is True
        assert args.log_level == chart.merge_values(MATRIX[case])["logLevel"]
    assert not pending, "`wattfleet report --month previous` (the monthly CronJob) must parse"
    assert set(commands) == {"serve", "aggregate", "report"}
    assert commands["serve"].listen_address == f":{values['port']}"
    assert commands["serve"].refresh_seconds == values["serve"]["refreshSeconds"]
    assert commands["aggregate"].prometheus == values["prometheusUrl"]
    assert commands["aggregate"].lookback_hours == values["aggregate"]["lookbackHours"]
    assert commands["aggregate"].retries == values["aggregate"]["retries"]
    assert commands["aggregate"].no_progress is True  # a progress bar only clutters job logs
    assert commands["report"].out == f"{values['persistence']['mountPath']}/{values['report']['outDir']}"


def month_previous_ok() -> bool:
    """Whether the report command accepts ``--month previous``."""
    parser = argparse.ArgumentParser()
    from wattfleet.aggregator import cli as aggregator_cli
    aggregator_cli.add_report_arguments(parser)
    try:
        parser.parse_args(["--month", "previous", "--db", "x", "--out", "y"])
    except SystemExit:
        return False
    return True


def test_aggregator_pods_share_the_volume_and_run_locked_down(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["aggregator"])
    (claim,) = of_kind(objects, "PersistentVolumeClaim")
    workloads = aggregator_workloads(objects)
    assert sorted(w["kind"] for w in workloads) == ["CronJob", "CronJob", "Deployment"]
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    serve_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for w in workloads:
        spec = pod_spec(w)
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        (container,) = spec["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # the only writable scratch
        if w["kind"] == "CronJob":
            assert w["spec"]["concurrencyPolicy"] == "Forbid"
            # ReadWriteOnce: the jobs run where the serve pod has the volume attached.
            (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["topologyKey"] == "kubernetes.io/hostname"
            assert term["labelSelector"]["matchLabels"].items() <= serve_labels.items()
            # Job pods must not be selected as API backends.
            assert w["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"][
                "app.kubernetes.io/component"] != serve_labels["app.kubernetes.io/component"]
    schedules = sorted(w["spec"]["schedule"] for w in of_kind(objects, "CronJob"))
    assert schedules == ["30 2 1 * *", "7 * * * *"]
    # ReadWriteMany needs no co-location.
    for w in of_kind(render(chart, MATRIX["everything-on"])[0], "CronJob"):
        assert "podAffinity" not in pod_spec(w).get("affinity", {})


def test_tokens_come_from_a_secret(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["everything-on"])
    secret = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"].endswith("aggregator-tokens")][0]
    assert set(secret["data"]) == {"electricityMapsToken", "wattTimeUsername", "wattTimePassword"}
    for w in aggregate_cronjobs(objects):  # the only workload that reads them (see test_each_pod_gets_...)
        (container,) = pod_spec(w)["containers"]
        env = {e["name"]: e for e in container["env"]}
        for name in ("ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD"):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["data"]
        assert all("value" not in e or e["name"] in ("HOME", "MPLCONFIGDIR", "TZ") for e in env.values())
    # No tokens configured: no Secret and no token variables.
    objects, _ = render(chart, MATRIX["aggregator"])
    assert of_kind(objects, "Secret") == []
    for w in aggregator_workloads(objects):
        (container,) = pod_spec(w)["containers"]
        assert not {"ELECTRICITYMAPS_TOKEN", "WATTFLEET_PROMETHEUS_TOKEN"} & {e["name"] for e in container["env"]}


def test_secret_variables_are_the_ones_the_code_reads(chart: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The env names the chart sets are the names the grid clients and the Prometheus source read."""
    from wattfleet.aggregator.grid import electricitymaps, watttime
    from wattfleet.aggregator.ingest.prometheus import PrometheusSource

    objects, _ = render(chart, MATRIX["everything-on"])
    for w in aggregate_cronjobs(objects):
        (container,) = pod_spec(w)["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert {electricitymaps.TOKEN_ENV, watttime.USERNAME_ENVS[0], watttime.PASSWORD_ENV} <= set(refs)
        auth = {n: r for n, r in refs.items() if r["name"] == "thanos-reader"}
        assert {n: r["key"] for n, r in auth.items()} == {"WATTFLEET_PROMETHEUS_TOKEN": "token",
                                                          "WATTFLEET_PROMETHEUS_USER": "username",
                                                          "WATTFLEET_PROMETHEUS_PASSWORD": "password"}
        assert all(r["optional"] is True for r in refs.values())  # each key of the Secrets is optional
    monkeypatch.setenv("WATTFLEET_PROMETHEUS_USER", "reader")
    monkeypatch.setenv("WATTFLEET_PROMETHEUS_PASSWORD", "pw")
    assert PrometheusSource("http://x").basic_auth == ("reader", "pw")
    monkeypatch.setenv("WATTFLEET_PROMETHEUS_TOKEN", "t")
    assert PrometheusSource("http://x").bearer_token == "t"


def test_serve_keeps_serving_while_a_job_holds_the_duckdb_lock(chart: Any, tmp_path: Path) -> None:
    """DuckDB has one writer: serve reads read-only, briefly, and rides out a running `aggregate`."""
    duckdb = pytest.importorskip("duckdb")
    from wattfleet.aggregator.store.database import open_store
    from wattfleet.core import catalog

    objects, _ = render(chart, merged(MATRIX["aggregator"], {"aggregator": {"serve": {"refreshSeconds": 0.1}}}))
    (deployment,) = of_kind(objects, "Deployment")
    sandbox = PodSandbox(tmp_path, objects, deployment)
    args = parse_container_args({"name": "serve", "command": ["wattfleet"], "args": sandbox.args()})
    open_store(args.db).close()  # a migrated, empty database, as the first hourly run leaves it
    with run_pod(sandbox):
        # What `wattfleet aggregate` holds while it runs. Opening can collide with one of serve's
        # brief reads; the CronJob's Job retries a failed run the same way (backoffLimit).
        for _ in range(50):
            try:
                writer = open_store(args.db)
                break
            except duckdb.IOException:
                time.sleep(0.05)
        else:
            pytest.fail("the database stayed locked by serve")
        try:
            writer.execute("INSERT INTO ingest_watermark VALUES ('prometheus', TIMESTAMP '2026-11-01 00:00', now())")
            for _ in range(5):  # several refreshes that find the file locked
                time.sleep(0.1)
                status, body = sandbox.get("/metrics", "HTTP")
                assert status == 200 and catalog.SITE_PUE.series in body
                assert catalog.AGGREGATOR_WATERMARK.series not in body
                assert sandbox.get("/-/ready", "HTTP")[0] == 200
        finally:
            writer.close()
        deadline = time.monotonic() + 10
        while catalog.AGGREGATOR_WATERMARK.series not in sandbox.get("/metrics", "HTTP")[1]:
            assert time.monotonic() < deadline, "serve never read the database after the writer finished"
            time.sleep(0.1)


def test_facility_config_and_grid_data_are_mounted_where_the_config_expects(chart: Any, tmp_path: Path) -> None:
    facility = pytest.importorskip("wattfleet.aggregator.config.load")
    config, grid = FACILITY, GRID_LINES
    objects, _ = render(chart, MATRIX["aggregator"])
    (deployment,) = of_kind(objects, "Deployment")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        cm = volumes[mount["name"]].get("configMap")
        if cm:
            target = tmp_path / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True)
            for key, text in maps[cm["name"]]["data"].items():
                (target / key).write_text(text)
    config_file = tmp_path / "etc/wattfleet/config/wattfleet.yaml"
    assert yaml.safe_load(config_file.read_text()) == config
    loaded = facility.load_facility(config_file)
    assert list(loaded.sites) == ["sfo1"]
    # The relative grid path in the config resolves to the mounted grid-data ConfigMap.
    grid_file = Path(loaded.sites["sfo1"].grid["path"])
    assert grid_file.read_text().splitlines() == grid


# ---------------------------------------------------------------- rules, dashboards, network policy


def rule_files() -> list[Path]:
    return sorted((CHART / "files" / "rules").glob("*.yaml"))


def test_rules_ship_as_prometheusrule_or_configmap(chart: Any) -> None:
    expected_groups = [g for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"]]
    assert expected_groups
    (rule,) = of_kind(render(chart, MATRIX["operator-podmonitor"])[0], "PrometheusRule")
    assert rule["spec"]["groups"] == expected_groups
    assert rule["metadata"]["labels"]["release"] == "kps"  # the Prometheus ruleSelector label
    (cm,) = [c for c in of_kind(render(chart, MATRIX["defaults"])[0], "ConfigMap")
             if c["metadata"]["name"].endswith("-rules")]
    assert {k: yaml.safe_load(v) for k, v in cm["data"].items()} == \
        {f.name: yaml.safe_load(f.read_text()) for f in rule_files()}


@pytest.mark.prometheus
def test_shipped_rules_pass_promtool(chart: Any, tmp_path: Path) -> None:
    (rule,) = of_kind(render(chart, MATRIX["operator-podmonitor"])[0], "PrometheusRule")
    out = tmp_path / "rules.yaml"
    out.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_configmaps_for_the_grafana_sidecar(chart: Any) -> None:
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert files
    maps = [c for c in of_kind(render(chart, MATRIX["everything-on"])[0], "ConfigMap")
            if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(maps) == len(files)
    by_key = {k: (c, v) for c in maps for k, v in c["data"].items()}
    for f in files:
        cm, text = by_key[f.name]
        assert json.loads(text) == json.loads(f.read_text())
        assert cm["metadata"]["namespace"] == "grafana"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Energy"}
    off = render(chart, merged(MATRIX["defaults"], {"dashboards": {"enabled": False}}))[0]
    assert not [c for c in of_kind(off, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]


def test_network_policies_admit_only_the_served_ports(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["everything-on"])
    policies = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in of_kind(objects, "NetworkPolicy")
                if "wattfleet.io/job" not in p["spec"]["podSelector"]["matchLabels"]}  # one job's egress: see below
    assert set(policies) == {"exporter", "aggregator", "aggregator-job"}
    assert policies["exporter"]["spec"]["ingress"] == [{
        "ports": [{"port": "metrics", "protocol": "TCP"}],
        "from": MATRIX["everything-on"]["networkPolicy"]["metricsFrom"]}]
    assert policies["aggregator"]["spec"]["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert "ingress" not in policies["aggregator-job"]["spec"]
    # Every pod the chart runs is covered by a policy.
    for w in exporter_daemonsets(chart, MATRIX["everything-on"]) + aggregator_workloads(objects):
        labels = (w["spec"]["jobTemplate"]["spec"]["template"] if w["kind"] == "CronJob"
                  else w["spec"]["template"])["metadata"]["labels"]
        assert any(p["spec"]["podSelector"]["matchLabels"].items() <= labels.items() for p in policies.values())
    assert of_kind(render(chart, MATRIX["everything-off"])[0], "NetworkPolicy") == []


def test_chart_ships_what_dashboards_build_generates(tmp_path: Path) -> None:
    """The templates handle the real generated dashboards and rules, whatever files/ holds now."""
    build = pytest.importorskip("wattfleet.dashboards.build", reason="wattfleet.dashboards is not written yet")
    copy_dir = tmp_path / "wattfleet"
    shutil.copytree(CHART, copy_dir)
    for old in (copy_dir / "files").glob("*/*"):
        old.unlink()
    written = build.write_chart(copy_dir, build.render())
    dashboards = sorted(p for p in written if p.suffix == ".json")
    rules = sorted(p for p in written if p.parent.name == "rules")
    assert dashboards and rules
    with helm.Chart.load(copy_dir) as generated:
        objects, _ = render(generated, {"prometheus": {"operator": {"enabled": True}}})
        _RENDER_CACHE.clear()  # the cache is keyed by values, not by chart
        plain, _ = render(generated, {})
        _RENDER_CACHE.clear()
    for obj in objects + plain:
        if obj["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    boards = [c for c in of_kind(objects, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert sorted(k for c in boards for k in c["data"]) == [p.name for p in dashboards]
    for c in boards:
        ((name, text),) = c["data"].items()
        assert json.loads(text) == json.loads((copy_dir / "files" / "dashboards" / name).read_text())
    (rule,) = of_kind(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == [g for p in rules for g in yaml.safe_load(p.read_text())["groups"]]
    (rule_map,) = [c for c in of_kind(plain, "ConfigMap") if c["metadata"]["name"].endswith("-rules")]
    assert sorted(rule_map["data"]) == [p.name for p in rules]
    if shutil.which("promtool"):
        out = tmp_path / "rules.yaml"
        out.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the rendered pods, run locally


class PodSandbox:
    """A rendered container's volumes laid out under ``root``, and its args pointed there.

    Secrets and ConfigMaps the chart renders are written as kubelet would;
    secrets it only references (TLS, CA) get a throwaway certificate; the
    sysfs hostPath gets a fake powercap tree. Then the container's command
    runs here, so its probes can be tried against the real server. Pods
    sandboxed under the same ``root`` share their volumes, as pods on one
    node share a ReadWriteOnce claim. With ``readOnlyRootFilesystem`` the
    command runs in a mount namespace where everything but the pod's writable
    volumes (emptyDir, claim) is read-only, where the machine allows it.
    """

    def __init__(self, root: Path, objects: list[dict[str, Any]], workload: dict[str, Any],
                 secrets: dict[str, dict[str, str]] | None = None) -> None:
        """``secrets``: contents (name -> key -> text) of Secrets the chart only references."""
        import base64

        from wattfleet.sim.fake_powercap import FakePowercap

        self.root = root
        self.spec = pod_spec(workload)
        (self.container,) = self.spec["containers"]
        self.powercap: FakePowercap | None = None
        volumes = {v["name"]: v for v in self.spec["volumes"]}
        rendered = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
        maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
        self.mounts = [m["mountPath"] for m in self.container["volumeMounts"]]
        for mount in self.container["volumeMounts"]:
            volume, target = volumes[mount["name"]], self.path(mount["mountPath"])
            if "hostPath" in volume and mount.get("readOnly") and mount["name"] == "sysfs":
                self.powercap = FakePowercap(target, sockets=1)
            elif "hostPath" in volume and mount.get("readOnly"):  # pod-resources, cgroup, pod logs: empty
                target.mkdir(parents=True, exist_ok=True)
            elif "secret" in volume and volume["secret"]["secretName"] in rendered:
                data = rendered[volume["secret"]["secretName"]]["data"]
                self.write(target, {k: base64.b64decode(v).decode() for k, v in data.items()}, volume["secret"])
            elif "secret" in volume and volume["secret"]["secretName"] in (secrets or {}):
                self.write(target, (secrets or {})[volume["secret"]["secretName"]], volume["secret"])
            elif "secret" in volume:
                keys = [i["path"] for i in volume["secret"]["items"]]
                _self_signed(target, "ca.crt" if keys == ["ca.crt"] else "tls.crt")
            elif "configMap" in volume:
                self.write(target, maps[volume["configMap"]["name"]]["data"], volume["configMap"])
            else:  # emptyDir, persistentVolumeClaim
                target.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.writable = [str(self.path(m["mountPath"])) for m in self.container["volumeMounts"]
                         if not m.get("readOnly") and not {"secret", "configMap"} & set(volumes[m["name"]])]
        self.read_only_root = bool(self.container["securityContext"].get("readOnlyRootFilesystem")) \
            and can_make_root_read_only()

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def write(self, target: Path, data: dict[str, str], source: dict[str, Any]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        names = {i["key"]: i["path"] for i in source.get("items", [])} or {k: k for k in data}
        for key, name in names.items():
            text = data[key]
            for mount in self.mounts:  # files that name other mounted files (web config)
                text = text.replace(mount.rstrip("/") + "/", str(self.path(mount)) + "/")
            (target / name).write_text(text)

    def localize(self, value: str) -> str:
        """A path inside a mounted volume, as it lies in the sandbox."""
        if any(value == m or value.startswith(m.rstrip("/") + "/") for m in self.mounts):
            return str(self.path(value))
        return value

    def args(self) -> list[str]:
        out = []
        for arg in self.container["args"]:
            if arg == "$(NODE_NAME)":
                arg = "node-a"
            elif arg.startswith(":") and arg[1:].isdigit():
                arg = f"127.0.0.1:{self.port}"
            out.append(self.localize(arg))
        return out

    def env(self) -> dict[str, str]:
        """The process environment plus the container's literal variables (HOME, caches: in the tmp volume)."""
        import os

        env = dict(os.environ, **{e["name"]: self.localize(e["value"]) for e in self.container["env"]
                                  if "value" in e})
        if "/tmp" in self.mounts:  # the container's /tmp is that volume: so are temporary files here
            env["TMPDIR"] = str(self.path("/tmp"))
        return env

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` as the container would run it: on a read-only root when the container asks for one."""
        if not self.read_only_root:
            return command
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT,
                "sh", ":".join(self.writable), *command]

    def command(self, *extra: str, prefix: tuple[str, ...] = ()) -> list[str]:
        import sys

        return self.wrap([*prefix, sys.executable, "-m", "wattfleet", *self.args(), *extra])

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(), env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def run(self) -> subprocess.CompletedProcess[str]:
        """Run a job's command to completion."""
        return subprocess.run(self.command(), env=self.env(), capture_output=True, text=True, timeout=120)

    def get(self, path: str, scheme: str) -> tuple[int, str]:
        import ssl
        import urllib.error
        import urllib.request

        ctx = ssl._create_unverified_context() if scheme == "HTTPS" else None  # kubelet does not verify
        try:
            with urllib.request.urlopen(f"{scheme.lower()}://127.0.0.1:{self.port}{path}", timeout=5,
                                        context=ctx) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def check_probe(self, probe: dict[str, Any], deadline: float) -> None:
        import socket
        import time

        while True:
            try:
                if "tcpSocket" in probe:
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
                status, _ = self.get(probe["httpGet"]["path"], probe["httpGet"].get("scheme", "HTTP"))
                if 200 <= status < 400:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"probe {probe} never passed")
            time.sleep(0.1)


# Bind-mount each writable volume onto itself (its own mount stays writable), then make / read-only.
READ_ONLY_ROOT = ('IFS=:; for d in $1; do mount --bind "$d" "$d" || exit 97; done; unset IFS; shift; '
                  'mount -o remount,bind,ro / || exit 98; exec "$@"')


@functools.lru_cache(maxsize=1)
def can_make_root_read_only() -> bool:
    """Whether this machine lets a test run a command on a read-only root (root, mount namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -o remount,bind,ro /"], capture_output=True)
    return probe.returncode == 0


def free_port() -> int:
    from promserver import free_port as _free_port
    return _free_port()


@contextlib.contextmanager
def run_pod(sandbox: PodSandbox) -> Iterator[subprocess.Popen[bytes]]:
    """Start the container's command; return once its liveness and readiness probes pass."""
    import time

    proc = sandbox.start()
    command = f"wattfleet {' '.join(sandbox.args())}"
    try:
        deadline = time.monotonic() + 20
        for probe in ("livenessProbe", "readinessProbe"):
            if proc.poll() is not None:
                break
            sandbox.check_probe(sandbox.container[probe], deadline)
        else:
            yield proc
            return
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()
    pytest.fail(f"`{command}` exited with {proc.returncode}:\n{output}")


@pytest.mark.skipif(not can_make_root_read_only(), reason="needs root and mount namespaces (unshare)")
def test_sandboxed_pods_run_on_a_read_only_root(chart: Any, tmp_path: Path) -> None:
    """The pod tests below run their commands as readOnlyRootFilesystem does: only volumes are writable."""
    import sys

    objects, _ = render(chart, MATRIX["aggregator"])
    (deployment,) = of_kind(objects, "Deployment")
    sandbox = PodSandbox(tmp_path / "pod", objects, deployment)
    assert sandbox.read_only_root
    assert sorted(sandbox.writable) == sorted(str(sandbox.path(p)) for p in ("/tmp", "/var/lib/wattfleet"))
    script = ("import sys\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n"
              "        open(path, 'w').close(); print('wrote', path)\n"
              "    except OSError as exc:\n"
              "        print('refused', path, exc.errno)\n")
    paths = [str(sandbox.path("/tmp/x")), str(sandbox.path("/var/lib/wattfleet/x")),
             str(sandbox.path("/etc/wattfleet/config/x")), str(tmp_path / "outside")]
    result = subprocess.run(sandbox.wrap([sys.executable, "-c", script, *paths]), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    erofs = 30
    assert result.stdout.splitlines() == [f"wrote {paths[0]}", f"wrote {paths[1]}",
                                          f"refused {paths[2]} {erofs}", f"refused {paths[3]} {erofs}"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("case", ["custom-sysfs", "tls", "basic-auth", "operator-servicemonitor-mtls-basic-auth"])
def test_rendered_exporter_runs_and_passes_its_probes(chart: Any, case: str, tmp_path: Path) -> None:
    """The DaemonSet's command, volumes and probes, run for real: RAPL is read at the mounted sysfs."""
    from wattfleet.core import catalog

    objects, _ = render(chart, MATRIX[case])
    sandbox = PodSandbox(tmp_path, objects, of_kind(objects, "DaemonSet")[-1])
    assert sandbox.powercap is not None
    with run_pod(sandbox):
        tls = MATRIX[case]["exporter"].get("webConfig", {}).get("tls", {})
        if tls.get("clientAuthType", "").startswith("Require"):
            # No client certificate, no handshake: which is why the probes are TCP checks here.
            with pytest.raises(OSError):
                sandbox.get("/metrics", "HTTPS")
            return
        if MATRIX[case]["exporter"].get("webConfig", {}).get("basicAuthUsers"):
            # the HTTP probes passed without credentials; a scrape without them is refused
            assert sandbox.get("/metrics", "HTTP")[0] == 401
            return
        status, body = sandbox.get("/metrics", "HTTPS" if tls.get("enabled") else "HTTP")
        assert status == 200
        measured = [line for line in body.splitlines() if line.startswith(catalog.CPU_ENERGY.series + "{")
                    and f'method="{catalog.METHOD_MEASURED}"' in line]
        assert measured, "RAPL was not read from the mounted sysfs"
        # The state file is written on the read-write host directory (the root is read-only).
        args = sandbox.container["args"]
        state = sandbox.path(args[args.index("--state-file") + 1])
        assert json.loads(state.read_text())["sensors"]["rapl"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (util-linux) to drop capabilities")
def test_uid0_without_capabilities_reads_root_only_energy_uj(chart: Any, tmp_path: Path) -> None:
    """The chart's privilege choice: uid 0 with every capability dropped reads `-r-------- root` files.

    Since the CVE-2020-8694 fix energy_uj is readable by its owner, root, only. Reading a file you
    own needs no capability, so `capabilities: {drop: [ALL]}` costs nothing; a non-root uid would need
    CAP_DAC_READ_SEARCH in its effective set, which Kubernetes cannot give to a non-root process.
    """
    import sys

    from wattfleet.core import catalog

    objects, _ = render(chart, MATRIX["defaults"])
    sandbox = PodSandbox(tmp_path / "pod", objects, of_kind(objects, "DaemonSet")[-1])
    assert sandbox.powercap is not None
    for zone in sandbox.powercap.zones.values():
        zone.mode = 0o400
    sandbox.powercap.update()
    for zone in sandbox.powercap.zones.values():
        st = (zone.path / "energy_uj").stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o400, 0)
    # As the container runs: capabilities dropped (bounding set empty) and no privilege escalation.
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    other = tmp_path / "owned-by-someone-else"
    other.write_text("x")
    other.chmod(0o400)
    os.chown(other, 12345, 12345)
    check = subprocess.run([*drop, sys.executable, "-c", f"open({str(other)!r}).read()"], capture_output=True)
    assert check.returncode != 0 and b"PermissionError" in check.stderr, "capabilities were not dropped"
    result = subprocess.run(sandbox.command("--once", prefix=tuple(drop)), env=sandbox.env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    measured = [line for line in result.stdout.splitlines() if line.startswith(catalog.CPU_ENERGY.series + "{")
                and f'method="{catalog.METHOD_MEASURED}"' in line]
    assert measured, result.stderr


def test_rendered_aggregator_serve_runs_and_passes_its_probes(chart: Any, tmp_path: Path) -> None:
    pytest.importorskip("wattfleet.aggregator.outputs.serve", reason="wattfleet serve is not written yet")
    objects, _ = render(chart, MATRIX["aggregator"])
    (deployment,) = of_kind(objects, "Deployment")
    sandbox = PodSandbox(tmp_path, objects, deployment)
    with run_pod(sandbox):
        status, _body = sandbox.get("/metrics", "HTTP")
        assert status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_rendered_serve_takes_its_web_config_tls_and_basic_auth(chart: Any, tmp_path: Path) -> None:
    """serve's Deployment runs for real with the web config Secret the chart generates: HTTPS probes pass
    without credentials, /metrics asks for the scrape user's password, and the monitor scrapes as that."""
    import base64
    import urllib.request

    objects, _ = render(chart, MATRIX["serve-tls-basic-auth"])
    (deployment,) = of_kind(objects, "Deployment")
    sandbox = PodSandbox(tmp_path, objects, deployment)
    args = parse_container_args({"name": "serve", "command": ["wattfleet"], "args": sandbox.args()})
    cfg = load_web_config(args.web_config_file)   # serve's own loader accepts the generated file
    assert cfg.tls and cfg.min_version == "TLS13" and list(cfg.users) == ["prometheus"]
    (container,) = pod_spec(deployment)["containers"]
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert all(m["readOnly"] for m in container["volumeMounts"] if m["name"] in ("web-config", "tls"))
    with run_pod(sandbox):   # the probes: HTTPS, no password (the probe paths answer without one)
        assert sandbox.get("/metrics", "HTTPS")[0] == 401
        request = urllib.request.Request(f"https://127.0.0.1:{sandbox.port}/metrics", headers={
            "Authorization": "Basic " + base64.b64encode(f"prometheus:{SERVE_PASSWORD}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=5, context=ssl._create_unverified_context()) as resp:
            assert resp.status == 200 and b"wattfleet_" in resp.read()
        with pytest.raises(OSError):   # no plain HTTP any more (reset, or refused as a URLError)
            urllib.request.urlopen(f"http://127.0.0.1:{sandbox.port}/metrics", timeout=5)
    monitors = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in of_kind(objects, "ServiceMonitor")}
    (ep,) = monitors["aggregator"]["spec"]["endpoints"]
    assert ep["scheme"] == "https" and ep["tlsConfig"] == {"serverName": "wattfleet",
                                                           "ca": {"secret": {"name": "wf-ca", "key": "ca.crt"}}}
    assert ep["basicAuth"]["password"] == {"name": "wf-scrape-auth", "key": "password"}
    assert pod_template_annotations(deployment)["checksum/web-config"]
    web_secret = f"{RELEASE}-wattfleet-aggregator-web"
    (secret,) = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"] == web_secret]
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "aggregator"


def test_serve_without_a_web_config_is_scraped_as_before(chart: Any) -> None:
    """The exporter's TLS and basic auth reach neither serve's pod nor its monitor: its password is sent
    only to a serve that asks for one."""
    objects, _ = render(chart, MATRIX["operator-servicemonitor-mtls-basic-auth"])
    monitors = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in of_kind(objects, "ServiceMonitor")}
    (ep,) = monitors["aggregator"]["spec"]["endpoints"]
    assert ep["scheme"] == "http" and "tlsConfig" not in ep and "basicAuth" not in ep
    (deployment,) = of_kind(objects, "Deployment")
    (container,) = pod_spec(deployment)["containers"]
    assert "--web.config.file" not in container["args"]
    assert not {"web-config", "tls", "client-ca"} & {v["name"] for v in pod_spec(deployment)["volumes"]}
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    # An existing web config of serve's own: mounted under its key, TCP probes, the monitor sends the password.
    values = merged(MATRIX["serve-tls-basic-auth"], {"aggregator": {"serve": {"webConfig": {
        "existingSecret": "my-serve-web", "existingSecretKey": "web.yml", "basicAuthUsers": {}, "tls": {
            "enabled": False}}}}})
    objects, _ = render(chart, values)
    (deployment,) = of_kind(objects, "Deployment")
    (container,) = pod_spec(deployment)["containers"]
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["web-config"]["secret"] == {"secretName": "my-serve-web",
                                               "items": [{"key": "web.yml", "path": "web-config.yml"}]}
    assert "tcpSocket" in container["livenessProbe"] and "tcpSocket" in container["readinessProbe"]
    assert not [s for s in of_kind(objects, "Secret") if s["metadata"]["name"].endswith("aggregator-web")]
    monitors = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in of_kind(objects, "ServiceMonitor")}
    (ep,) = monitors["aggregator"]["spec"]["endpoints"]
    assert ep["scheme"] == "http" and ep["basicAuth"]["username"] == {"name": "wf-scrape-auth", "key": "username"}


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_rendered_cronjobs_aggregate_then_report_on_the_shared_volume(chart: Any, tmp_path: Path) -> None:
    """The hourly and monthly jobs' commands, volumes and environment, run for real against Prometheus."""
    from datetime import timedelta

    from fixtures.agg.backfill import History, Series, whole_hours_ago
    from promserver import PROMTOOL, PrometheusServer
    from wattfleet.core import catalog

    # Two whole hours of one GPU at 300 W, backfilled into a real Prometheus.
    start = whole_hours_ago(3)
    gpu = Series(catalog.GPU_ENERGY, dict(node="par1-n1", cluster="c1", site="par1", gpu="0", uuid="GPU-a",
                                          gpu_model="H100", method="measured", source="nvml"), 300)
    config = {"version": 1, "sites": [{"name": "par1", "zone": "FR", "pue": 1.2, "wue_liters_per_kwh": 1.0,
                                       "nodes": ["par1-*"], "grid": {"source": "static"}}]}
    month = (start + timedelta(hours=1)).strftime("%Y-%m")
    server = PrometheusServer(targets=[])
    History(start, 2, [gpu]).write_blocks(PROMTOOL, server.dir / "data")
    with server:
        server.wait_for(catalog.GPU_ENERGY.series + "[1d]", min_results=1, timeout=30)
        objects, _ = render(chart, {"aggregator": {"enabled": True, "config": config, "prometheusUrl": server.url,
                                                   "report": {"month": month}}})
        jobs = {w["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["wattfleet.io/job"]: w
                for w in of_kind(objects, "CronJob")}
        outputs = {}
        for name in ("aggregate", "report"):
            sandbox = PodSandbox(tmp_path, objects, jobs[name])  # one root: the jobs share the claim
            result = sandbox.run()
            assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
            outputs[name] = result.stdout
    # At least 2 h x 300 W (plus the backfill's 5-minute edges), read through the chart's --prometheus.
    match = re.search(r"IT ([0-9.]+) kWh", outputs["aggregate"])
    assert match, outputs["aggregate"]
    it_kwh = float(match.group(1))
    assert 0.6 <= it_kwh < 0.7, outputs["aggregate"]
    values = values_with_defaults(chart, {})["aggregator"]
    out_dir = sandbox.path(f"{values['persistence']['mountPath']}/{values['report']['outDir']}")
    written = [Path(line) for line in outputs["report"].splitlines() if line.strip()]
    assert written and all(p.is_file() and out_dir in p.parents for p in written)
    assert (out_dir.parent / values["dbFile"]).is_file()  # the DuckDB file lives on the volume


# ---------------------------------------------------------------- least privilege per workload: secrets, network

GRID_TOKEN_ENVS = {"ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD"}
PROMETHEUS_ENVS = {"WATTFLEET_PROMETHEUS_TOKEN", "WATTFLEET_PROMETHEUS_USER", "WATTFLEET_PROMETHEUS_PASSWORD"}
DNS = {(53, "UDP"), (53, "TCP")}
# Default ingress sources: the release's namespace and the monitoring namespace, never "any".
DEFAULT_SOURCES = [{"podSelector": {}},
                   {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def job_name(workload: dict[str, Any]) -> str:
    """serve, aggregate or report."""
    if workload["kind"] == "Deployment":
        return "serve"
    return str(workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["wattfleet.io/job"])


def aggregate_cronjobs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in of_kind(objects, "CronJob") if job_name(w) == "aggregate"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    template = (workload["spec"]["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob"
                else workload["spec"]["template"])
    return dict(template["metadata"]["labels"])


def selecting(objects: list[dict[str, Any]], workload: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    """The NetworkPolicies that select the workload's pods for ``direction`` (Ingress or Egress)."""
    labels = pod_labels(workload)
    return [p for p in of_kind(objects, "NetworkPolicy")
            if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            and direction in p["spec"]["policyTypes"]]


def egress_rules(objects: list[dict[str, Any]], workload: dict[str, Any]) -> list[dict[str, Any]]:
    """What the pod may reach: the union of the egress rules of every policy selecting it (none: unrestricted)."""
    policies = selecting(objects, workload, "Egress")
    assert policies, f"{workload['metadata']['name']}: egress is not restricted"
    return [rule for p in policies for rule in p["spec"].get("egress", [])]


def egress_ports(objects: list[dict[str, Any]], workload: dict[str, Any]) -> set[tuple[Any, str]]:
    rules = egress_rules(objects, workload)
    assert all(rule.get("ports") for rule in rules), "an egress rule without ports opens every port"
    return {(port["port"], port["protocol"]) for rule in rules for port in rule["ports"]}


def test_each_pod_gets_only_the_secrets_it_uses(chart: Any) -> None:
    """serve and report read the DuckDB file: no grid-API token, no Prometheus credential; aggregate gets both."""
    objects, _ = render(chart, MATRIX["everything-on"])
    (secret,) = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"].endswith("aggregator-tokens")]
    by_job = {job_name(w): w for w in aggregator_workloads(objects)}
    assert set(by_job) == {"serve", "aggregate", "report"}
    for job, workload in by_job.items():
        spec = pod_spec(workload)
        (container,) = spec["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values()
                if "secretKeyRef" in e.get("valueFrom", {})}
        assert "envFrom" not in container
        assert not [v for v in spec["volumes"] if "secret" in v or "projected" in v], job  # no secret files either
        if job == "aggregate":
            assert GRID_TOKEN_ENVS | PROMETHEUS_ENVS <= set(env)
            assert refs == {secret["metadata"]["name"], "thanos-reader"}
        else:
            assert not (GRID_TOKEN_ENVS | PROMETHEUS_ENVS) & set(env), job
            assert refs == set(), job
            assert set(env) == {"HOME", "MPLCONFIGDIR", "TZ"}, job  # TZ: everything-on's extraEnv
    # serve no longer restarts when the tokens change: it does not read them.
    assert "checksum/tokens" not in pod_template_annotations(by_job["serve"])
    # report needs none: its code path opens the DuckDB file and the config, no grid source, no Prometheus.
    from wattfleet.aggregator.outputs import report
    source = Path(report.__file__).read_text()
    assert "wattfleet.aggregator.grid" not in source and "wattfleet.aggregator.ingest" not in source


def test_network_policies_admit_scrapes_only_from_configured_sources(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["aggregator"])
    ingress = {p["metadata"]["name"]: p["spec"].get("ingress", []) for p in of_kind(objects, "NetworkPolicy")}
    assert ingress[f"{RELEASE}-wattfleet-exporter"] == ingress[f"{RELEASE}-wattfleet-aggregator"] == [
        {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": DEFAULT_SOURCES}]
    # every pod is covered for ingress; no rule anywhere admits any source
    for case in sorted(MATRIX):
        objects, _ = render(chart, MATRIX[case])
        for workload in of_kind(objects, "DaemonSet") + aggregator_workloads(objects):
            if MATRIX[case].get("networkPolicy", {}).get("enabled", True):
                assert selecting(objects, workload, "Ingress"), (case, workload["metadata"]["name"])
        for policy in of_kind(objects, "NetworkPolicy"):
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("from") and rule.get("ports"), (case, policy["metadata"]["name"])
    # another monitoring namespace, or none: the release's namespace only
    for namespace, sources in (("observability", [DEFAULT_SOURCES[0], {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "observability"}}}]), ("", DEFAULT_SOURCES[:1])):
        objects, _ = render(chart, merged(MATRIX["aggregator"], {"networkPolicy": {"monitoringNamespace": namespace}}))
        for policy in of_kind(objects, "NetworkPolicy"):
            for rule in policy["spec"].get("ingress", []):
                assert rule["from"] == sources


def test_network_policies_limit_egress_to_what_each_workload_uses(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["aggregator"])
    by_job = {job_name(w): w for w in aggregator_workloads(objects)}
    assert egress_ports(objects, by_job["serve"]) == DNS  # it only reads DuckDB
    assert egress_ports(objects, by_job["report"]) == DNS
    assert egress_ports(objects, by_job["aggregate"]) == DNS | {(9090, "TCP"), (443, "TCP")}  # Prometheus, grid APIs
    for daemonset in of_kind(objects, "DaemonSet"):
        # no inference engines configured; the API server for pod owners (exporter.workloads.owners)
        assert egress_ports(objects, daemonset) == DNS | {(443, "TCP"), (6443, "TCP")}
    kube_dns = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]
    for workload in list(by_job.values()) + of_kind(objects, "DaemonSet"):
        dns_rules = [r for r in egress_rules(objects, workload) if r["ports"][0]["port"] == 53]
        assert dns_rules and all(r["to"] == kube_dns for r in dns_rules)
    # the exporter reaches its inference engines: their ports, and their address when the URL has an IP
    engines = [{"engine": "vllm", "url": "http://10.1.2.3:8000/metrics", "gpus": [0]},
               {"engine": "tgi", "url": "https://tgi.serving.svc/metrics", "gpus": [1]}]
    objects, _ = render(chart, merged(MATRIX["defaults"], {"exporter": {"inferenceEngines": engines}}))
    for daemonset in of_kind(objects, "DaemonSet"):
        rules = [r for r in egress_rules(objects, daemonset) if r["ports"][0]["port"] != 53]
        assert rules == [{"ports": [{"port": 8000, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}]},
                         {"ports": [{"port": 443, "protocol": "TCP"}]},
                         {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}]


@pytest.mark.parametrize("url, port", [("https://thanos.example.com", 443), ("http://mimir.svc", 80),
                                       ("https://thanos.example.com:10902/prefix", 10902)])
def test_aggregate_egress_follows_the_prometheus_url_and_overrides(chart: Any, url: str, port: int) -> None:
    prometheus = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "thanos"}}}]
    extra = {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"port": 8443, "protocol": "TCP"}]}
    values = merged(MATRIX["aggregator"], {
        "aggregator": {"prometheusUrl": url},
        "networkPolicy": {"prometheusTo": prometheus, "gridApi": {"ports": []}, "dns": {"to": [], "port": 5353},
                          "extraEgress": {"serve": [extra], "report": [extra]}}})
    objects, _ = render(chart, values)
    by_job = {job_name(w): w for w in aggregator_workloads(objects)}
    dns = {(5353, "UDP"), (5353, "TCP")}
    assert egress_ports(objects, by_job["aggregate"]) == dns | {(port, "TCP")}  # no grid API ports: files only
    assert [r for r in egress_rules(objects, by_job["aggregate"]) if r["ports"] == [
        {"port": port, "protocol": "TCP"}]] == [{"ports": [{"port": port, "protocol": "TCP"}], "to": prometheus}]
    for job in ("serve", "report"):
        assert egress_ports(objects, by_job[job]) == dns | {(8443, "TCP")}
        assert extra in egress_rules(objects, by_job[job])
    assert all("to" not in r for r in egress_rules(objects, by_job["serve"]) if r["ports"][0]["port"] == 5353)
    for policy in of_kind(objects, "NetworkPolicy"):
        kubernetes_validate.validate(policy, KUBE_VERSION, strict=True)
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", [
    {"networkPolicy": {"extraEgress": {"serve": [{}]}}},
    {"networkPolicy": {"extraEgress": {"serve": [{"ports": [{"port": 443, "protocol": "HTTP"}]}]}}},
    {"networkPolicy": {"extraEgress": {"web": []}}},
    {"networkPolicy": {"gridApi": {"ports": [0]}}},
    {"networkPolicy": {"dns": {"to": [{}]}}},
    {"networkPolicy": {"monitoringNamespace": "Not A Namespace"}},
    {"networkPolicy": {"prometheusTo": "monitoring"}},
], ids=["empty rule", "bad protocol", "unknown workload", "port 0", "empty peer", "bad namespace", "peers not a list"])
def test_invalid_network_policy_values_fail_the_schema(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


# ---------------------------------------------------------------- flags, logs, GPU scheduling, monitors


def documented_values() -> list[tuple[str, str]]:
    """(dotted key, description) of every `# --` documented key in values.yaml, in file order."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        if not stripped or stripped.startswith("- ") or ":" not in stripped:
            comment = []
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack and any(path == "#documented" for _, path in stack):
            comment = []
            continue
        key = stripped.split(":", 1)[0]
        path = ".".join([p for _, p in stack if p != "#documented"] + [key])
        doc = [c for c in comment if c.startswith("# --")]
        if doc:
            first = comment.index(doc[0])
            text = " ".join(c.lstrip("#").strip() for c in comment[first:])[2:].strip()
            out.append((path, text))
            stack.append((indent, key))
            stack.append((indent, "#documented"))
        else:
            stack.append((indent, key))
        comment = []
    return out


def values_table() -> str:
    """The README's values table, regenerated from values.yaml (paste it when a value is added)."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = ["| Key | Default | Description |", "|---|---|---|"]
    for path, text in documented_values():
        value: Any = defaults
        for part in path.split("."):
            value = value[part]
        shown = json.dumps(value)
        shown = f"`{shown}`" if len(shown) <= 40 else "see values.yaml"
        rows.append(f"| `{path}` | {shown} | {text.replace('|', '&#124;')} |")
    return "\n".join(rows)


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    missing = [row for row in values_table().splitlines()[2:] if row.split(" | ")[0][2:] not in readme]
    assert not missing, "add these rows to the Values table of helm/wattfleet/README.md:\n" + "\n".join(missing)


def test_log_flags_follow_the_values_on_every_container(chart: Any) -> None:
    for case in ("aggregator", "everything-on"):
        values = values_with_defaults(chart, MATRIX[case])
        objects, _ = render(chart, MATRIX[case])
        for w in of_kind(objects, "DaemonSet") + aggregator_workloads(objects):
            (container,) = pod_spec(w)["containers"]
            args = parse_container_args(container)
            assert (args.log_level, args.log_format) == (values["logLevel"], values["logFormat"])
            assert not getattr(args, "deprecated_flags", None), f"{container['args']} uses deprecated flags"
            # Long-running commands take the log flags themselves; report (a one-shot job) before it.
            first = container["args"][0]
            assert first == ("--log.level" if args.command == "report" else args.command)


def test_schema_log_enums_match_the_code() -> None:
    from wattfleet.core import logs

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["logFormat"]["enum"]) == set(logs.FORMATS)
    assert set(schema["properties"]["logLevel"]["enum"]) == set(logs.LEVELS)


def test_gpu_defaults_work_with_the_container_toolkit_alone(chart: Any) -> None:
    """No runtime class and no GPU Operator label required; NVML injected by env; GPU taints tolerated."""
    (ds,) = exporter_daemonsets(chart, MATRIX["defaults"])
    spec = pod_spec(ds)
    (container,) = spec["containers"]
    assert "runtimeClassName" not in spec and "nodeSelector" not in spec
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])
    assert "nvml" not in parse_container_args(container).disable_collector


def test_gpu_node_selection_and_affinity_are_configurable(chart: Any) -> None:
    term = {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "Exists"}]}
    values = {"exporter": {"gpu": {"runtimeClassName": "nvidia", "nodeSelector": {"gpu": "yes"},
                                   "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                                       "nodeSelectorTerms": [term]}}}}}}
    objects, _ = render(chart, values)
    by_type = {d["metadata"]["labels"]["wattfleet.io/node-type"]: pod_spec(d) for d in of_kind(objects, "DaemonSet")}
    assert set(by_type) == {"gpu", "cpu"}
    gpu, cpu = by_type["gpu"], by_type["cpu"]
    assert gpu["runtimeClassName"] == "nvidia" and gpu["nodeSelector"] == {"gpu": "yes"}
    assert gpu["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"] == [term]
    assert "runtimeClassName" not in cpu
    (cpu_term,) = cpu["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert cpu_term["matchExpressions"] == [{"key": "gpu", "operator": "NotIn", "values": ["yes"]}]
    for obj in objects:
        if obj["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_exporter_runs_the_exporter_only_image(chart: Any) -> None:
    objects, _ = render(chart, MATRIX["aggregator"])
    (ds,) = of_kind(objects, "DaemonSet")
    appversion = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert pod_spec(ds)["containers"][0]["image"] == f"ghcr.io/wattfleet/wattfleet-exporter:{appversion}"
    for w in aggregator_workloads(objects):
        assert pod_spec(w)["containers"][0]["image"] == f"ghcr.io/wattfleet/wattfleet:{appversion}"
    digest = "sha256:" + "cd" * 32
    objects, _ = render(chart, {"image": {"exporterDigest": digest, "tag": "9.9"}})
    (ds,) = of_kind(objects, "DaemonSet")
    assert pod_spec(ds)["containers"][0]["image"] == f"ghcr.io/wattfleet/wattfleet-exporter@{digest}"
    objects, _ = render(chart, {"image": {"exporterRepository": "", "tag": "9.9"}})
    (ds,) = of_kind(objects, "DaemonSet")
    assert pod_spec(ds)["containers"][0]["image"] == "ghcr.io/wattfleet/wattfleet:9.9"


RELABEL: dict[str, Any] = {"prometheus": {"operator": {
    "enabled": True,
    "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_label_team"], "targetLabel": "team"}],
    "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "process_.*", "action": "drop"}]}}}


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_monitors_take_user_relabelings(chart: Any, kind: str) -> None:
    values = merged(AGGREGATOR, RELABEL, {"prometheus": {"operator": {"monitorKind": kind}}})
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    objects, _ = render(chart, values)
    monitors = of_kind(objects, kind)
    assert len(monitors) == 2
    ops = RELABEL["prometheus"]["operator"]
    for monitor in monitors:
        check_operator_object(monitor)
        (ep,) = monitor["spec"]["podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"]
        assert ep["relabelings"][-1] == ops["relabelings"][0]
        assert ep["metricRelabelings"] == ops["metricRelabelings"]
        if monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "exporter":
            # The chart's own relabeling comes first and stays.
            assert ep["relabelings"][0]["targetLabel"] == "kubernetes_node"


def test_monitors_without_user_relabelings_are_unchanged(chart: Any) -> None:
    objects, _ = render(chart, merged(AGGREGATOR, {"prometheus": {"operator": {"enabled": True}}}))
    for monitor in of_kind(objects, "PodMonitor"):
        (ep,) = monitor["spec"]["podMetricsEndpoints"]
        assert "metricRelabelings" not in ep
        if monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "aggregator":
            assert "relabelings" not in ep


def test_bad_relabelings_fail_the_schema(chart: Any) -> None:
    for bad in ([{"action": "explode"}], [{"sourceLabels": ["not a label"]}], [{"target_label": "x"}]):
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema({"prometheus": {"operator": {"relabelings": bad}}})
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema({"prometheus": {"operator": {"metricRelabelings": bad}}})


def test_pod_owners_rbac_token_env_args_and_egress_follow_the_switch(chart: Any) -> None:
    objects, _ = render(chart, {})
    (role,) = of_kind(objects, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                             {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}]   # a Job's CronJob
    (binding,) = of_kind(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (sa,) = of_kind(objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    for ds in exporter_daemonsets(chart, {}):
        spec = pod_spec(ds)
        assert spec["serviceAccountName"] == sa["metadata"]["name"] and spec["automountServiceAccountToken"] is True
        (container,) = spec["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        args = parse_container_args(container)
        assert args.pod_owners is True and args.pods_refresh == 30.0 and args.api_timeout == 1.0
    (policy,) = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-exporter")]
    assert {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]} in policy["spec"]["egress"]
    for deploy in of_kind(objects, "Deployment") + of_kind(objects, "CronJob"):
        assert "automountServiceAccountToken: true" not in yaml.safe_dump(deploy)   # the aggregator never mounts it

    off = {"exporter": {"workloads": {"owners": {"enabled": False}}}}
    objects, _ = render(chart, off)
    assert of_kind(objects, "ClusterRole") == [] and of_kind(objects, "ClusterRoleBinding") == []
    for ds in exporter_daemonsets(chart, off):
        spec = pod_spec(ds)
        assert spec["automountServiceAccountToken"] is False
        assert parse_container_args(spec["containers"][0]).pod_owners is False
    (policy,) = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-exporter")]
    assert not any(6443 in [pt.get("port") for pt in rule.get("ports", [])] for rule in policy["spec"]["egress"])


# ---------------------------------------------------------------- aggregate: store access, request bounds, DuckDB

STORE_VOLUMES = {"store-token", "store-password", "store-ca", "store-tls"}
# Every file flag of `aggregate` with the volume that must hold it: (flag dest, volume, file in the volume).
STORE_FILES = {"bearer_token_file": ("store-token", "token"),
               "basic_auth_password_file": ("store-password", "password"),
               "ca_file": ("store-ca", "ca.crt"), "cert_file": ("store-tls", "tls.crt"),
               "key_file": ("store-tls", "tls.key")}


def aggregate_job(chart: Any, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], argparse.Namespace]:
    """(pod spec, container, parsed args) of the rendered aggregate CronJob."""
    (job,) = aggregate_cronjobs(render(chart, values)[0])
    spec = pod_spec(job)
    (container,) = spec["containers"]
    return spec, container, parse_container_args(container)


def test_store_credentials_are_read_only_secret_files_of_the_aggregate_pod_only(chart: Any) -> None:
    from wattfleet.aggregator.cli import store_auth

    case = MATRIX["store-token-mtls"]
    store = case["aggregator"]["store"]
    objects, _ = render(chart, case)
    spec, container, args = aggregate_job(chart, case)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    expected = {"store-token": ("mimir-reader", {"jwt": "token"}), "store-ca": ("mimir-ca", {"bundle.pem": "ca.crt"}),
                "store-tls": ("mimir-client", {"tls.crt": "tls.crt", "tls.key": "tls.key"})}
    for name, (secret, items) in expected.items():
        assert volumes[name]["secret"]["secretName"] == secret
        assert {i["key"]: i["path"] for i in volumes[name]["secret"]["items"]} == items  # only the keys it needs
        assert volumes[name]["secret"]["defaultMode"] == 0o440
        assert mounts[name]["readOnly"] is True
    assert "store-password" not in volumes
    for dest, (volume, file) in STORE_FILES.items():
        if volume in volumes:
            assert getattr(args, dest) == f"{mounts[volume]['mountPath']}/{file}", dest
    auth = store_auth(args)  # the same flags give the client its files, tenant and headers
    assert (auth.bearer_token_file, auth.ca_file, auth.cert_file, auth.key_file) == (
        args.bearer_token_file, args.ca_file, args.cert_file, args.key_file)
    assert auth.tenant == "fleet-a|fleet-b" and auth.headers == {"X-Request-Source": "wattfleet"}
    assert auth.basic_auth is None and auth.insecure_skip_verify is False
    # Secrets are referenced, never rendered, and reach no environment; the other pods see none of them.
    assert [s for s in of_kind(objects, "Secret") if s["metadata"]["name"] in ("mimir-reader", "mimir-ca")] == []
    assert not [e for e in container["env"] if "valueFrom" in e]
    for workload in aggregator_workloads(objects):
        if job_name(workload) != "aggregate":
            other = pod_spec(workload)
            assert not STORE_VOLUMES & {v["name"] for v in other["volumes"]}, job_name(workload)
            assert not any(a.startswith("--prometheus") for a in other["containers"][0]["args"])
    # The request bounds, shards and DuckDB resources reach the command.
    assert (args.query_timeout, args.max_response_bytes) == (store["queryTimeout"], store["maxResponseBytes"])
    assert (args.page_hours, args.shard_nodes, args.pre_aggregated) == (6, 0, False)
    assert (args.duckdb_memory_limit, args.duckdb_threads) == ("700MB", 2)
    assert volumes["duckdb-spill"] == {"name": "duckdb-spill", "emptyDir": {"sizeLimit": "4Gi"}}
    assert args.duckdb_temp_directory == mounts["duckdb-spill"]["mountPath"]
    assert not mounts["duckdb-spill"].get("readOnly")


def test_basic_auth_passes_the_user_and_a_password_file(chart: Any) -> None:
    spec, container, args = aggregate_job(chart, MATRIX["store-basic-pre-aggregated"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert args.basic_auth_user == "reader"
    assert args.basic_auth_password_file == "/etc/wattfleet/store-password/password"
    assert volumes["store-password"]["secret"] == {"secretName": "thanos-password", "defaultMode": 0o440,
                                                   "items": [{"key": "password", "path": "password"}]}
    assert args.bearer_token_file is None and args.pre_aggregated is True
    assert "password" not in json.dumps(container["env"])


def test_store_values_unset_render_the_arguments_of_before(chart: Any) -> None:
    """Defaults: no store flag, no request bound, no secret volume; only DuckDB's memory and threads are new."""
    spec, container, args = aggregate_job(chart, MATRIX["aggregator"])
    rest = container["args"][container["args"].index("--no-progress") + 1:]
    assert rest == ["--duckdb-memory-limit", "512MiB", "--duckdb-threads", "2"]  # half of 1Gi, 256 MiB a thread
    assert not STORE_VOLUMES & {v["name"] for v in spec["volumes"]} and "duckdb-spill" not in str(spec["volumes"])
    defaults = strict_parser().parse_args(["aggregate", "--config", "c", "--db", "d", "--prometheus", "http://x"])
    for dest in ("page_hours", "shard_nodes", "query_timeout", "max_response_bytes", "duckdb_temp_directory",
                 "bearer_token_file", "tenant", "headers", "pre_aggregated", "insecure_skip_verify"):
        assert getattr(args, dest) == getattr(defaults, dest), dest


@pytest.mark.parametrize("aggregate, config_store, memory, threads", [
    ({"resources": {"limits": {"memory": "1Gi"}}}, None, "512MiB", 2),
    ({"resources": {"limits": {"memory": "3G"}}}, None, "1430MiB", 5),       # 3e9 B / 2
    ({"resources": {"limits": {"memory": 2147483648}}}, None, "1024MiB", 4),  # plain bytes
    ({"resources": {"limits": {"memory": "1.5Gi"}}}, None, "768MiB", 3),
    ({"resources": {"limits": {"memory": "4e9"}}}, None, "1907MiB", 7),
    ({"resources": {"limits": {"memory": "300Mi"}}}, None, "150MiB", 1),
    ({"resources": {"limits": {"memory": "16Gi", "cpu": "3500m"}}}, None, "8192MiB", 4),  # at most the CPU limit
    ({"resources": {"limits": {"memory": "16Gi", "cpu": 2}}}, None, "8192MiB", 2),
    ({"resources": {"requests": {"memory": "256Mi"}, "limits": None}}, None, None, None),  # no limit: no flag
    ({"resources": {"limits": {"memory": "4Gi"}}}, {"memory_limit": "1GB"}, None, None),  # the config applies
    ({"resources": {"limits": {"memory": "4Gi"}}}, {"threads": 3}, "2048MiB", None),
    ({"resources": {"limits": {"memory": "4Gi"}}, "duckdb": {"memoryLimit": "3GB"}}, {"memory_limit": "1GB"},
     "3GB", None),
    ({"resources": {"limits": {"memory": "4Gi"}}, "duckdb": {"threads": 6}}, None, "2048MiB", 6),
])
def test_duckdb_memory_and_threads_follow_the_container_limits(chart: Any, aggregate: dict[str, Any],
                                                               config_store: dict[str, Any] | None,
                                                               memory: str | None, threads: int | None) -> None:
    from wattfleet.aggregator.store.settings import StoreSettings

    config = dict(FACILITY, store=config_store) if config_store else FACILITY
    values = merged(MATRIX["aggregator"], {"aggregator": {"config": config, "aggregate": aggregate}})
    _, _, args = aggregate_job(chart, values)
    assert (args.duckdb_memory_limit, args.duckdb_threads) == (memory, threads)
    if memory:
        StoreSettings(memory_limit=memory)  # a size the aggregator accepts


def test_store_flags_follow_each_value_alone(chart: Any) -> None:
    """One value at a time: its flag and nothing else (no memory limit, so no derived DuckDB flag)."""
    base = merged(MATRIX["aggregator"], {"aggregator": {"aggregate": {"resources": {"limits": None}}}})
    _, baseline, _ = aggregate_job(chart, base)
    cases = [
        ({"store": {"tenant": "team-a"}}, ["--prometheus.tenant", "team-a"]),
        ({"store": {"headers": {"AccountID": "0", "X-B": "b: c"}}},
         ["--prometheus.header", "AccountID: 0", "--prometheus.header", "X-B: b: c"]),
        ({"store": {"queryTimeout": 120}}, ["--query-timeout", "120"]),
        ({"store": {"maxResponseBytes": 1048576}}, ["--max-response-bytes", "1048576"]),
        ({"aggregate": {"pageHours": 1}}, ["--page-hours", "1"]),
        ({"aggregate": {"shardNodes": 0}}, ["--shard-nodes", "0"]),
        ({"aggregate": {"shardNodes": 2000}}, ["--shard-nodes", "2000"]),
        ({"aggregate": {"preAggregated": True}}, ["--pre-aggregated"]),
        ({"aggregate": {"duckdb": {"threads": 4}}}, ["--duckdb-threads", "4"]),
        ({"aggregate": {"duckdb": {"tempDirectory": {"volume": "emptyDir"}}}},
         ["--duckdb-temp-directory", "/var/tmp/duckdb"]),
        ({"store": {"tls": {"caSecret": "ca"}}}, ["--prometheus.ca-file", "/etc/wattfleet/store-ca/ca.crt"]),
        ({"store": {"tls": {"insecureSkipVerify": True}}}, ["--prometheus.insecure-skip-verify"]),
    ]
    for change, flags in cases:
        _, container, args = aggregate_job(chart, merged(base, {"aggregator": change}))
        assert container["args"] == baseline["args"] + flags, change
    _, _, args = aggregate_job(chart, merged(base, {"aggregator": {"store": {"headers": {"X-B": "b: c"}}}}))
    assert args.headers == [("X-B", "b: c")]


def test_insecure_skip_verify_reaches_the_client_of_the_aggregate_job_only_and_the_notes_warn(chart: Any) -> None:
    from wattfleet.aggregator.cli import store_auth

    values = merged(MATRIX["aggregator"], {"aggregator": {"store": {"tls": {"insecureSkipVerify": True}}}})
    objects, notes = render(chart, values)
    _, _, args = aggregate_job(chart, values)
    auth = store_auth(args)
    assert auth.insecure_skip_verify is True
    context = auth.ssl_context()   # what the client connects with: no certificate or host name check
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    for workload in aggregator_workloads(objects):
        if job_name(workload) != "aggregate":
            assert "--prometheus.insecure-skip-verify" not in pod_spec(workload)["containers"][0]["args"]
    assert "WARNING: the store's TLS certificate is not verified" in notes
    assert "not verified" not in render(chart, MATRIX["aggregator"])[1]


def test_pre_aggregated_ships_the_hourly_energy_rules_it_reads(chart: Any) -> None:
    from wattfleet.core import hourly_energy
    from wattfleet.dashboards.build import HOURLY_ENERGY_FILE

    hourly_file = CHART / "files" / HOURLY_ENERGY_FILE
    hourly_groups = yaml.safe_load(hourly_file.read_text())["groups"]
    recorded = {r["record"] for g in hourly_groups for r in g["rules"]}
    assert set(hourly_energy.RECORDED.values()) <= recorded  # what --pre-aggregated reads is recorded
    # With the rules on (the default), the group is among them, as a ConfigMap file and in the PrometheusRule.
    on = merged(MATRIX["aggregator"], {"aggregator": {"aggregate": {"preAggregated": True}}})
    (cm,) = [c for c in of_kind(render(chart, on)[0], "ConfigMap") if c["metadata"]["name"].endswith("-rules")]
    assert hourly_file.name in cm["data"] and len(cm["data"]) == len(rule_files())
    # With the rules off, preAggregated still ships that group, and only it.
    (cm,) = [c for c in of_kind(render(chart, MATRIX["store-basic-pre-aggregated"])[0], "ConfigMap")
             if c["metadata"]["name"].endswith("-rules")]
    assert {k: yaml.safe_load(v) for k, v in cm["data"].items()} == {hourly_file.name: {"groups": hourly_groups}}
    operator = merged(MATRIX["store-basic-pre-aggregated"], {"prometheus": {"operator": {"enabled": True}}})
    (rule,) = of_kind(render(chart, operator)[0], "PrometheusRule")
    assert rule["spec"]["groups"] == hourly_groups
    # Rules off and not pre-aggregated (or no aggregator): no rules at all, as before.
    for values in ({"prometheus": {"rules": {"enabled": False}}},
                   merged(MATRIX["store-basic-pre-aggregated"], {"aggregator": {"enabled": False}})):
        objects = render(chart, values)[0]
        assert not of_kind(objects, "PrometheusRule")
        assert not [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-rules")]
    _, notes = render(chart, MATRIX["store-basic-pre-aggregated"])
    assert "wattfleet-hourly-energy" in notes and "as user reader" in notes


STORE_BAD_VALUES = {
    "bearer token and basic auth": {"bearerToken": {"existingSecret": "t"},
                                    "basic": {"username": "u", "passwordSecret": "p"}},
    "user without a password Secret": {"basic": {"username": "u"}},
    "password Secret without a user": {"basic": {"passwordSecret": "p"}},
    "colon in the user name": {"basic": {"username": "a:b", "passwordSecret": "p"}},
    "secret name not a DNS name": {"bearerToken": {"existingSecret": "My_Secret"}},
    "empty secret key": {"bearerToken": {"existingSecret": "t", "key": ""}},
}
STORE_BAD_OTHER = {
    "Authorization header": {"store": {"headers": {"authorization": "Bearer x"}}},
    "tenant header": {"store": {"headers": {"X-Scope-OrgID": "a"}}},
    "header name with a space": {"store": {"headers": {"X Y": "a"}}},
    "line break in a header": {"store": {"headers": {"X-Y": "a\r\nX-Z: b"}}},
    "line break in the tenant": {"store": {"tenant": "a\nb"}},
    "zero query timeout": {"store": {"queryTimeout": 0}},
    "zero response bytes": {"store": {"maxResponseBytes": 0}},
    "unknown key in store": {"store": {"bearerTokenFile": "/x"}},
    "unknown key in tls": {"store": {"tls": {"skipVerify": True}}},
    "insecureSkipVerify as a string": {"store": {"tls": {"insecureSkipVerify": "true"}}},
    "zero page hours": {"aggregate": {"pageHours": 0}},
    "page hours past a query_range": {"aggregate": {"pageHours": 11001}},
    "negative shard nodes": {"aggregate": {"shardNodes": -1}},
    "pre-aggregated as a string": {"aggregate": {"preAggregated": "yes"}},
    "zero threads": {"aggregate": {"duckdb": {"threads": 0}}},
    "memory limit not a size": {"aggregate": {"duckdb": {"memoryLimit": "lots"}}},
    "memory limit as a quantity": {"aggregate": {"duckdb": {"memoryLimit": "1Gi"}}},
    "spill to a hostPath": {"aggregate": {"duckdb": {"tempDirectory": {"volume": "hostPath"}}}},
    "legacy env credentials and store.auth": {"prometheusAuth": {"existingSecret": "old"},
                                              "store": {"auth": {"bearerToken": {"existingSecret": "new"}}}},
}


@pytest.mark.parametrize("name", sorted(STORE_BAD_VALUES) + sorted(STORE_BAD_OTHER))
def test_bad_store_and_ingest_values_fail_the_schema(chart: Any, name: str) -> None:
    values = ({"store": {"auth": STORE_BAD_VALUES[name]}} if name in STORE_BAD_VALUES else STORE_BAD_OTHER[name])
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(merged(AGGREGATOR, {"aggregator": values}))


def test_schema_memory_limit_pattern_matches_the_aggregator() -> None:
    from wattfleet.aggregator.store.settings import StoreSettings

    schema = json.loads((CHART / "values.schema.json").read_text())
    pattern = lookup(schema, "aggregator.aggregate.duckdb.memoryLimit")["pattern"]
    regex = re.compile(pattern.replace("(?i)", ""), re.IGNORECASE)
    for text in ("512MB", "2GB", "1.5GiB", "300 MB", "1024KiB", "1tb", "10B", "1Gi", "lots", "5", "-1GB", "1.GB"):
        try:
            StoreSettings(memory_limit=text)
            accepted = True
        except ValueError:
            accepted = False
        assert bool(regex.match(text)) == accepted, text
    assert regex.match("")  # empty: derived from the container, or the config's


@pytest.mark.parametrize("values", [
    {"store": {"auth": {"bearerToken": {"existingSecret": "t"}}}},
    {"store": {"auth": {"basic": {"username": "u", "passwordSecret": "p"}}, "tls": {"caSecret": "c"}}},
    {"prometheusAuth": {"existingSecret": "old"}, "store": {"tenant": "a", "headers": {"AccountID": "0"}}},
    {"aggregate": {"pageHours": 11000, "shardNodes": 0, "duckdb": {"memoryLimit": "1.5GiB", "threads": 1}}},
], ids=["token", "basic+ca", "legacy env + tenant", "bounds"])
def test_good_store_values_pass_the_schema(chart: Any, values: dict[str, Any]) -> None:
    chart.validate_schema(merged(AGGREGATOR, {"aggregator": values}))


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("promtool") is None,
                    reason="needs openssl and promtool")
def test_rendered_aggregate_reads_a_store_behind_mtls_and_basic_auth(chart: Any, tmp_path: Path) -> None:
    """The aggregate CronJob's command, mounted Secrets and spill volume, run against a real Prometheus that
    serves only TLS, demands a client certificate from a private CA and basic auth (its --web.config.file,
    prometheus/exporter-toolkit docs/web-configuration.md)."""
    import base64
    import ssl

    import bcrypt
    from tls_fixtures import client_ca, client_cert, self_signed

    from fixtures.agg.backfill import History, Series, whole_hours_ago
    from promserver import PROMTOOL, PrometheusServer
    from wattfleet.core import catalog

    certs = tmp_path / "certs"
    certs.mkdir()
    server_cert, server_key = self_signed(certs)
    ca = client_ca(certs)
    client = client_cert(certs, ca, "wattfleet-aggregate", "DNS:wattfleet")
    web = certs / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(server_cert), "key_file": str(server_key),
                              "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(ca[0])},
        "basic_auth_users": {"reader": hashed}}))
    server = PrometheusServer(targets=[], extra_args=[f"--web.config.file={web}"])
    server.url = url = f"https://127.0.0.1:{server.port}"
    server.ready_context = ssl.create_default_context(cafile=str(server_cert))
    server.ready_context.load_cert_chain(str(client[0]), str(client[1]))
    server.ready_headers = {"Authorization": "Basic " + base64.b64encode(b"reader:s3cret").decode()}
    start = whole_hours_ago(3)
    gpu = Series(catalog.GPU_ENERGY, dict(node="par1-n1", cluster="c1", site="par1", gpu="0", uuid="GPU-a",
                                          gpu_model="H100", method="measured", source="nvml"), 300)
    History(start, 2, [gpu]).write_blocks(PROMTOOL, server.dir / "data")
    config = {"version": 1, "sites": [{"name": "par1", "zone": "FR", "pue": 1.2, "wue_liters_per_kwh": 1.0,
                                       "nodes": ["par1-*"], "grid": {"source": "static"}}]}
    objects, _ = render(chart, {"aggregator": {
        "enabled": True, "config": config, "prometheusUrl": url, "report": {"enabled": False},
        "store": {"auth": {"basic": {"username": "reader", "passwordSecret": "prom-reader"}},
                  "tls": {"caSecret": "prom-ca", "certSecret": "prom-client"}, "queryTimeout": 20},
        "aggregate": {"pageHours": 48, "shardNodes": 1, "duckdb": {"threads": 1,
                                                                  "tempDirectory": {"volume": "emptyDir"}}}}})
    (job,) = aggregate_cronjobs(objects)
    secrets = {"prom-reader": {"password": "s3cret\n"}, "prom-ca": {"ca.crt": server_cert.read_text()},
               "prom-client": {"tls.crt": client[0].read_text(), "tls.key": client[1].read_text()}}
    sandbox = PodSandbox(tmp_path / "pod", objects, job, secrets=secrets)
    with server:
        result = sandbox.run()
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"IT ([0-9.]+) kWh", result.stdout)
    assert match and 0.6 <= float(match.group(1)) < 0.7, result.stdout  # 2 h x 300 W, through TLS and auth
