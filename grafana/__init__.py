"""Rift's monitoring as code: dashboards, Prometheus scrape config and alert rules."""
