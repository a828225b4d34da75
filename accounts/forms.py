from __future__ import annotations

import logging
import re

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts import throttle
from accounts.models import User
from accounts.validators import plain_text

logger = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is written by the client and
    # would let anyone choose the address their failures are counted against.
    return request.META.get("REMOTE_ADDR") or None


class LoginForm(AuthenticationForm):
    """Email and password, with failed attempts throttled (accounts.throttle)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account.",
        "throttled": (
            "Too many failed sign-in attempts. Try again in %(minutes)s "
            "minute(s), or reset your password."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "Email"
        username = self.fields["username"].widget
        username.input_type = "email"
        username.attrs["autocomplete"] = "email"
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"
        self.refusal: throttle.Refusal | None = None

    def clean(self):
        email = (self.cleaned_data.get("username") or "").strip().lower()
        ip = client_ip(self.request) if self.request else None
        if email:
            # Checked before the password, so a locked-out attacker learns
            # nothing from a right guess.
            self.refusal = throttle.login_refusal(email=email, ip=ip)
            if self.refusal:
                logger.warning("sign-in refused after repeated failures (ip %s)", ip)
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"minutes": self.refusal.retry_after_minutes},
                )
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if email and exc.code == "invalid_login":
                throttle.login_failed(email=email, ip=ip)
            raise
        throttle.login_succeeded(email=email, ip=ip)
        return cleaned


# A referral code as a signup link may carry it: letters, digits, - and _.
_REF = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SignupForm(forms.Form):
    DUPLICATE_EMAIL = "An account with this email already exists. Sign in instead."

    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    full_name = forms.CharField(
        label="Full name",
        max_length=200,
        validators=[plain_text],
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    # The ``ref`` of the signup link (/signup?ref=CODE), carried through the
    # form. Never an error: a signup with a code that is malformed or unknown
    # is a signup without one.
    ref = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_ref(self) -> str:
        ref = (self.cleaned_data.get("ref") or "").strip()
        return ref if _REF.fullmatch(ref) else ""

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(self.DUPLICATE_EMAIL, code="duplicate_email")
        return email

    def clean_full_name(self) -> str:
        return self.cleaned_data["full_name"].strip()

    def clean(self):
        cleaned = super().clean()
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error(
                "password2",
                ValidationError("The two passwords do not match.", code="mismatch"),
            )
        elif password1:
            # The validators see the would-be user, so a password that is just
            # the email or name is refused.
            candidate = User(
                email=cleaned.get("email", ""), full_name=cleaned.get("full_name", "")
            )
            try:
                password_validation.validate_password(password1, candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned
