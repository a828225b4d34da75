from django.urls import path
from django.views.generic import RedirectView

from billing import views
from billing.payments import views as console_payments

app_name = "console"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:payg"), name="home"),
    path("pay-as-you-go", views.pay_as_you_go, name="payg"),
    # Payments: saved cards, auto top-up, billing profile; the dialogs' settings;
    # the page Alipay returns to.
    path("billing", console_payments.billing, name="billing"),
    path(
        "billing/config",
        console_payments.payments_config_json,
        name="payments-config",
    ),
    path(
        "top-ups/<int:topup_id>/return",
        console_payments.topup_return,
        name="topup-return",
    ),
]
