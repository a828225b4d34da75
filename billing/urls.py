from django.urls import path
from django.views.generic import RedirectView

from billing import views

app_name = "console"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:payg"), name="home"),
    path("pay-as-you-go", views.pay_as_you_go, name="payg"),
]
