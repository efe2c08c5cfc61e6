"""Fault injection: which fault hits which simulated node, and when.

Faults are scheduled in simulated seconds since the fleet's start, so a spec
like ``gpu_lost:node=4,at=2h,for=30m`` names the same moment whatever the
``--acceleration``, live or in a backfill. Each kind imitates what real
fleets do to an exporter (sensor errors, lost GPUs, RAPL wrap storms, exporter
restarts, clock skew); :class:`~wattfleet.sim.node.SimNode` applies them at every tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wattfleet.sim.timespec import parse_duration

FAULT_KINDS = ("sensor_error", "gpu_lost", "rapl_wrap_storm", "exporter_restart", "clock_skew")


@dataclass
class Fault:
    """One injected fault on one node, from simulated second ``at`` for ``duration`` seconds.

    ``node`` is a node name or index. ``sensor`` (``nvml``/``rapl``) applies to
    ``sensor_error``; ``gpu`` to ``sensor_error``/``gpu_lost`` (None: every GPU);
    ``seconds`` is the wall-clock offset of ``clock_skew``; ``range_joules``
    the RAPL wrap range of ``rapl_wrap_storm`` (None: about 2.5 sample steps at full load).
    ``exporter_restart`` happens once at ``at``; with ``state=file`` the node's exporter
    runs with a ``--state-file`` (in the fleet's workdir) and the restart continues its counters;
    ``rapl_wrap_storm`` lasts the whole run.
    """

    kind: str
    node: str
    at: float = 0.0
    duration: float = math.inf
    gpu: int | None = None
    sensor: str = "nvml"
    seconds: float = 0.0
    range_joules: float | None = None
    state: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} unknown; one of {', '.join(FAULT_KINDS)}")
        if self.sensor not in ("nvml", "rapl"):
            raise ValueError(f"fault field 'sensor' must be nvml or rapl, got {self.sensor!r}")
        if self.at < 0 or self.duration <= 0:
            raise ValueError("fault fields 'at' must be >= 0 and 'for' > 0")

    def active(self, elapsed: float) -> bool:
        """Whether the fault holds ``elapsed`` simulated seconds into the run (its window is half-open)."""
        return self.at <= elapsed < self.at + self.duration

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND:node=N[,gpu=I][,sensor=nvml|rapl][,at=DUR][,for=DUR][,seconds=S][,range_joules=J]``."""
        kind, _, rest = spec.partition(":")
        kwargs: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise ValueError(f"fault {spec!r}: field {item!r} must be key=value")
            try:
                if key == "node":
                    kwargs["node"] = value.strip()
                elif key == "gpu":
                    kwargs["gpu"] = int(value)
                elif key == "sensor":
                    kwargs["sensor"] = value.strip()
                elif key == "at":
                    kwargs["at"] = parse_duration(value, "fault field 'at'")
                elif key == "for":
                    kwargs["duration"] = parse_duration(value, "fault field 'for'")
                elif key in ("seconds", "range_joules"):
                    kwargs[key] = float(value)
                elif key == "state":
                    if value.strip() not in ("file", "none"):
                        raise ValueError(f"field 'state' must be file or none, got {value.strip()!r}")
                    kwargs["state"] = value.strip() == "file"
                else:
                    raise ValueError(f"unknown field {key!r} (node, gpu, sensor, at, for, seconds, range_joules, "
                                     "state)")
            except ValueError as exc:
                raise ValueError(f"fault {spec!r}: {exc}") from None
        if "node" not in kwargs:
            raise ValueError(f"fault {spec!r}: field 'node' is required")
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise ValueError(f"fault {spec!r}: {exc}") from None


def faults_by_node(faults: Iterable[Fault], names: list[str]) -> dict[str, list[Fault]]:
    """Each node's faults; a fault names its node by name or index, and a node that does not exist is an error."""
    by_node: dict[str, list[Fault]] = {n: [] for n in names}
    for f in faults:
        name = f.node
        if name.isdigit():
            if int(name) >= len(names):
                raise ValueError(f"fault {f.kind}: node index {name} out of range (fleet has {len(names)} nodes)")
            name = names[int(name)]
        if name not in by_node:
            raise ValueError(f"fault {f.kind}: no node named {f.node!r}")
        by_node[name].append(f)
    return by_node
