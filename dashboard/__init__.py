"""The dashboard: server-rendered pages over the summaries (reads only)."""
