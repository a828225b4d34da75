from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = (
        "Create the first operator (staff superuser) if there is none, and say how to "
        "sign in. Email from OPERATOR_EMAIL (default ops@localhost); the password from "
        "OPERATOR_PASSWORD, else generated and written to var/operator-password."
    )

    def handle(self, *args, **options):
        if User.objects.filter(is_staff=True).exists():
            return
        email = os.environ.get("OPERATOR_EMAIL", "ops@localhost")
        password = os.environ.get("OPERATOR_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(email=email, password=password)
        path = settings.VAR_DIR / "operator-password"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(password + "\n")
        self.stdout.write(
            f"Operator created: {email}; password in {path} (sign in at /admin/)"
        )
