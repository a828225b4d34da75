"""The console's pages under /console/ (namespace "console"): the pages that
compose several apps, and each app's own console pages included here."""

from django.urls import include, path
from django.views.generic import RedirectView

from agipower.console import pay_as_you_go

app_name = "console"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:payg"), name="home"),
    path("pay-as-you-go", pay_as_you_go.pay_as_you_go, name="payg"),
    # Payments: saved cards, auto top-up, billing profile (billing's own pages).
    path("", include("billing.urls")),
    # Alerts: low balance and key usage (alerts' own page).
    path("", include("alerts.urls")),
]
