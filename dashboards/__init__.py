"""Grafana dashboards and Prometheus alert rules of otel-obs, written as code.

`python -m dashboards.generate` writes the committed JSON and rule file from these modules.
"""
