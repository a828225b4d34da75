"""The catalog and request logs in Django admin: pages load, price versions are
added but never edited, logs are read-only, and provider keys never show."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.services import key_create
from proxy.catalog_import import catalog_import
from proxy.models import CatalogModel, ModelPrice, Provider, RequestLog
from proxy.selectors import price_at
from tests.support.catalog import SMALL

pytestmark = pytest.mark.django_db

GPT5 = "/admin/proxy/catalogmodel/openai/gpt-5/change/"


@pytest.fixture
def catalog():
    catalog_import(data=SMALL, now=timezone.now() - timedelta(days=1))


@pytest.fixture
def operator(client, ops):
    client.force_login(ops)
    return client


def _log(account, *, model="openai/gpt-5", status=200, cost_nanos=12_345):
    api_key = key_create(account=account, name="ci").api_key
    return RequestLog.objects.create(
        account=account,
        api_key=api_key,
        model=model,
        provider=model.split("/")[0],
        endpoint="chat.completions",
        status=status,
        prompt_tokens=1200,
        cached_tokens=200,
        completion_tokens=345,
        reasoning_tokens=100,
        cost_nanos=cost_nanos,
        latency_ms=850,
    )


def _model_form(price_version_id, **extra) -> dict:
    """The POST of gpt-5's page: its fields, its one version, an add row."""
    return {
        "upstream": "gpt-5",
        "kind": "chat",
        "context_length": "400000",
        "max_output_tokens": "128000",
        "tokenizer": "o200k_base",
        "image_tokens_max": "2000",
        "active": "on",
        "prices-TOTAL_FORMS": "2",
        "prices-INITIAL_FORMS": "1",
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
        "prices-0-id": str(price_version_id),
        "prices-0-model": "openai/gpt-5",
        "prices-1-id": "",
        "prices-1-model": "openai/gpt-5",
        "_save": "Save",
        **extra,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/admin/proxy/provider/",
        "/admin/proxy/provider/add/",
        "/admin/proxy/catalogmodel/",
        "/admin/proxy/catalogmodel/add/",
        GPT5,
        "/admin/proxy/modelprice/",
        "/admin/proxy/requestlog/",
        "/admin/proxy/requestlog/?model=openai/gpt-5&status=200",
    ],
)
def test_catalog_admin_pages_load_for_an_operator(operator, catalog, path):
    assert operator.get(path).status_code == 200


def test_detail_pages_load_for_an_operator(operator, catalog, alice):
    provider = Provider.objects.get(name="openai")
    price = ModelPrice.objects.get(model_id="openai/gpt-5")
    log = _log(alice.account)

    for path in [
        f"/admin/proxy/provider/{provider.pk}/change/",
        f"/admin/proxy/modelprice/{price.pk}/change/",
        f"/admin/proxy/requestlog/{log.pk}/change/",
    ]:
        assert operator.get(path).status_code == 200, path


def test_models_show_their_current_price_in_usd_per_million(operator, catalog):
    listing = operator.get("/admin/proxy/catalogmodel/").content.decode()
    page = operator.get(GPT5).content.decode()

    for html in (listing, page):
        assert "$1.25" in html
        assert "$0.125" in html
        assert "$10.00" in html
    assert "input $1.25, cached input $0.125, cache write $1.25, output $10.00" in page


def test_existing_price_versions_are_shown_read_only(operator, catalog):
    html = operator.get(GPT5).content.decode()

    # The existing version (row 0) has no inputs; the add row (row 1) has them.
    for name in ("input", "cached_input", "cache_write", "output", "effective_from_0"):
        assert f'name="prices-0-{name}"' not in html
        assert f'name="prices-1-{name}"' in html
    assert 'name="prices-0-DELETE"' not in html


def test_a_price_change_in_admin_is_a_new_version(operator, catalog):
    old = ModelPrice.objects.get(model_id="openai/gpt-5")
    before = timezone.now()

    response = operator.post(
        GPT5,
        _model_form(old.pk, **{"prices-1-input": "1.5", "prices-1-output": "12"}),
    )

    assert response.status_code == 302, response.context["errors"]
    old_again = ModelPrice.objects.get(pk=old.pk)
    assert (old_again.input_nanos, old_again.output_nanos) == (
        1_250_000_000,
        10_000_000_000,
    )
    new = price_at(model_id="openai/gpt-5", when=timezone.now())
    assert new.pk != old.pk
    assert new.effective_from >= before
    assert new.input_nanos == new.cached_input_nanos == new.cache_write_nanos
    assert new.input_nanos == 1_500_000_000
    assert new.output_nanos == 12_000_000_000
    assert price_at(model_id="openai/gpt-5", when=before).pk == old.pk


def test_a_version_may_be_scheduled_for_later(operator, catalog):
    old = ModelPrice.objects.get(model_id="openai/gpt-5")
    later = timezone.now() + timedelta(days=10)

    response = operator.post(
        GPT5,
        _model_form(
            old.pk,
            **{
                "prices-1-effective_from_0": later.strftime("%Y-%m-%d"),
                "prices-1-effective_from_1": later.strftime("%H:%M:%S"),
                "prices-1-input": "1",
                "prices-1-cached_input": "0.1",
                "prices-1-cache_write": "1.25",
                "prices-1-output": "8",
            },
        ),
    )

    assert response.status_code == 302
    assert price_at(model_id="openai/gpt-5", when=timezone.now()).pk == old.pk
    scheduled = price_at(model_id="openai/gpt-5", when=later)
    assert (
        scheduled.input_nanos,
        scheduled.cached_input_nanos,
        scheduled.cache_write_nanos,
        scheduled.output_nanos,
    ) == (1_000_000_000, 100_000_000, 1_250_000_000, 8_000_000_000)


def test_posted_edits_to_an_existing_version_are_ignored(operator, catalog):
    old = ModelPrice.objects.get(model_id="openai/gpt-5")
    tampered = {
        "prices-0-input": "0",
        "prices-0-output": "0",
        "prices-0-effective_from_0": "2000-01-01",
        "prices-0-effective_from_1": "00:00:00",
        "prices-0-DELETE": "on",
    }

    response = operator.post(GPT5, _model_form(old.pk, **tampered))

    assert response.status_code == 302
    assert list(ModelPrice.objects.filter(model_id="openai/gpt-5")) == [old]
    unchanged = ModelPrice.objects.get(pk=old.pk)
    assert (unchanged.input_nanos, unchanged.output_nanos) == (
        1_250_000_000,
        10_000_000_000,
    )
    assert unchanged.effective_from == old.effective_from


@pytest.mark.parametrize(
    "row, error",
    [
        ({"prices-1-input": "1.5"}, "Required."),
        ({"prices-1-input": "1.5", "prices-1-output": "-2"}, "Must not be negative"),
        ({"prices-1-input": "1,5", "prices-1-output": "2"}, "not a decimal amount"),
        (
            {
                "prices-1-input": "1",
                "prices-1-output": "2",
                "prices-1-effective_from_0": "2020-01-01",
                "prices-1-effective_from_1": "00:00:00",
            },
            "cannot start in the past",
        ),
    ],
)
def test_a_bad_price_version_is_refused(operator, catalog, row, error):
    old = ModelPrice.objects.get(model_id="openai/gpt-5")

    response = operator.post(GPT5, _model_form(old.pk, **row))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert ModelPrice.objects.filter(model_id="openai/gpt-5").count() == 1


def test_model_prices_cannot_be_added_changed_or_deleted_on_their_own(
    operator, catalog
):
    price = ModelPrice.objects.get(model_id="openai/gpt-5")
    change = f"/admin/proxy/modelprice/{price.pk}/change/"

    assert operator.get("/admin/proxy/modelprice/add/").status_code == 403
    assert 'name="_save"' not in operator.get(change).content.decode()
    assert operator.post(change, {"input_nanos": "0"}).status_code == 403
    assert (
        operator.get(f"/admin/proxy/modelprice/{price.pk}/delete/").status_code == 403
    )
    assert ModelPrice.objects.get(pk=price.pk).input_nanos == 1_250_000_000


def test_a_models_id_must_match_its_provider(operator, catalog):
    openai = Provider.objects.get(name="openai")

    response = operator.post(
        "/admin/proxy/catalogmodel/add/",
        {
            "id": "acme/gpt-6",
            "provider": openai.pk,
            "upstream": "gpt-6",
            "kind": "chat",
            "context_length": "1000",
            "max_output_tokens": "100",
            "tokenizer": "o200k_base",
            "prices-TOTAL_FORMS": "0",
            "prices-INITIAL_FORMS": "0",
            "prices-MIN_NUM_FORMS": "0",
            "prices-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 200
    assert (
        "starts with &#x27;acme&#x27; but its provider is" in response.content.decode()
    )
    assert not CatalogModel.objects.filter(id="acme/gpt-6").exists()


def test_a_providers_key_never_appears_in_admin(operator, catalog, monkeypatch):
    secret = "sk-proj-this-must-never-be-shown-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    openai = Provider.objects.get(name="openai")
    acme = Provider.objects.get(name="acme")

    listing = operator.get("/admin/proxy/provider/").content.decode()
    openai_page = operator.get(f"/admin/proxy/provider/{openai.pk}/change/")
    acme_page = operator.get(f"/admin/proxy/provider/{acme.pk}/change/")

    for html in (listing, openai_page.content.decode(), acme_page.content.decode()):
        assert secret not in html
        assert secret[:12] not in html
    assert "OPENAI_API_KEY" in listing
    assert "Key set in environment" in listing
    assert 'alt="True"' in listing and 'alt="False"' in listing
    assert 'alt="True"' in openai_page.content.decode()
    assert 'alt="False"' in acme_page.content.decode()


def test_a_key_pasted_as_the_variable_name_is_refused(operator, catalog):
    response = operator.post(
        "/admin/proxy/provider/add/",
        {
            "name": "other",
            "base_url": "https://example.com/v1",
            "api_key_env": "sk-proj-abc123",
            "connect_timeout_seconds": "10",
            "read_timeout_seconds": "300",
        },
    )

    assert response.status_code == 200
    assert "never the key itself" in response.content.decode()
    assert not Provider.objects.filter(name="other").exists()


def test_request_logs_are_listed_with_their_cost_and_read_only(operator, alice, bob):
    log = _log(alice.account)
    _log(bob.account, model="openai/gpt-5-mini", status=402, cost_nanos=0)

    listing = operator.get("/admin/proxy/requestlog/").content.decode()
    page = operator.get(f"/admin/proxy/requestlog/{log.pk}/change/").content.decode()

    assert "$0.000012345" in listing
    assert "1,200 / 200 / 345 / 100" in listing
    assert "850 ms" in listing
    assert 'name="_save"' not in page
    assert operator.get("/admin/proxy/requestlog/add/").status_code == 403
    assert (
        operator.post(
            f"/admin/proxy/requestlog/{log.pk}/change/", {"status": "500"}
        ).status_code
        == 403
    )
    delete = f"/admin/proxy/requestlog/{log.pk}/delete/"
    assert operator.get(delete).status_code == 403
    assert RequestLog.objects.get(pk=log.pk).status == 200


@pytest.mark.parametrize(
    "query, emails",
    [
        ("?q=alice%40example.com", ["alice@example.com"]),
        ("?model=openai/gpt-5-mini", ["bob@example.com"]),
        ("?status=200", ["alice@example.com"]),
        ("", ["alice@example.com", "bob@example.com"]),
    ],
)
def test_request_logs_filter_by_model_and_status_and_search_by_email(
    operator, alice, bob, query, emails
):
    _log(alice.account)
    _log(bob.account, model="openai/gpt-5-mini", status=402, cost_nanos=0)

    response = operator.get(f"/admin/proxy/requestlog/{query}")

    shown = sorted(
        log.account.owner.email for log in response.context["cl"].result_list
    )
    assert shown == emails
