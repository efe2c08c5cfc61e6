"""Ingest: telemetry sources, the window writer, grid loads, and the run that orchestrates them."""
