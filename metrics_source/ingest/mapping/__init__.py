"""Pure functions: incoming payloads -> semantic track events -> typed rows.

Two inputs reach the same storage format:

* Customer.io reporting-webhook payloads (``track_event_from_webhook``, in ``webhooks``),
  mapped to the semantic track event exactly as Customer.io's own "Journeys Message Metrics"
  source does;
* track calls from Segment-compatible SDKs (``track_event_from_call``, in ``calls``), already in
  that format, normalised (batch context merged, timestamps corrected for clock skew).

``row_from_track_event`` (in ``rows``, with the row type, the column limits and ``iso``) then
extracts the typed columns the reads need; ``row_from_call`` gives the same row straight from a
track call (the tracking API's hot path). Nothing here touches the database, so it can be
tested, fuzzed and benchmarked on its own. The names below are the package's interface.
"""

from metrics_source.ingest.mapping.calls import (
    TrackCall,
    describe_validation_error,
    row_from_call,
    track_event_from_call,
)
from metrics_source.ingest.mapping.rows import (
    MAX_DELIVERY_ID_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    MAX_JOURNEY_ID_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    EventRow,
    MappingError,
    iso,
    row_from_track_event,
)
from metrics_source.ingest.mapping.webhooks import (
    looks_like_webhook_payload,
    track_event_from_webhook,
)

__all__ = [
    "MAX_DELIVERY_ID_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_JOURNEY_ID_LENGTH",
    "MAX_MESSAGE_ID_LENGTH",
    "EventRow",
    "MappingError",
    "TrackCall",
    "describe_validation_error",
    "iso",
    "looks_like_webhook_payload",
    "row_from_call",
    "row_from_track_event",
    "track_event_from_call",
    "track_event_from_webhook",
]
