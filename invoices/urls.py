"""Console pages of invoices, under /console/invoices."""

from django.urls import path

from invoices import views

app_name = "invoices"
urlpatterns = [
    path("invoices/<int:invoice_id>/pdf", views.invoice_pdf, name="pdf"),
]
