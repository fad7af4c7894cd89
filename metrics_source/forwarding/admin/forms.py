"""The destination form (secrets write-only; the rules of forwarding/destinations.py, so the
admin refuses what the commands refuse) and the replay-range form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms

from metrics_source.forwarding.destinations import destination_problems
from metrics_source.forwarding.models import Destination
from metrics_source.runtime.admin_base import WriteOnlySecretField

# Stands for a stored header value on the form: values (often tokens) are never sent back.
HEADER_VALUE_MASK = "********"

FILTER_FIELDS = [
    "channels", "event_names", "sources", "campaign_ids", "broadcast_ids", "newsletter_ids",
    "transactional_message_ids",
]  # fmt: skip


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.extra_headers if self.instance.pk else None
        if isinstance(stored, dict) and stored:
            self.initial["extra_headers"] = {name: HEADER_VALUE_MASK for name in stored}
        if "extra_headers" in self.fields:  # not on a view-only page
            self.fields["extra_headers"].help_text = (
                'A JSON object, e.g. {"X-Api-Key": "..."}. Stored values show as '
                f"{HEADER_VALUE_MASK}; leave one so to keep it, or type a new value."
            )

    def _kept(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        return value or (getattr(self.instance, name) if self.instance.pk else "")

    def clean_secret(self) -> str:
        return self._kept("secret")

    def clean_previous_secret(self) -> str:
        return self._kept("previous_secret")

    def clean_extra_headers(self) -> Any:
        headers = self.cleaned_data.get("extra_headers") or {}
        stored = self.instance.extra_headers if self.instance.pk else {}
        if isinstance(headers, dict) and isinstance(stored, dict):
            # The mask keeps the stored value of the same name (a new name has none to keep).
            headers = {
                name: stored.get(name, value) if value == HEADER_VALUE_MASK else value
                for name, value in headers.items()
            }
        return headers

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_previous_secret"):
            cleaned["previous_secret"] = ""
        # The rules the commands apply too, reported on the fields that passed their own checks
        # (the unique name is the model form's own check).
        checked = {name: cleaned[name] for name in self.CHECKED if name in cleaned}
        for name, why in destination_problems(Destination(**checked)).items():
            if name in cleaned:
                self.add_error(name, why)
        return cleaned

    CHECKED = (
        "kind", "url", "secret", "previous_secret", "batch_size", "timeout_seconds",
        "max_requests_per_second", "extra_headers", "channels",
    )  # fmt: skip


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
