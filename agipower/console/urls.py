"""The console's pages under /console/ (namespace "console"): the pages that
compose several apps, and each app's own console pages included here."""

from django.urls import include, path
from django.views.generic import RedirectView

from agipower.console import analytics, data_retention, logs, pay_as_you_go

app_name = "console"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:payg"), name="home"),
    path("pay-as-you-go", pay_as_you_go.pay_as_you_go, name="payg"),
    path("logs", logs.log_list, name="logs"),
    path("logs/<uuid:log_id>", logs.log_detail, name="log"),
    path("analytics", analytics.cost_analytics, name="analytics"),
    path("data-retention", data_retention.data_retention, name="data-retention"),
    # Payments: saved cards, auto top-up, billing profile (billing's own pages).
    path("", include("billing.urls")),
    # Alerts: low balance and key usage (alerts' own page).
    path("", include("alerts.urls")),
    # AI insurance: what was paid back, claims (insurance's own page).
    path("", include("insurance.urls")),
    # Referrals: the link to share and what it earned (referrals' own page).
    path("", include("referrals.urls")),
    # Gift codes: redeem, buy gift cards, refund them (gifts' own page).
    path("", include("gifts.urls")),
]
