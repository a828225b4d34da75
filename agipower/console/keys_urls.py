"""Console pages of API keys, under /console/keys (namespace "keys")."""

from django.urls import path

from agipower.console import keys

app_name = "keys"
urlpatterns = [
    path("keys", keys.key_list, name="list"),
    path("keys/new", keys.key_new, name="new"),
    path("keys/<int:key_id>", keys.key_detail, name="detail"),
    path("keys/<int:key_id>/edit", keys.key_edit, name="edit"),
    path("keys/<int:key_id>/status", keys.key_status, name="status"),
    path("keys/<int:key_id>/delete", keys.key_delete_view, name="delete"),
]
