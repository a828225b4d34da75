from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from agipower.views import favicon
from billing.payments.webhooks import stripe_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    # Stripe's events, verified by signature (no login, no CSRF token).
    path("stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    path("api/v1/", include("agipower.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from local files (drf-spectacular-sidecar), its set-up script
    # served apart (?script), so the page needs nothing inline or remote.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("favicon.ico", favicon, name="favicon"),
    path("console/", include("agipower.console.urls", namespace="console")),
    # /console/keys…: the API Keys pages (their own namespace, "keys").
    path("console/", include("agipower.console.keys_urls", namespace="keys")),
    # /console/invoices/<id>/pdf: an invoice's download ("invoices").
    path("console/", include("invoices.urls", namespace="invoices")),
    path("", include("accounts.urls")),
]
