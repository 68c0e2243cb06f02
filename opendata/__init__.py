"""Integration open data of a municipality: fetch, validate and publish (library, no Prefect)."""

__version__ = "0.1.0"
