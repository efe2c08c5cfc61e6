"""Shared vocabulary of every wattfleet part: the metric catalog, YAML with positions, HTTP serving, units.

The exporter, the aggregator, the dashboards and the simulator depend on this
package and never on each other, so a node's exporter never imports the
aggregator's warehouse and the aggregator never reaches into the exporter.
"""
