"""Ingest: everything between a request and a stored row, each event stored exactly once.

A request comes in through ``fast_path`` (the WSGI handler's shortcut for the hot endpoints)
or the full Django stack to ``api`` and its ``endpoints`` (tracking API, reporting webhooks,
health and catalogue). ``auth`` finds the source (write key, webhook signature),
``request_body`` reads the body (content type, gzip, limits) with ``exact_json``, ``mapping``
turns each event into the semantic track event and its typed row by the names in ``catalog``,
and ``service`` stores the rows in PostgreSQL, deduplicated there. ``bulk_import`` and
``ndjson`` bring files through the same services; ``sources`` creates sources and rotates
their keys; ``schemas`` documents the answers.
"""
