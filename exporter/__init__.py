"""Per-node exporter: GPU, CPU and DRAM energy and LLM phase counters for Prometheus."""
