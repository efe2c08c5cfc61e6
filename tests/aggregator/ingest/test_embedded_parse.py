"""The embedded scraper's fast path for plain lines reads exactly what prometheus_client's parser reads."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from wattfleet.aggregator.ingest.embedded import KEPT, KEPT_FOR_INFERENCE, parse_exposition
from wattfleet.core import catalog

WANTED = {m.series: m for m in KEPT + KEPT_FOR_INFERENCE}


def reference(text: str) -> list[tuple[str, dict[str, str], float]]:
    """What parse_exposition returned before the fast path: every kept line through prometheus_client."""
    prefixes = tuple(f"{name}{sep}" for name in WANTED for sep in ("{", " "))
    kept = "\n".join(line for line in text.splitlines() if line.startswith(prefixes)) + "\n"
    out = []
    for family in text_string_to_metric_families(kept):
        for s in family.samples:
            metric = WANTED.get(s.name)
            if metric is None:
                continue
            if metric is catalog.CPU_ENERGY and s.labels.get("domain") not in catalog.RAPL_IT_DOMAINS:
                continue
            if metric is catalog.INFERENCE_PROMPT_TOKENS and s.labels.get("source") not in catalog.PROMPT_SOURCES:
                continue
            out.append((metric.name, dict(s.labels), float(s.value)))
    return out


def _key(row: tuple[str, dict[str, str], float]) -> tuple[str, str, str]:
    name, labels, value = row
    return name, repr(sorted(labels.items())), "nan" if math.isnan(value) else repr(value)


def outcome(fn: object, text: str) -> object:
    try:
        return sorted(map(_key, fn(text)))  # type: ignore[operator]
    except ValueError:
        return "ValueError"


names = st.sampled_from([*WANTED, "wattfleet_gpu_power_watts", "wattfleet_cpu_energy_joules_total_x"])
label_names = st.sampled_from(["node", "domain", "source", "gpu", "a_b", "__name__", "le:x", "9x"])
label_values = st.one_of(st.sampled_from(["package", "dram", "psys", "computed", "guessed", ""]),
                         st.text(alphabet='ab\\"\n ,={}é', max_size=6))
values = st.one_of(st.floats(allow_nan=True).map(repr), st.integers().map(str),
                   st.sampled_from(["+Inf", "-Inf", "NaN", "1e", "1_0", "0x10", " 5", "5 1700000000000", "\t5"]))


@st.composite
def lines(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(label_names, label_values), max_size=4))
    body = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), "")}"'
                    if draw(st.booleans()) else f'{k}="{v}"' for k, v in pairs)
    sep = draw(st.sampled_from([" ", "  ", "\t"])) if draw(st.integers(0, 9)) == 0 else " "
    comma = "," if pairs and draw(st.integers(0, 9)) == 0 else ""
    return f"{draw(names)}{{{body}{comma}}}{sep}{draw(values)}"


@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), max_size=6))
def test_fast_path_reads_what_the_parser_reads(rows: list[str]) -> None:
    text = "\n".join(["# TYPE wattfleet_gpu_energy_joules counter", *rows, ""])
    assert outcome(parse_exposition, text) == outcome(reference, text)


def test_exporter_pages_read_the_same(tmp_path: object) -> None:
    """A simulated node's whole page (GPU, RAPL, engines, pods): every kept series, same labels and values."""
    pytest.importorskip("grpc", reason="the kubernetes extra (grpcio, protobuf) is not installed")
    from wattfleet.sim.config import FleetConfig  # lazy: the simulator is only this test's source of a page
    from wattfleet.sim.fleet import Fleet  # lazy: as above

    with Fleet(FleetConfig(nodes=2, gpus_per_node=4, acceleration=900.0, start=1.79e9, engines=True,
                           pods=True)) as fleet:
        fleet.step(3)
        for node in fleet.nodes:
            assert node.sampler.snapshot is not None
            text = node.sampler.snapshot.body.decode()
            assert len(parse_exposition(text)) > 40
            assert outcome(parse_exposition, text) == outcome(reference, text)
