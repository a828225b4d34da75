"""The Referrals page, included under the console's namespace by
``agipower.console.urls``."""

from django.urls import path

from referrals import views

urlpatterns = [
    path("referrals", views.referrals_page, name="referrals"),
]
