"""Operators search dj-stripe's lists in admin: an answer, never a 500.

dj-stripe 2.11 searches some fields that now live in its ``stripe_data`` JSON
(billing/stripe_admin.py points those searches there)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from djstripe.models import Customer

from billing.payments.stripe_admin import search_path_fix


def djstripe_list_urls() -> list[str]:
    return sorted(
        f"/admin/djstripe/{model._meta.model_name}/"
        for model in admin.site._registry
        if model._meta.app_label == "djstripe"
    )


@pytest.mark.parametrize("url", djstripe_list_urls())
def test_every_djstripe_list_answers_a_search(client, ops, url):
    client.force_login(ops)
    response = client.get(url, {"q": "x"})
    assert response.status_code == 200


def test_a_customer_is_found_by_the_description_stripe_keeps(client, ops):
    Customer.objects.create(
        id="cus_found", livemode=False, stripe_data={"description": "Acme Rockets"}
    )
    Customer.objects.create(
        id="cus_other", livemode=False, stripe_data={"description": "Initech"}
    )
    client.force_login(ops)
    response = client.get("/admin/djstripe/customer/", {"q": "rockets"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [
        Customer.objects.get(id="cus_found")
    ]


def test_search_paths_resolve_or_point_into_stripe_data():
    assert search_path_fix(Customer, "email") == "email"
    assert search_path_fix(Customer, "description") == "stripe_data__description"
    assert search_path_fix(Customer, "=description") == "=stripe_data__description"
    assert search_path_fix(Customer, "subscriber__name") == "subscriber__name"
    assert search_path_fix(Customer, "email__iexact") == "email__iexact"
    assert search_path_fix(Customer, "subscriber__nothing") is None
