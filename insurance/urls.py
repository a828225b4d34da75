"""The AI Insurance page and the claim form's target, included under the
console's namespace by ``agipower.console.urls``."""

from django.urls import path

from insurance import views

urlpatterns = [
    path("insurance", views.insurance_page, name="insurance"),
    path("insurance/claim/<uuid:log_id>", views.claim_create, name="insurance-claim"),
]
