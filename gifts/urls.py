"""The Gift codes page, included under the console's namespace by
``agipower.console.urls``."""

from django.urls import path

from gifts import views

urlpatterns = [
    path("gift-codes", views.gift_codes, name="gift-codes"),
    path("gift-codes/<int:card_id>/code", views.gift_card_code, name="gift-card-code"),
    path(
        "gift-codes/<int:card_id>/refund",
        views.gift_card_refund,
        name="gift-card-refund",
    ),
]
