"""Re-encrypt every stored secret with the newest key of SECRETS_ENCRYPTION_KEYS (the step
between adding a key in front and dropping the old one)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from metrics_source.forwarding.models import Destination
from metrics_source.models import Source
from metrics_source.runtime.encryption import reencrypt

SECRET_FIELDS: list[tuple[type[Source] | type[Destination], tuple[str, ...]]] = [
    (Source, ("webhook_signing_secret", "previous_webhook_signing_secret")),
    (Destination, ("secret", "previous_secret")),
]


class Command(BaseCommand):
    help = "Re-encrypt the stored signing secrets and destination credentials with the newest key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for model, fields in SECRET_FIELDS:
                # values_list gives the stored form (the model attribute would decrypt it).
                for pk, *stored in model.objects.select_for_update().values_list("pk", *fields):
                    changes = {
                        field: reencrypt(value)
                        for field, value in zip(fields, stored, strict=True)
                        if value
                    }
                    if changes:
                        model.objects.filter(pk=pk).update(**changes)
                        count += len(changes)
        self.stdout.write(f"re-encrypted {count} stored secret(s) with the newest key")
