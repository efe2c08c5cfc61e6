"""Workload cgroups (cgroup v2) and their CPU time; the node's busy time from /proc/stat.

A workload is a cgroup whose path under the cgroup root matches a pattern:
segments separated by ``/``, ``*`` matching any run of characters inside one
segment, and one ``{id}`` placeholder naming the workload. Presets:

* ``kubernetes``: pod cgroups of the systemd driver
  (``kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice``,
  guaranteed pods one level up) and of the cgroupfs driver
  (``kubepods/burstable/pod<uid>``); the id is the pod UID (systemd writes
  its dashes as underscores; they are turned back).
* ``slurm``: ``system.slice/slurmstepd.scope/job_<id>`` (Slurm's cgroup/v2
  plugin), workload ``slurm/<id>``.

Any other batch system: ``KIND:PATTERN``, e.g.
``pbs:pbspro.slice/pbspro-{id}.slice`` gives workload ``pbs/<id>``.

A cgroup's CPU time is ``usage_usec`` of its ``cpu.stat``, which counts its
descendants too (a pod's containers, a job's steps).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES = "kubernetes"

PRESETS: dict[str, tuple[str, ...]] = {
    KUBERNETES: (
        "kubepods.slice/kubepods-pod{id}.slice",
        "kubepods.slice/kubepods-*.slice/kubepods-*-pod{id}.slice",
        "kubepods/pod{id}",
        "kubepods/*/pod{id}",
    ),
    "slurm": ("system.slice/slurmstepd.scope/job_{id}",),
}

_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.:@{}*-]+$")


class CgroupPatternError(ValueError):
    """A --workload-cgroups value that is not a preset or KIND:PATTERN; the message says what is wrong."""


@dataclass(frozen=True)
class CgroupPattern:
    """One pattern: ``kind`` names the workload system, ``segments`` match path parts in order."""

    kind: str
    text: str
    segments: tuple[re.Pattern[str], ...]
    id_segment: int


def _compile(kind: str, text: str) -> CgroupPattern:
    parts = text.strip("/").split("/")
    if text.count("{id}") != 1:
        raise CgroupPatternError(f"{kind}:{text}: the pattern must hold {{id}} exactly once")
    segments, id_segment = [], -1
    for i, part in enumerate(parts):
        if not part or part in (".", "..") or not _SEGMENT.match(part) or "{" in part.replace("{id}", ""):
            raise CgroupPatternError(f"{kind}:{text}: segment {part!r} is not a cgroup name "
                                     "(letters, digits, _ . : @ -, * and {id})")
        regex = "".join("(?P<id>[^/]+?)" if tok == "{id}" else ".*" if tok == "*" else re.escape(tok)
                        for tok in re.split(r"(\{id\}|\*)", part) if tok)
        if "{id}" in part:
            id_segment = i
        segments.append(re.compile(f"^{regex}$"))
    return CgroupPattern(kind, text, tuple(segments), id_segment)


def parse_patterns(values: Iterable[str]) -> list[CgroupPattern]:
    """``kubernetes``, ``slurm`` or ``KIND:PATTERN`` values -> compiled patterns; CgroupPatternError otherwise."""
    out: list[CgroupPattern] = []
    for value in values:
        value = value.strip()
        if value in PRESETS:
            out.extend(_compile(value, text) for text in PRESETS[value])
            continue
        kind, sep, text = value.partition(":")
        if not sep or not _KIND.match(kind) or not text:
            raise CgroupPatternError(f"{value!r}: expected {', '.join(PRESETS)} or KIND:PATTERN "
                                     "(e.g. pbs:pbspro.slice/pbspro-{id}.slice)")
        if kind == KUBERNETES:
            raise CgroupPatternError(f"{value!r}: kind {KUBERNETES!r} is the preset; name custom patterns otherwise")
        out.append(_compile(kind, text))
    return out


@dataclass(frozen=True)
class Workload:
    """A matched cgroup: ``kind`` (pattern kind) and ``id`` (pod UID, job id)."""

    kind: str
    id: str


def _match_id(pattern: CgroupPattern, name: str) -> str | None:
    m = pattern.segments[pattern.id_segment].match(name)
    if m is None:
        return None
    ident = m.group("id")
    return ident.replace("_", "-") if pattern.kind == KUBERNETES else ident


@dataclass
class _Step:
    """One level of the patterns' walk: segments that continue below it, patterns that end at it."""

    children: list[tuple[re.Pattern[str], _Step]]
    ends: list[CgroupPattern]


def _walk_plan(patterns: Iterable[CgroupPattern]) -> _Step:
    """The patterns merged into one tree, so a directory several patterns pass through is listed once."""
    top = _Step([], [])
    for pattern in patterns:
        step = top
        for segment in pattern.segments:
            nxt = next((child for regex, child in step.children if regex.pattern == segment.pattern), None)
            if nxt is None:
                nxt = _Step([], [])
                step.children.append((segment, nxt))
            step = nxt
        step.ends.append(pattern)
    return top


def scan(root: str, patterns: Iterable[CgroupPattern]) -> dict[str, Workload]:
    """Every cgroup directory under ``root`` that a pattern matches (first pattern wins), by path.

    One ``os.scandir`` per directory on the patterns' paths, plain strings: this
    runs every sample over hundreds of directories, where pathlib's object
    churn and listing a directory once per pattern were most of the cost.
    """
    found: dict[str, Workload] = {}
    ordered = list(patterns)
    rank = {id(p): i for i, p in enumerate(ordered)}
    matches: list[tuple[int, str, Workload]] = []
    stack = [(root, _walk_plan(ordered))]
    while stack:
        parent, step = stack.pop()
        try:
            with os.scandir(parent) as entries:
                listed = [(e.name, e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue  # vanished or unreadable: nothing below it this time
        for regex, child in step.children:
            for name, path in listed:
                if not regex.match(name):
                    continue
                for pattern in child.ends:
                    part = name if pattern.id_segment == len(pattern.segments) - 1 else \
                        path.split(os.sep)[pattern.id_segment - len(pattern.segments)]
                    ident = _match_id(pattern, part)
                    if ident:
                        matches.append((rank[id(pattern)], path, Workload(pattern.kind, ident)))
                if child.children:
                    stack.append((path, child))
    for _, path, workload in sorted(matches, key=lambda m: m[0]):
        found.setdefault(path, workload)
    return found


def read_usage_usec(cgroup: str) -> int | None:
    """``usage_usec`` of ``cgroup/cpu.stat``; None when the cgroup is gone or the file is not cgroup v2's."""
    try:
        fd = os.open(cgroup + "/cpu.stat", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    start = data.find(b"usage_usec ")
    if start != 0 and (start < 0 or data[start - 1:start] != b"\n"):
        return None
    end = data.find(b"\n", start)
    try:
        value = int(data[start + 11:end if end >= 0 else len(data)])
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative jiffies of all CPUs: busy (not idle, not iowait) and total."""

    busy: int
    total: int


class ProcStatError(Exception):
    """/proc/stat unreadable or not in the kernel's format; the message names the file and field."""


def read_cpu_times(path: Path) -> CpuTimes:
    """The ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq steal ...), in jiffies.

    Guest time is already inside user and nice, so it is not added again.
    """
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError as exc:
        raise ProcStatError(f"{path}: unreadable ({exc.strerror or exc})") from None
    fields = first.split()
    if len(fields) < 5 or fields[0] != b"cpu":
        raise ProcStatError(f"{path}:1: expected the aggregate 'cpu' line, got {first[:40]!r}")
    try:
        values = [int(v) for v in fields[1:9]]
    except ValueError:
        raise ProcStatError(f"{path}:1: field 'cpu': not integers: {first[:80]!r}") from None
    if any(v < 0 for v in values):
        raise ProcStatError(f"{path}:1: field 'cpu': negative time")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values)
    return CpuTimes(total - idle, total)


USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
"""Jiffies per second of /proc/stat (USER_HZ, 100 on every Linux architecture in use)."""
