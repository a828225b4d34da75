"""Sign-up, sign-in, sign-out and password reset pages."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from accounts import throttle
from accounts.forms import LoginForm, SignupForm, client_ip
from accounts.models import User
from accounts.services import user_signup
from accounts.signals import user_signed_up

logger = logging.getLogger(__name__)


def home(request):
    return redirect(settings.LOGIN_REDIRECT_URL)


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class SignupView(View):
    template_name = "registration/signup.html"

    def get(self, request):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        ref = request.GET.get("ref", "")
        form = SignupForm(initial={"ref": ref if isinstance(ref, str) else ""})
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = SignupForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        try:
            user = user_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
            )
        except IntegrityError:  # the same email signed up a moment ago
            form.add_error(
                "email",
                ValidationError(SignupForm.DUPLICATE_EMAIL, code="duplicate_email"),
            )
            return render(request, self.template_name, {"form": form})
        _signed_up(user, ref=form.cleaned_data["ref"])
        login(request, user, backend="accounts.backends.EmailBackend")
        messages.success(request, "Welcome to AGIPower. Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)


def _signed_up(user, *, ref: str) -> None:
    """Tell the programs above (referrals) of the new user. Their failure is
    logged and never fails the signup, which has committed already."""
    for receiver, result in user_signed_up.send_robust(sender=User, user=user, ref=ref):
        if isinstance(result, Exception):
            logger.error(
                "signup of user %s: %s failed",
                user.pk,
                getattr(receiver, "__qualname__", receiver),
                exc_info=result,
            )


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        return throttled_response(super().form_invalid(form), form)


def throttled_response(response, form):
    """A sign-in page whose form was refused by the throttle answers 429."""
    if form is not None and form.has_error(NON_FIELD_ERRORS, "throttled"):
        response.status_code = 429
        response["Retry-After"] = str(form.refusal.retry_after_seconds)
    return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, throttled per email and per client address.

    Every valid request counts, for an email with an account or without, so a
    refusal says nothing about which emails exist. A refused request sends no
    email and answers 429 with the form and when to try again.
    """

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    THROTTLED = (
        "Too many password reset requests. Try again in %(minutes)s minute(s); "
        "if an email was sent, the link in it still works."
    )

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        ip = client_ip(self.request)
        refusal = throttle.reset_refusal(email=email, ip=ip)
        if refusal:
            logger.warning("password reset refused after repeated requests (ip %s)", ip)
            form.add_error(
                None,
                ValidationError(
                    self.THROTTLED,
                    code="throttled",
                    params={"minutes": refusal.retry_after_minutes},
                ),
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(refusal.retry_after_seconds)
            return response
        throttle.reset_requested(email=email, ip=ip)
        return super().form_valid(form)
