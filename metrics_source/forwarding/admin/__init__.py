"""Forwarding's admin: destinations with their health, the ledger, the attempt log, replays.

Importing the package registers its models (metrics_source/admin.py imports it)."""

from metrics_source.forwarding.admin import destinations, ledger, replays

__all__ = ["destinations", "ledger", "replays"]
