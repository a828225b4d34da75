from __future__ import annotations

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Email addresses are matched without regard to case."""

    def authenticate(self, request, username=None, password=None, email=None, **kw):
        return super().authenticate(
            request,
            username=(email or username or "").strip().lower(),
            password=password,
        )
