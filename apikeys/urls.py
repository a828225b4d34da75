"""Console pages of API keys, under /console/keys."""

from django.urls import path

from apikeys import views

app_name = "keys"
urlpatterns = [
    path("keys", views.key_list, name="list"),
    path("keys/new", views.key_new, name="new"),
    path("keys/<int:key_id>", views.key_detail, name="detail"),
    path("keys/<int:key_id>/edit", views.key_edit, name="edit"),
    path("keys/<int:key_id>/status", views.key_status, name="status"),
    path("keys/<int:key_id>/delete", views.key_delete_view, name="delete"),
]
