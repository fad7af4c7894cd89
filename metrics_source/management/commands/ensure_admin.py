"""Make sure someone can log in to the admin: create the superuser ``admin`` when none exists.

Its password comes from ADMIN_PASSWORD, or is generated and printed once, here, at creation;
later runs never show it again.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no superuser exists, and say how to log in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--login-url",
            default="/admin/",
            help="Where to log in, shown in the message (serve passes its own address).",
        )

    def handle(self, *args, login_url: str, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self._existing(login_url)
            return

        given = os.environ.get("ADMIN_PASSWORD") or None
        password = given or secrets.token_urlsafe(15)
        user = User(username=USERNAME, is_staff=True, is_superuser=True)
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            raise CommandError("ADMIN_PASSWORD is too weak: " + " ".join(error.messages)) from None
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            if User.objects.filter(is_superuser=True).exists():  # two starts at once
                self._existing(login_url)
                return
            # The name belongs to a user who is not a superuser: not ours to promote.
            raise CommandError(
                f"a user named {USERNAME!r} exists but is not a superuser; create one with "
                "`manage.py createsuperuser`"
            ) from None

        if given:
            shown = "the password in ADMIN_PASSWORD"
        else:
            shown = f"password {password}  (shown only this once: note it now)"
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the admin login: user {USERNAME}, {shown}\nLog in at {login_url}"
            )
        )

    def _existing(self, login_url: str) -> None:
        self.stdout.write(
            f"Admin: log in at {login_url} with an existing superuser "
            f"(forgotten password: `manage.py changepassword {USERNAME}`)."
        )
