"""The Alerts page, included under the console's namespace by
``agipower.console.urls``."""

from django.urls import path

from alerts import views

urlpatterns = [
    path("alerts", views.alert_settings, name="alerts"),
]
