"""Prefect wiring and the `opendata` command line (the logic lives in the `opendata` library)."""
