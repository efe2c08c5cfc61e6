# The full image (ghcr.io/wattfleet/wattfleet:<appVersion>): every subcommand, with every extra
# (DuckDB, numpy, tqdm, matplotlib, grafanalib), for the aggregator, serve, report and dashboards.
# The per-node exporter (the chart's DaemonSet) has its own, smaller image: Dockerfile.exporter.
# The chart sets command ["wattfleet", ...] and the user per pod (exporter uid 0 with every
# capability dropped, aggregator uid 65532), so no USER or ENTRYPOINT is set here.
# NVML (libnvidia-ml.so) is injected at run time by the NVIDIA container runtime, not installed here.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
# wattfleet/ holds core, sim, the CLI and data (the demo's EIA-930 grid files and workload excerpt).
COPY wattfleet ./wattfleet
COPY exporter ./exporter
COPY aggregator ./aggregator
COPY dashboards ./dashboards
COPY sql ./sql
RUN pip install '.[all]' && rm -rf /src
WORKDIR /
CMD ["wattfleet", "--help"]
