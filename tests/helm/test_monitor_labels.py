"""The exporter monitor's label handling, in a real Prometheus.

The chart's PodMonitor cannot run without the Prometheus Operator, so its
endpoint is turned into the scrape config the operator generates for it: the
operator's own relabelings first (the target's namespace, pod and container
labels, from ``__meta_kubernetes_*``, set here by replacement since a static
target has no Kubernetes metadata), then the chart's ``relabelings``, and
``honorLabels``. The exporter serves workload series of pod ml/train beside
its device series. With the chart's config, workload series keep the
workload's namespace and pod and the idle ones stay without any; without it
(the operator's defaults), the workload's labels become ``exported_*`` and
every series is wattfleet's namespace: the collision the contract forbids.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from paths import REPO
from promserver import PrometheusServer
from wattfleet.core import catalog
from wattfleet.core.http import MetricsServer
from wattfleet.exporter.workloads.devices import DeviceHolder
from workload_fixtures import FakeNode, MemoryLister

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed (pip install helm-python-sdk)")
pytest.importorskip("grpc", reason="the kubernetes extra (grpcio, protobuf) is not installed")
pytestmark = pytest.mark.prometheus

EXPORTER_POD = {"__meta_kubernetes_namespace": "monitoring", "__meta_kubernetes_pod_name": "wf-exporter-x7k2p",
                "__meta_kubernetes_pod_container_name": "exporter", "__meta_kubernetes_pod_node_name": "node-a"}


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def operator_relabelings(endpoint: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What the operator puts before an endpoint's own relabelings, then those (camelCase -> snake_case)."""
    out: list[dict[str, Any]] = [{"target_label": k, "replacement": v} for k, v in EXPORTER_POD.items()]
    out += [{"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"}]
    for r in (endpoint or {}).get("relabelings", []):
        out.append({_snake(k): v for k, v in r.items()})
    return out


@pytest.fixture(scope="module")
def monitor_endpoint() -> dict[str, Any]:
    values = {"prometheus": {"operator": {"enabled": True}}}
    with helm.Chart.load(REPO / "helm" / "wattfleet") as chart:
        out = chart.render(values, name="wf", namespace="monitoring", is_install=True)
    docs = [d for k, v in out.items() if not k.endswith("NOTES.txt") for d in yaml.safe_load_all(v) if d]
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor" and d["metadata"]["name"].endswith("-exporter")]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    return dict(endpoint)


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="wf-monitor-") as d:
        node = FakeNode(Path(d), gpus=2, lister=MemoryLister([DeviceHolder("ml", "train", "main", "nvidia.com/gpu",
                                                                           "GPU-0000")]))
        cg = node.tree.add_pod("ml", "train", "0000-train")
        rel = next(r for r, c in node.tree.cgroups.items() if c is cg)
        node.step({rel: 1.0})
        node.step({rel: 1.0})
        server = MetricsServer("127.0.0.1:0", lambda: node.sampler.snapshot)
        server.start()
        try:
            yield f"127.0.0.1:{server.port}"
        finally:
            server.stop()
            node.close()


def scrape_and_query(target: str, honor: bool, relabel: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    job = {"job_name": "wattfleet-exporter", "scrape_interval": "200ms", "scrape_timeout": "200ms",
           "honor_labels": honor, "static_configs": [{"targets": [target]}], "relabel_configs": relabel}
    with PrometheusServer(extra_scrape_configs=[job]) as prom:
        prom.wait_for(catalog.WORKLOAD_ENERGY.series, min_results=5)
        return {name: [s["metric"] for s in prom.query(name)]
                for name in (catalog.WORKLOAD_ENERGY.series, catalog.GPU_ENERGY.series)}


def test_the_chart_monitor_keeps_the_workload_labels(exporter: str, monitor_endpoint: dict[str, Any]) -> None:
    got = scrape_and_query(exporter, monitor_endpoint.get("honorLabels", False),
                           operator_relabelings(monitor_endpoint))
    workload = got[catalog.WORKLOAD_ENERGY.series]
    train = [m for m in workload if m.get("share") == "workload" and m["component"] == "gpu"]
    assert [(m["namespace"], m["pod"], m["container"]) for m in train] == [("ml", "train", "main")]
    for m in workload:
        assert m.get("namespace", "") != "monitoring" and not any(k.startswith("exported_") for k in m)
        assert m["exporter_namespace"] == "monitoring" and m["exporter_pod"] == "wf-exporter-x7k2p"
        if m["share"] != "workload":
            assert not {"namespace", "pod", "container"} & set(m), m   # idle, system, unallocated: nobody's
    for m in got[catalog.GPU_ENERGY.series]:   # device series: no namespace at all
        assert not {"namespace", "pod", "container"} & set(m), m


def test_without_it_the_exporter_namespace_takes_over(exporter: str) -> None:
    """The operator's defaults (no chart relabelings, honorLabels off): the collision the chart avoids."""
    got = scrape_and_query(exporter, False, operator_relabelings(None))
    train = [m for m in got[catalog.WORKLOAD_ENERGY.series] if m.get("share") == "workload" and m["component"] == "gpu"]
    assert [(m["namespace"], m["exported_namespace"]) for m in train] == [("monitoring", "ml")]
    idle = [m for m in got[catalog.WORKLOAD_ENERGY.series] if m.get("share") == "idle"]
    assert idle and all(m["namespace"] == "monitoring" for m in idle)
