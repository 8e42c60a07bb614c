"""Analyses that turn visible records into evidence: trends, anomalies, forecasts, routes, hotspots and what
joint operations achieve. Each takes plain tables in (``narcotrack.analytics.tables``) and gives plain tables
out, with its method stated beside its numbers, so a page, a report, the CLI and a notebook share them."""
