"""Pod UID -> namespace and name, from the kubelet's pod log directories.

A pod cgroup is named by the pod's UID only, and the pod-resources API names
pods without their UID. The kubelet keeps one directory per pod on the node,
``/var/log/pods/<namespace>_<name>_<uid>`` (namespace and pod names are DNS
labels and subdomains, so they hold no ``_``): listing it maps UIDs to pods
without credentials or an API-server round trip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PodName:
    namespace: str
    name: str


def read_pod_names(logs_dir: Path) -> dict[str, PodName]:
    """UID -> pod for every ``<namespace>_<name>_<uid>`` directory; empty when the directory is absent."""
    out: dict[str, PodName] = {}
    try:
        entries = os.scandir(logs_dir)
    except OSError:
        return out
    with entries:
        for entry in entries:
            parts = entry.name.split("_")
            if len(parts) == 3 and all(parts):
                out[parts[2]] = PodName(parts[0], parts[1])
    return out
