"""Payments' console pages, included under the console's namespace by
``agipower.console.urls``: saved cards, auto top-up and the billing profile;
the dialogs' settings; the page Alipay returns to."""

from django.urls import path

from billing.payments import views as console_payments

urlpatterns = [
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
    path(
        "top-ups/<int:topup_id>/refund",
        console_payments.topup_refund,
        name="topup-refund",
    ),
]
