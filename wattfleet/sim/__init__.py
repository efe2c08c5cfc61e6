"""Simulated hardware and fleets, so that the real exporter can be tested and scaled without real machines.

- :mod:`~wattfleet.sim.fake_nvml` and :mod:`~wattfleet.sim.fake_powercap`:
  fakes that imitate NVML's and Linux powercap's semantics and errors (lost
  GPUs, driver reloads, counter wraps, unreadable files) and keep the exact
  energy as ground truth;
- :mod:`~wattfleet.sim.fake_kubelet` and :mod:`~wattfleet.sim.fake_cgroup`: a kubelet serving the real
  pod-resources v1 gRPC API on a unix socket (it can go down, restart, answer late), and a cgroup v2
  tree with pods, Slurm jobs, CPU time and /proc/stat, for workload attribution;
- :mod:`~wattfleet.sim.load`: what simulated GPUs and sockets draw, from real workload traces;
- :mod:`~wattfleet.sim.node` and :mod:`~wattfleet.sim.fleet`: a fleet of real
  exporters over those fakes, on one simulated clock, served over HTTP;
- :mod:`~wattfleet.sim.faults`: faults injected on simulated time;
- :mod:`~wattfleet.sim.backfill`: the fleet's counters over a past span as OpenMetrics;
- :mod:`~wattfleet.sim.cli`: ``wattfleet simulate``.

The simulator drives the exporter, never the reverse: the exporter's code
never imports this package (its sensors take the NVML module and the sysfs
root as arguments), so nothing simulated can reach a real node.
"""
