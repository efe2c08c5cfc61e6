"""Outputs: the monthly report (queries, tables, charts, documents), serve's exposition, disclosures."""
