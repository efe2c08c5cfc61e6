"""From the kubelet's device ids to GPU slots and their holders.

NVIDIA's device plugin advertises a GPU as its UUID (``GPU-...``, the
default ``deviceIDStrategy``) or its index, a MIG instance as the instance's
UUID (``MIG-...``), and with time-slicing every replica as ``<id>::<n>``.
A GPU is one slot, or one slot per MIG instance when NVML lists instances;
each slot's holders are weighted by the replicas of it they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class KubeletUnavailable(Exception):
    """The List call failed; ``reason`` is the short label for collector_errors_total."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DeviceHolder:
    """One device id of one extended resource held by one container."""

    namespace: str
    pod: str
    container: str
    resource: str
    device_id: str


REPLICA_SEPARATOR = "::"
NVIDIA_PREFIX = "nvidia.com/"


class WorkloadKey(NamedTuple):
    """Who energy is attributed to (labels namespace, pod, container, workload)."""

    namespace: str
    pod: str
    container: str
    workload: str


@dataclass
class GpuInventory:
    """The GPUs NVML sees: UUID -> index, and each GPU's MIG instance UUIDs."""

    index_by_uuid: dict[str, str] = field(default_factory=dict)
    migs: dict[str, list[str]] = field(default_factory=dict)

    def gpu_of(self) -> dict[str, str]:
        """MIG UUID -> its GPU's UUID."""
        return {m: gpu for gpu, ms in self.migs.items() for m in ms}


@dataclass
class Assignment:
    """Per GPU UUID, its slots' holders; device ids that name no GPU of this node, counted."""

    slots: dict[str, list[dict[WorkloadKey, float]]] = field(default_factory=dict)
    unmatched: int = 0


def assign(holders: Iterable[DeviceHolder], inventory: GpuInventory,
           workload_of: Mapping[tuple[str, str], str] | None = None) -> Assignment:
    """Slots of every GPU in ``inventory`` with their holders.

    ``workload_of`` maps (namespace, pod) to the owner workload when known.
    Device ids of other resources (NICs, FPGAs) that name no GPU are ignored;
    ids under ``nvidia.com/`` that match nothing are counted in ``unmatched``.
    """
    owners = workload_of or {}
    by_index = {index: uuid for uuid, index in inventory.index_by_uuid.items()}
    mig_gpu = inventory.gpu_of()
    out = Assignment()
    slot_index: dict[str, int] = {}
    for uuid in inventory.index_by_uuid:
        migs = inventory.migs.get(uuid) or []
        out.slots[uuid] = [{} for _ in migs] if migs else [{}]
        for i, m in enumerate(migs):
            slot_index[m] = i
    for h in holders:
        base = h.device_id.split(REPLICA_SEPARATOR, 1)[0]
        key = WorkloadKey(h.namespace, h.pod, h.container, owners.get((h.namespace, h.pod), ""))
        if base in mig_gpu:
            slots = [out.slots[mig_gpu[base]][slot_index[base]]]
        elif base in out.slots or (h.resource.startswith(NVIDIA_PREFIX) and base in by_index):
            uuid = base if base in out.slots else by_index[base]
            slots = out.slots[uuid]  # a whole GPU: every slot of it (all of a MIG board, if one is handed out)
        else:
            if h.resource.startswith(NVIDIA_PREFIX):
                out.unmatched += 1
            continue
        for slot in slots:
            slot[key] = slot.get(key, 0.0) + 1.0
    return out
