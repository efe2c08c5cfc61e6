"""``wattfleet simulate``: serve a simulated fleet of exporters for a real Prometheus, or backfill one.

Only the command line lives here: flags, their checks (bad input exits 2 with
the reason), and the choice between serving a live
:class:`~wattfleet.sim.fleet.Fleet` until SIGTERM/SIGINT and writing an
OpenMetrics file with :func:`~wattfleet.sim.backfill.write_backfill`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wattfleet.core.logs import add_log_arguments
from wattfleet.core.signals import wait_for_stop_signal
from wattfleet.core.units import JOULES_PER_KWH
from wattfleet.sim.backfill import write_backfill
from wattfleet.sim.config import DEFAULT_SITES, FleetConfig, parse_sites
from wattfleet.sim.faults import FAULT_KINDS, Fault
from wattfleet.sim.fleet import Fleet
from wattfleet.sim.timespec import parse_duration, parse_time

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The simulator's flags, grouped as the fleet, live serving and backfill."""
    g = p.add_argument_group("fleet")
    g.add_argument("--nodes", type=int, default=4, help="simulated nodes (default 4)")
    g.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    g.add_argument("--gpu-models", default="h100", metavar="LIST",
                   help="comma-separated GPU models assigned to nodes round-robin: h100, a100 (default h100)")
    g.add_argument("--sites", default=",".join(f"{s}:{z}" for s, z in DEFAULT_SITES), metavar="LIST",
                   help="comma-separated SITE:ZONE (or ZONE) assigned to nodes round-robin "
                        "(default dc-ciso:CISO,dc-bpat:BPAT,dc-miso:MISO)")
    g.add_argument("--cluster", default="sim", help="value of the cluster label (default sim)")
    g.add_argument("--sockets", type=int, default=2, help="CPU sockets (RAPL package + dram zones) per node")
    g.add_argument("--estimated-cpu-every", type=int, default=0, metavar="N",
                   help="every Nth node has no RAPL and reports estimated CPU energy (default 0: none)")
    g.add_argument("--trace", type=Path, metavar="CSV",
                   help="hourly workload trace (index,cpu_load); default $WATTFLEET_WORKLOAD_TRACE or the "
                        "shared Alibaba trace")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault, repeatable: KIND:node=N[,gpu=I][,sensor=nvml|rapl][,at=DUR][,for=DUR]"
                        "[,seconds=S][,range_joules=J][,state=file|none]; KIND is one of " + ", ".join(FAULT_KINDS)
                        + "; exporter_restart with state=file: the node's exporter keeps a --state-file")
    g.add_argument("--pods", action="store_true",
                   help="each node runs Kubernetes pods (training, web, batch Job, DaemonSet) that the exporter's "
                        "workload collector attributes (wattfleet_workload_energy_joules_total) through a fake "
                        "kubelet, cgroup tree and API server; live serving only (needs the kubernetes extra)")
    g = p.add_argument_group("live serving")
    g.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="real seconds between samples (default 1.0)")
    g.add_argument("--acceleration", type=float, default=1.0, metavar="K",
                   help="simulated seconds per real second (default 1; 1440 makes a day pass in a minute)")
    g.add_argument("--start", metavar="TIME", help="simulated start, unix seconds or ISO 8601 (default now)")
    g.add_argument("--listen-host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=0, help="port of the fleet server (default: a free port)")
    g.add_argument("--serve", choices=("paths", "ports"), default="paths",
                   help="paths: one server, /nodes/<name>/metrics per node (default); ports: one port per node")
    g.add_argument("--base-port", type=int, default=0, help="ports mode: first node's port (default: free ports)")
    g.add_argument("--dump-file-sd", metavar="FILE", help="write the targets as Prometheus file_sd JSON")
    g.add_argument("--duration", default="0", metavar="DUR",
                   help="stop after this much real time (default 0: until SIGTERM/SIGINT)")
    g = p.add_argument_group("backfill")
    g.add_argument("--backfill-openmetrics", metavar="FILE",
                   help="instead of serving, write the counters for --span as OpenMetrics with timestamps")
    g.add_argument("--span", default="1d", metavar="DUR", help="backfill span (default 1d)")
    g.add_argument("--step", default="60s", metavar="DUR", help="backfill sample step (default 60s)")
    g.add_argument("--end", metavar="TIME", help="backfill end, unix seconds or ISO 8601 (default now)")
    g.add_argument("--with-corrections", action="store_true",
                   help="backfill also the wrap/reset correction counters (larger file)")
    g.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="write each simulated node's series N times under node names <node>-rNNN "
                        "(scale a store's load without simulating every node; default 1)")
    add_log_arguments(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the ``wattfleet`` command (see :mod:`wattfleet.cli`)."""
    p = sub.add_parser("simulate", help="serve a simulated fleet of exporters (or backfill one)",
                       description="A fleet of simulated nodes, each a real wattfleet exporter (sampler, NVML and "
                                   "RAPL sensors) over fake hardware driven by real workload traces, served from "
                                   "one process for a real Prometheus to scrape; or an OpenMetrics backfill file.")
    add_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    """The fleet the flags describe; bad input raises ValueError saying what is wrong."""
    return FleetConfig(
        nodes=args.nodes, gpus_per_node=args.gpus_per_node,
        gpu_models=tuple(m.strip() for m in args.gpu_models.split(",") if m.strip()),
        sites=parse_sites(args.sites), cluster=args.cluster, interval=args.interval,
        acceleration=args.acceleration, start=parse_time(args.start) if args.start else None, seed=args.seed,
        trace=args.trace, sockets=args.sockets, estimated_cpu_every=args.estimated_cpu_every,
        faults=[Fault.parse(s) for s in args.fault], pods=args.pods)


def run(args: argparse.Namespace) -> int:
    """Check every flag before doing anything, then backfill or serve; 2 on bad input, 0 otherwise."""
    try:
        config = config_from_args(args)
        config.validate()
        duration = parse_duration(args.duration, "--duration")
        if args.backfill_openmetrics:
            span, step = parse_duration(args.span, "--span"), parse_duration(args.step, "--step")
            end = parse_time(args.end) if args.end else None
            if step <= 0 or span < step:
                raise ValueError(f"--step {args.step} must be positive and no longer than --span {args.span}")
            if args.replicas < 1:
                raise ValueError(f"--replicas must be at least 1, got {args.replicas}")
            if args.pods:
                raise ValueError("--pods is for live serving: the backfill writes device counters only")
    except ValueError as exc:
        print(f"wattfleet simulate: {exc}", file=sys.stderr)
        return 2
    if args.backfill_openmetrics:
        summary = write_backfill(config, args.backfill_openmetrics, span, step, end, args.with_corrections,
                                 progress=lambda i, n: log.info("backfill step %d/%d", i, n),
                                 replicas=args.replicas)
        true_kwh = sum(summary.true_gpu_joules.values()) / JOULES_PER_KWH
        print(f"wrote {args.backfill_openmetrics}: {summary.samples} samples, {summary.bytes / 1e6:.1f} MB, "
              f"{summary.nodes} nodes x {args.gpus_per_node} GPUs, {summary.steps} steps of {step:g}s "
              f"({summary.device_hours:.0f} GPU-hours) in {summary.seconds:.1f}s; GPU energy {true_kwh:.3f} kWh")
        print(f"load it with: promtool tsdb create-blocks-from openmetrics {args.backfill_openmetrics} DATA_DIR")
        return 0
    try:
        fleet = Fleet(config)
    except ValueError as exc:  # --pods without the kubernetes extra
        print(f"wattfleet simulate: {exc}", file=sys.stderr)
        return 2
    try:
        fleet.serve(args.listen_host, args.port, args.serve, args.base_port)
    except (ValueError, OSError) as exc:  # a bad --listen-host or a port in use: a usage error, not a traceback
        print(f"wattfleet simulate: cannot listen on {args.listen_host}: {getattr(exc, 'strerror', None) or exc}",
              file=sys.stderr)
        return 2
    if args.dump_file_sd:
        fleet.dump_file_sd(args.dump_file_sd)
    fleet.start()
    log.info("simulating %d nodes x %d GPUs at %s (status %s/sim/status)", config.nodes, config.gpus_per_node,
             fleet.url, fleet.url)
    wait_for_stop_signal(duration if duration > 0 else None)
    fleet.stop()
    return 0
