"""The operators' admin site: AGIPower's titles, and a sign-in throttled like
the console's (accounts.throttle: per email and per client address)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from accounts.forms import LoginForm
from accounts.views import throttled_response


class AdminLoginForm(LoginForm, AdminAuthenticationForm):
    """The console's throttled sign-in, for staff accounts only.

    A right password of an account that is not staff is refused like a wrong
    one, and counts as a failure: the answer and the count never tell the two
    apart.
    """

    error_messages = {
        **LoginForm.error_messages,
        "invalid_login": "That email and password do not match a staff account.",
    }


class OperatorsAdminSite(admin.AdminSite):
    site_header = "AGIPower operations"
    site_title = "AGIPower operations"
    index_title = "Operations"
    login_form = AdminLoginForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        return throttled_response(response, context.get("form"))
