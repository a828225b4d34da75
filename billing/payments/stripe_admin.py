"""dj-stripe's admin lists, searchable.

dj-stripe 2.11 keeps most of a Stripe object in one JSON column,
``stripe_data``, but the admin classes it registers still search some fields
that are no longer columns (Account ``settings``, Customer ``description``,
Invoice ``number``, PromotionCode ``code``, Session ``customer_email``...): any
search of those lists was a ``FieldError``, a 500. Each search path that does
not resolve is pointed into ``stripe_data`` where the model has it (the same
key, so the search finds what it meant to), and dropped where it has not.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db.models import JSONField
from django.db.models.constants import LOOKUP_SEP

DATA = "stripe_data"


def search_path_fix(model, path: str) -> str | None:
    """``path`` if it resolves on ``model``; else the same path into the
    model's (or a related model's) ``stripe_data``; None if neither."""
    prefix = path[0] if path[:1] in ("^", "=", "@") else ""
    parts = path.removeprefix(prefix).split(LOOKUP_SEP)
    fixed: list[str] = []
    for index, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            if not _has_data(model):
                return None
            return prefix + LOOKUP_SEP.join([*fixed, DATA, *parts[index:]])
        fixed.append(part)
        if isinstance(field, JSONField):
            return prefix + LOOKUP_SEP.join([*fixed, *parts[index + 1 :]])
        if index + 1 < len(parts):
            if field.get_lookup(parts[index + 1]) and index + 2 == len(parts):
                return path  # "name__iexact": a lookup of its own
            if field.related_model is None:
                return None
            model = field.related_model
    return path


def _has_data(model) -> bool:
    try:
        return isinstance(model._meta.get_field(DATA), JSONField)
    except FieldDoesNotExist:
        return False


def djstripe_search_fix(site: admin.AdminSite = admin.site) -> None:
    for model, model_admin in site._registry.items():
        if model._meta.app_label != "djstripe":
            continue
        paths = [search_path_fix(model, path) for path in model_admin.search_fields]
        model_admin.search_fields = tuple(path for path in paths if path)


djstripe_search_fix()
