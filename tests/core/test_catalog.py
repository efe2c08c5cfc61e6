"""The metric catalog itself: names lint-clean, units in names, no duplicates."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client.core import Metric as PromMetric
from prometheus_client.exposition import generate_latest

from paths import REPO
from promserver import PROMTOOL
from wattfleet.core import catalog


def test_names_are_unique_and_prefixed() -> None:
    names = [m.name for m in catalog.all_metrics()]
    assert len(names) == len(set(names))
    assert all(n.startswith("wattfleet_") for n in names)


def test_units_appear_in_names() -> None:
    for m in catalog.all_metrics():
        if m.unit:
            assert m.name.endswith("_" + m.unit), m.name


def test_lookup_accepts_family_and_sample_names() -> None:
    assert catalog.lookup("wattfleet_gpu_energy_joules_total") is catalog.GPU_ENERGY
    assert catalog.lookup("wattfleet_gpu_energy_joules") is catalog.GPU_ENERGY
    assert catalog.lookup("wattfleet_build_info") is catalog.BUILD_INFO
    with pytest.raises(KeyError, match="not in the wattfleet metric catalog"):
        catalog.lookup("wattfleet_nope")


class _All:
    def collect(self):
        for m in catalog.all_metrics():
            family = PromMetric(m.name, m.help, m.kind)
            family.add_sample(m.series, {label: "x" for label in m.all_labels}, 1.0)
            yield family


@pytest.mark.prometheus
def test_promtool_check_metrics_accepts_the_whole_catalog() -> None:
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=generate_latest(_All()), capture_output=True)
    assert (proc.stdout + proc.stderr).decode() == ""


def test_readme_metric_table_is_the_catalog() -> None:
    """README's metrics table is generated: `python -m wattfleet.core.catalog`."""

    readme = (REPO / "README.md").read_text()
    start, end = "<!-- metrics-table -->\n", "\n<!-- /metrics-table -->"
    assert start in readme and end in readme, "README.md lacks the metrics-table markers"
    assert readme.split(start, 1)[1].split(end, 1)[0] == catalog.markdown_table()
