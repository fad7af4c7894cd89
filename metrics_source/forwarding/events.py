"""Stored rows -> the semantic track events forwarded, exactly as they were stored.

The JSON is written by PostgreSQL: ``properties`` and ``context`` go out as the stored jsonb
text, never decoded into Python and encoded again, which would cost more than the request.
Keys come in the order the mapping writes them, plus ``receivedAt`` as a Segment-compatible
server sets it; timestamps in UTC with milliseconds and a Z, as ``mapping.iso`` writes them.

``integrations`` (which tools the sender asked to receive the call, the batch's merged in)
goes out last, where the mapping puts it, from its column; events stored before that column
existed have it only in ``raw``, the call as received, which is parsed only when its text
names the key at all.
"""

from __future__ import annotations

_ISO = """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"""


def _moment(column: str, key: str, *, optional: bool) -> str:
    text = f"""',"{key}":"' || to_char(e.{column} AT TIME ZONE 'UTC', {_ISO}) || '"'"""
    return f"CASE WHEN e.{column} IS NOT NULL THEN {text} END" if optional else text


def _identity(column: str, key: str) -> str:
    return f"""CASE WHEN e.{column} <> '' THEN ',"{key}":' || to_json(e.{column})::text END"""


_INTEGRATIONS = (
    "CASE WHEN e.integrations IS NOT NULL THEN ',\"integrations\":' || e.integrations::text "
    # jsonb holds no NUL: a payload that had one (escaped in raw) is not parsed here.
    "WHEN strpos(e.raw, '\"integrations\"') > 0 AND strpos(e.raw, '\\u0000') = 0 THEN ("
    "SELECT ',\"integrations\":' || i::text FROM (SELECT e.raw::jsonb -> 'integrations' AS i) r "
    "WHERE jsonb_typeof(i) = 'object' AND i <> '{}'::jsonb) END"
)

# The event as JSON bytes, for a row aliased ``e``.
EVENT_JSON_SQL = (
    "convert_to(concat("
    """'{"type":"track","event":', to_json(e.event)::text, """
    f"{_identity('user_id', 'userId')}, {_identity('anonymous_id', 'anonymousId')}, "
    """',"messageId":', to_json(e.message_id)::text, """
    f"{_moment('timestamp', 'timestamp', optional=False)}, "
    f"{_moment('original_timestamp', 'originalTimestamp', optional=True)}, "
    f"{_moment('sent_at', 'sentAt', optional=True)}, "
    f"{_moment('received_at', 'receivedAt', optional=False)}, "
    """',"context":', e.context::text, ',"properties":', e.properties::text, """
    f"{_INTEGRATIONS}, '}}'"
    "), 'UTF8')"
)
