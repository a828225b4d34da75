from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("agipower.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("console/", include("billing.urls", namespace="console")),
    # /console/keys…: the API Keys pages (their own namespace, "keys").
    path("console/", include("apikeys.urls", namespace="keys")),
    path("", include("accounts.urls")),
]
