"""``wattfleet exporter``: the per-node daemon's flags and entry point.

``add_arguments`` is the single definition of the exporter's flags; the Helm
chart's tests read it so that the DaemonSet's arguments cannot drift.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from wattfleet import __version__
from wattfleet.core.addresses import listen_address
from wattfleet.core.flags import DeprecatedAlias, add_deprecated_alias, note_deprecated
from wattfleet.core.http import MetricsServer
from wattfleet.core.logs import add_log_arguments
from wattfleet.core.signals import wait_for_stop_signal
from wattfleet.core.webconfig import WebConfigError, load_web_config
from wattfleet.exporter.inference.config import InferenceConfigError
from wattfleet.exporter.process_metrics import with_process_metrics
from wattfleet.exporter.sampler import Sampler
from wattfleet.exporter.sensors.base import Sensor, SensorUnavailable
from wattfleet.exporter.sensors.host import CpuPowerModel, HostSensor
from wattfleet.exporter.sensors.nvml import Nvml, NvmlSensor
from wattfleet.exporter.sensors.rapl import RaplSensor
from wattfleet.exporter.state import StateError, StateFile
from wattfleet.exporter.workloads import attach as workloads

log = logging.getLogger(__name__)

DEFAULT_PORT = 9880
COLLECTOR_HELP = {
    "nvml": "GPU energy, power and utilization from NVML",
    "rapl": "CPU package and DRAM energy from the RAPL powercap tree",
    "host": "host utilization, and estimated CPU/DRAM energy (see --estimate-cpu)",
    "inference": "LLM serving engines' token and phase counters (see --inference-config)",
    "workload": "energy by pod and batch job (see --kubelet.pod-resources-socket, --workload-cgroups)",
}
COLLECTORS = tuple(COLLECTOR_HELP)


class CollectorSwitch(argparse.Action):
    """``--collector.NAME`` turns a collector on, ``--no-collector.NAME`` off (node_exporter's spelling).

    Both edit one list, ``disable_collector``, so the last flag given for a collector wins.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, collector: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.collector = collector

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        disabled = [c for c in getattr(namespace, self.dest, None) or [] if c != self.collector]
        if option_string is not None and option_string.startswith("--no-"):
            disabled.append(self.collector)
        setattr(namespace, self.dest, disabled)


class DisableCollector(DeprecatedAlias):
    """The deprecated ``--disable-collector NAME``: the same as ``--no-collector.NAME``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        disabled = [c for c in getattr(namespace, self.dest, None) or [] if c != values] + [values]
        setattr(namespace, self.dest, disabled)
        note_deprecated(namespace, option_string or "--disable-collector", f"--no-collector.{values}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web.listen-address", dest="listen_address", type=listen_address, default=f":{DEFAULT_PORT}",
                   metavar="HOST:PORT",
                   help=f"address to serve /metrics on: HOST:PORT, [IPv6]:PORT, or :PORT for every IPv4 and IPv6 "
                        f"address (default :{DEFAULT_PORT})")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                   help="TLS and basic-auth config in the Prometheus exporter-toolkit web config format")
    for name, what in COLLECTOR_HELP.items():
        p.add_argument(f"--collector.{name}", f"--no-collector.{name}", dest="disable_collector",
                       action=CollectorSwitch, collector=name, help=f"{what} (default: enabled)")
    p.set_defaults(disable_collector=[])
    add_log_arguments(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="sampling period; scrapes serve the last sample (default 1.0)")
    p.add_argument("--sysfs-root", default="/sys", metavar="DIR",
                   help="root of sysfs; RAPL is read under DIR/class/powercap (default /sys)")
    p.add_argument("--node", default=socket.gethostname(), help="value of the node label (default: hostname)")
    p.add_argument("--cluster", default="", help="value of the cluster label")
    p.add_argument("--site", default="", help="value of the site label (joins PUE, WUE and grid zone)")
    p.add_argument("--rapl-max-watts", type=float, default=5000.0, metavar="WATTS",
                   help="plausibility bound per RAPL zone: tells a wrap from a reset, and a reading implying "
                        "more is rejected and counted (default 5000)")
    p.add_argument("--gpu-max-watts", type=float, default=5000.0, metavar="WATTS",
                   help="plausibility bound per GPU: a counter or power reading implying more is rejected and "
                        "counted (default 5000)")
    p.add_argument("--estimate-cpu", choices=("auto", "always", "never"), default="auto",
                   help="estimated CPU/DRAM energy: when RAPL is unreadable (auto), always, or never")
    p.add_argument("--cpu-idle-watts-per-core", type=float, default=0.71, metavar="WATTS",
                   help="estimated model: idle watts per logical CPU (default 0.71, CCF)")
    p.add_argument("--cpu-max-watts-per-core", type=float, default=3.5, metavar="WATTS",
                   help="estimated model: full-load watts per logical CPU (default 3.5, CCF)")
    p.add_argument("--memory-watts-per-gb", type=float, default=0.392, metavar="WATTS",
                   help="estimated model: watts per GB of installed memory (default 0.392, CCF)")
    p.add_argument("--inference-config", metavar="FILE",
                   help="YAML list of inference engines to scrape (vLLM, SGLang, TGI) and their GPUs, or a "
                        "directory of such files (default: $WATTFLEET_INFERENCE_CONFIG, else "
                        "/etc/wattfleet/inference.yaml, inference.d/ or inference/ when present)")
    p.add_argument("--state-file", metavar="FILE",
                   help="keep the energy counters in FILE (rewritten atomically after every sample) so that a "
                        "restart continues them: no counter reset, and what RAPL and NVML counted while the "
                        "exporter was down is kept; an unusable file gives a warning and counters from 0 "
                        "(default: none, counters start at 0 on every start; ignored with --once)")
    workloads.add_arguments(p)
    p.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    # The spellings before the exporter conventions, for one release.
    add_deprecated_alias(p, "--listen-address", "--web.listen-address")
    add_deprecated_alias(p, "--web-config-file", "--web.config.file")
    p.add_argument("--disable-collector", dest="disable_collector", action=DisableCollector, choices=COLLECTORS,
                   replacement="--no-collector.NAME")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exporter", help="run the per-node energy exporter",
                       description="Per-node daemon: GPU (NVML), CPU and DRAM (RAPL or estimated) energy, "
                                   "utilization and inference phase counters for Prometheus.")
    add_arguments(p)
    p.set_defaults(func=run)


def build_sensors(args: argparse.Namespace, nvml: Nvml | None = None) -> tuple[list[Sensor], dict[str, str]]:
    """Instantiate every enabled collector; return (sensors, absent name -> reason)."""
    sensors: list[Sensor] = []
    absent: dict[str, str] = {}
    disabled = set(args.disable_collector)
    if "nvml" not in disabled:
        try:
            sensors.append(NvmlSensor(nvml=nvml, max_watts=args.gpu_max_watts))
        except SensorUnavailable as exc:
            absent["nvml"] = str(exc)
    rapl_ok = False
    if "rapl" not in disabled:
        try:
            sensors.append(RaplSensor(args.sysfs_root, max_watts=args.rapl_max_watts))
            rapl_ok = True
        except SensorUnavailable as exc:
            absent["rapl"] = str(exc)
    if "host" not in disabled:
        estimate = args.estimate_cpu == "always" or (args.estimate_cpu == "auto" and not rapl_ok)
        model = CpuPowerModel(args.cpu_idle_watts_per_core, args.cpu_max_watts_per_core, args.memory_watts_per_gb)
        sensors.append(HostSensor(estimate=estimate, model=model))
    for name, reason in absent.items():
        log.warning("collector %s absent: %s", name, reason)
    return sensors, absent


def build_sampler(args: argparse.Namespace, nvml: Nvml | None = None) -> Sampler:
    sensors, absent = build_sensors(args, nvml=nvml)
    use_state = getattr(args, "state_file", None) and not getattr(args, "once", False)
    state = StateFile(args.state_file) if use_state else None
    if state is not None:
        state.check_writable()  # StateError: run() turns it into a usage error before any sample
    sampler = Sampler(sensors, {"node": args.node, "cluster": args.cluster, "site": args.site},
                      interval=args.interval, absent=absent, version=__version__, state=state)
    if "inference" not in set(args.disable_collector):
        from wattfleet.exporter.inference.attach import attach_inference, config_path  # optional component

        path = config_path(args.inference_config)  # named, or discovered (WATTFLEET_INFERENCE_CONFIG, /etc/wattfleet)
        if path is not None:
            attach_inference(sampler, path)
    if "workload" not in set(args.disable_collector):
        try:
            workloads.attach_workloads(sampler, workloads.build_workload_sensor(args))
        except SensorUnavailable as exc:
            sampler.absent["workload"] = str(exc)
            log.info("collector workload absent: %s", exc)
    return sampler


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        print("wattfleet exporter: --interval must be positive", file=sys.stderr)
        return 2
    try:
        web = load_web_config(args.web_config_file) if args.web_config_file else None
    except WebConfigError as exc:
        print(f"wattfleet exporter: {exc}", file=sys.stderr)
        return 2
    try:
        sampler = build_sampler(args)
    except (InferenceConfigError, StateError, workloads.WorkloadConfigError) as exc:
        print(f"wattfleet exporter: {exc}", file=sys.stderr)
        return 2
    if args.once:
        # Two samples one interval apart, so that power and energy deltas are real.
        sampler.sample_once()
        time.sleep(args.interval)
        snapshot = sampler.sample_once()
        sampler.stop()
        sys.stdout.write(snapshot.body.decode())
        return 0
    try:
        server = MetricsServer(args.listen_address, with_process_metrics(lambda: sampler.snapshot), web,
                               ready=sampler.readiness)
    except ValueError as exc:  # a malformed --web.listen-address: a usage error, not a traceback
        print(f"wattfleet exporter: {exc}", file=sys.stderr)
        sampler.stop()
        return 2
    except OSError as exc:
        print(f"wattfleet exporter: cannot listen on {args.listen_address}: {exc.strerror or exc}", file=sys.stderr)
        sampler.stop()
        return 2
    sampler.start()
    server.start()
    log.info("serving %s (interval %.3gs)", server.url, args.interval)
    wait_for_stop_signal()
    server.stop()
    sampler.stop()
    return 0
