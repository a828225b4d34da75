"""Sign-up, sign-in, sign-out and password reset pages."""

from __future__ import annotations

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

from accounts.forms import LoginForm, SignupForm
from accounts.services import user_signup


def home(request):
    return redirect(settings.LOGIN_REDIRECT_URL)


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class SignupView(View):
    template_name = "registration/signup.html"

    def get(self, request):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return render(request, self.template_name, {"form": SignupForm()})

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
        login(request, user, backend="accounts.backends.EmailBackend")
        messages.success(request, "Welcome to AGIPower. Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after_seconds)
        return response
