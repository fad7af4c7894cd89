"""The colours of metrics and channels, the same on every chart (and on the pages that key
their own series to them)."""

from __future__ import annotations

METRIC_COLOURS = {
    "sent": "#334155",
    "delivered": "#0ea5e9",
    "opened": "#10b981",
    "clicked": "#f59e0b",
    "converted": "#8b5cf6",
    "bounced": "#ef4444",
    "suppressed": "#f97316",
    "failed": "#b91c1c",
    "spammed": "#db2777",
    "unsubscribed": "#64748b",
    "undeliverable": "#a16207",
    "deferred": "#94a3b8",
    "subscribed": "#22c55e",
    "attempted": "#a5b4fc",
    "drafted": "#cbd5e1",
    "replied": "#14b8a6",
    "preferences_changed": "#84cc16",
}
CHANNEL_COLOURS = {
    "email": "#6366f1",
    "push": "#0ea5e9",
    "sms": "#10b981",
    "in_app": "#f59e0b",
    "webhook": "#8b5cf6",
    "slack": "#ec4899",
    "subscription": "#64748b",
    "whatsapp": "#22c55e",
}
