"""/api/v1: paths as DESIGN.md names them, with or without a trailing slash."""

from django.urls import re_path

from agipower import api_transactions
from alerts import api as alerts_api
from apikeys import api as apikeys_api
from billing import api as billing_api
from billing.payments import api as payments_api
from gifts import api as gifts_api
from insurance import api as insurance_api
from invoices import api as invoices_api
from proxy import api as proxy_api
from proxy import api_analytics, data_retention_api
from referrals import api as referrals_api

urlpatterns = [
    re_path(r"^balance/?$", billing_api.BalanceView.as_view(), name="api-balance"),
    re_path(
        r"^balance/breakdown/?$",
        billing_api.BreakdownView.as_view(),
        name="api-breakdown",
    ),
    re_path(
        r"^transactions/?$",
        api_transactions.TransactionListView.as_view(),
        name="api-transactions",
    ),
    re_path(
        r"^transactions\.csv$",
        api_transactions.TransactionCsvView.as_view(),
        name="api-transactions-csv",
    ),
    re_path(r"^keys/?$", apikeys_api.KeyListView.as_view(), name="api-keys"),
    re_path(
        r"^keys/(?P<key_id>[0-9]+)/?$",
        apikeys_api.KeyDetailView.as_view(),
        name="api-key",
    ),
    re_path(
        r"^requests/?$",
        proxy_api.RequestLogListView.as_view(),
        name="api-requests",
    ),
    re_path(
        r"^requests\.csv$",
        proxy_api.RequestLogCsvView.as_view(),
        name="api-requests-csv",
    ),
    re_path(
        r"^requests/(?P<log_id>[^/]+)/claim/?$",
        insurance_api.RequestClaimView.as_view(),
        name="api-request-claim",
    ),
    re_path(
        r"^requests/(?P<log_id>[^/]+)/?$",
        proxy_api.RequestLogDetailView.as_view(),
        name="api-request",
    ),
    re_path(
        r"^analytics/cost/?$",
        api_analytics.CostAnalyticsView.as_view(),
        name="api-analytics-cost",
    ),
    re_path(
        r"^payment-methods/?$",
        payments_api.PaymentMethodListView.as_view(),
        name="api-payment-methods",
    ),
    re_path(
        r"^payment-methods/(?P<pm_id>[A-Za-z0-9_]+)/?$",
        payments_api.PaymentMethodDetailView.as_view(),
        name="api-payment-method",
    ),
    re_path(r"^top-ups/?$", payments_api.TopUpCreateView.as_view(), name="api-top-ups"),
    re_path(
        r"^top-ups/(?P<topup_id>[0-9]+)/?$",
        payments_api.TopUpDetailView.as_view(),
        name="api-top-up",
    ),
    re_path(
        r"^top-ups/(?P<topup_id>[0-9]+)/refund/?$",
        payments_api.TopUpRefundView.as_view(),
        name="api-top-up-refund",
    ),
    re_path(
        r"^auto-top-up/?$", payments_api.AutoTopUpView.as_view(), name="api-auto-top-up"
    ),
    re_path(r"^alerts/?$", alerts_api.AlertSettingsView.as_view(), name="api-alerts"),
    re_path(
        r"^insurance/?$", insurance_api.InsuranceView.as_view(), name="api-insurance"
    ),
    re_path(
        r"^insurance/claims/?$",
        insurance_api.ClaimListView.as_view(),
        name="api-insurance-claims",
    ),
    re_path(
        r"^referrals/?$", referrals_api.ReferralsView.as_view(), name="api-referrals"
    ),
    re_path(
        r"^gift-cards/?$", gifts_api.GiftCardListView.as_view(), name="api-gift-cards"
    ),
    re_path(
        r"^gift-cards/(?P<card_id>[0-9]+)/?$",
        gifts_api.GiftCardDetailView.as_view(),
        name="api-gift-card",
    ),
    re_path(
        r"^gift-cards/(?P<card_id>[0-9]+)/code/?$",
        gifts_api.GiftCardCodeView.as_view(),
        name="api-gift-card-code",
    ),
    re_path(
        r"^gift-cards/(?P<card_id>[0-9]+)/refund/?$",
        gifts_api.GiftCardRefundView.as_view(),
        name="api-gift-card-refund",
    ),
    re_path(
        r"^gift-codes/redeem/?$",
        gifts_api.RedeemView.as_view(),
        name="api-gift-codes-redeem",
    ),
    re_path(
        r"^data-retention/?$",
        data_retention_api.DataRetentionView.as_view(),
        name="api-data-retention",
    ),
    re_path(
        r"^billing-profile/?$",
        payments_api.BillingProfileView.as_view(),
        name="api-billing-profile",
    ),
    re_path(
        r"^invoices/(?P<invoice_id>[0-9]+)/pdf/?$",
        invoices_api.InvoicePdfView.as_view(),
        name="api-invoice-pdf",
    ),
]
