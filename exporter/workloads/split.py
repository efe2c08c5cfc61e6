"""Splitting one interval's measured energy between workloads: the formulas' one home.

Both splits hand out exactly the joules they are given: every part is a
share of the input and the last part is what is left, so the parts add up to
the measured energy (to float rounding) and nothing is created or lost.

* :func:`split_device`: a GPU's energy over its slots (the whole board, or
  each MIG instance equally: NVML reports no per-instance power), each slot's
  part over the containers holding it in proportion to the replicas they hold
  (time-slicing gives every replica an equal share: NVML's per-process
  utilization is not used); a slot nobody holds is ``unallocated``.
* :func:`split_cpu`: a CPU or DRAM interval's energy into ``idle`` (the
  node's idle fraction of the interval) and the active rest, the active part
  over workload cgroups by their CPU time, the remainder (kernel, daemons,
  kubelet, processes outside every workload cgroup) ``system``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")


@dataclass
class DeviceSplit(Generic[K]):
    """Joules per holder, and the part no holder had."""

    holders: dict[K, float] = field(default_factory=dict)
    unallocated: float = 0.0


def split_device(joules: float, slots: Sequence[Mapping[K, float]]) -> DeviceSplit[K]:
    """``joules`` of one device over ``slots`` (equal parts), each over its holders by weight.

    ``slots[i]`` maps a holder to its weight in slot i (replicas held); an
    empty slot, a device with no slot, and weights that are not positive give
    their part to ``unallocated``.
    """
    out: DeviceSplit[K] = DeviceSplit()
    if joules <= 0:
        return out
    if not slots:
        out.unallocated = joules
        return out
    per_slot = joules / len(slots)
    for slot in slots:
        weights = {k: w for k, w in slot.items() if w > 0}
        total = sum(weights.values())
        if total <= 0:
            out.unallocated += per_slot
            continue
        for k, w in weights.items():
            out.holders[k] = out.holders.get(k, 0.0) + per_slot * (w / total)
    # Unallocated is what is left (never below 0 from rounding): the parts add up to ``joules``.
    out.unallocated = max(joules - sum(out.holders.values()), 0.0)
    return out


@dataclass
class CpuSplit(Generic[K]):
    """Joules per workload, the idle part and the system part of one interval."""

    workloads: dict[K, float] = field(default_factory=dict)
    idle: float = 0.0
    system: float = 0.0


def split_cpu(joules: float, busy_ratio: float, busy_seconds: float,
              usage_seconds: Mapping[K, float]) -> CpuSplit[K]:
    """``joules`` over one interval in which the node's CPUs were busy ``busy_ratio`` of the time.

    ``busy_seconds``: CPU time the whole node spent busy (all CPUs, from
    /proc/stat); ``usage_seconds``: CPU time of each workload cgroup over the
    same interval. The active part (``joules x busy_ratio``) goes to the
    workloads in proportion to their CPU time out of the node's busy time;
    the rest of it is ``system``. The two clocks are read a few microseconds
    apart, so workloads may add up to slightly more than the node: the larger
    of the two is the denominator, and system is then 0, never negative.
    """
    out: CpuSplit[K] = CpuSplit()
    if joules <= 0:
        return out
    ratio = min(max(busy_ratio, 0.0), 1.0)
    usage = {k: u for k, u in usage_seconds.items() if u > 0}
    denominator = max(busy_seconds, sum(usage.values()))
    if ratio <= 0 or denominator <= 0:
        out.idle = joules
        return out
    active = joules * ratio
    for k, u in usage.items():
        out.workloads[k] = active * (u / denominator)
    out.idle = max(joules - active, 0.0)
    # System is what is left (never below 0 from rounding): the parts add up to ``joules``.
    out.system = max(joules - out.idle - sum(out.workloads.values()), 0.0)
    return out
