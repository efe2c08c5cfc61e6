"""wattfleet: fleet energy telemetry exporter and carbon analytics."""

__version__ = "0.1.0"
