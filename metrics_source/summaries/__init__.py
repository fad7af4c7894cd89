"""Summaries the dashboard reads: one row per delivery and counts per hour, kept current from
the events that ingest stores (see rollup.py)."""
