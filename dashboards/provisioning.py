"""Grafana provisioning files: a Prometheus datasource and a file provider for our dashboards.

Format: https://grafana.com/docs/grafana/latest/administration/provisioning/
(``apiVersion: 1``). The datasource uid is fixed so that the dashboards'
``datasource`` variable finds it by default on a fresh Grafana.
"""

from __future__ import annotations

from typing import Any

DATASOURCE_NAME = "Prometheus"
DATASOURCE_UID = "wattfleet-prometheus"
FOLDER = "wattfleet"


def datasources(prometheus_url: str = "http://prometheus:9090", scrape_interval: str = "15s") -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{
        "name": DATASOURCE_NAME, "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": prometheus_url, "isDefault": True, "editable": False,
        # Grafana's $__rate_interval is 4x this: it must match the real scrape interval.
        "jsonData": {"timeInterval": scrape_interval, "httpMethod": "POST"},
    }]}


def dashboard_provider(path: str = "/var/lib/grafana/dashboards/wattfleet") -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "wattfleet", "orgId": 1, "folder": FOLDER, "type": "file", "disableDeletion": False,
        "allowUiUpdates": False, "updateIntervalSeconds": 60, "options": {"path": path},
    }]}
