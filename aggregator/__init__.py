"""Aggregator: telemetry joined with PUE, WUE and hourly grid intensity in DuckDB, GHG Scope 1/2/3."""
