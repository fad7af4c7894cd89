"""The destination form (secrets write-only, URLs checked against SSRF, headers the kinds
set refused) and the replay-range form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from metrics_source.forwarding.kinds import KINDS
from metrics_source.forwarding.models import Destination, DestinationKind
from metrics_source.forwarding.signing import secret_key
from metrics_source.forwarding.ssrf import UrlRefused, check_url
from metrics_source.runtime.admin_base import WriteOnlySecretField

FILTER_FIELDS = [
    "channels", "event_names", "sources", "campaign_ids", "broadcast_ids", "newsletter_ids",
    "transactional_message_ids",
]  # fmt: skip

# Headers the kinds set themselves; extra headers may not override them.
RESERVED_HEADERS = {
    "authorization",
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


class DestinationForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Destination._meta.get_field("url").help_text,
    )
    secret = WriteOnlySecretField(
        required=False,
        max_length=200,
        help_text="Webhook: the whsec_ signing secret (left blank on creation, one is generated "
        "and shown once). Segment-compatible: the write key. Never shown again after saving; "
        "leave blank to keep the current one.",
    )
    previous_secret = WriteOnlySecretField(
        required=False,
        max_length=200,
        label="Previous signing secret",
        help_text="During a rotation requests are signed with both secrets.",
    )
    clear_previous_secret = forms.BooleanField(required=False, label="Remove the previous secret")

    class Meta:
        model = Destination
        fields = [
            "name", "kind", "enabled", "url", "secret", "previous_secret", "extra_headers",
            "channels", "event_names", "sources", "campaign_ids", "broadcast_ids",
            "newsletter_ids", "transactional_message_ids", "batch_size", "timeout_seconds",
            "max_requests_per_second", "backfill_from",
        ]  # fmt: skip
        labels = {"url": "URL"}

    def _kept(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        return value or (getattr(self.instance, name) if self.instance.pk else "")

    def clean_secret(self) -> str:
        return self._kept("secret")

    def clean_previous_secret(self) -> str:
        return self._kept("previous_secret")

    def clean_timeout_seconds(self) -> float:
        value = self.cleaned_data["timeout_seconds"]
        if not 0.5 <= value <= 60:
            raise forms.ValidationError("Between 0.5 and 60 seconds.")
        return value

    def clean_extra_headers(self) -> dict:
        headers = self.cleaned_data.get("extra_headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise forms.ValidationError('A JSON object of strings, e.g. {"X-Team": "growth"}.')
        reserved = sorted(k for k in headers if k.lower() in RESERVED_HEADERS)
        if reserved:
            raise forms.ValidationError(f"Set by the destination kind: {', '.join(reserved)}.")
        return headers

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_previous_secret"):
            cleaned["previous_secret"] = ""
        kind, url = cleaned.get("kind"), cleaned.get("url")
        if kind and url:
            try:
                check_url(KINDS[kind].url_to_check(Destination(kind=kind, url=url)))
            except UrlRefused as error:
                self.add_error("url", str(error))
        if kind == DestinationKind.WEBHOOK:
            for name in ("secret", "previous_secret"):
                if cleaned.get(name):
                    try:
                        secret_key(cleaned[name])
                    except ValueError as error:
                        self.add_error(name, str(error))
        elif kind == DestinationKind.SEGMENT and not cleaned.get("secret"):
            self.add_error("secret", "A Segment-compatible destination needs its write key.")
        return cleaned


class ReplayRangeForm(forms.Form):
    since = forms.DateTimeField(
        required=False,
        help_text="Events at or after this time (server time zone); blank: from the first.",
    )
    until = forms.DateTimeField(
        required=False, help_text="Events before this time; blank: up to now."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since: datetime | None = cleaned.get("since")
        until: datetime | None = cleaned.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("The start must be before the end.")
        return cleaned
