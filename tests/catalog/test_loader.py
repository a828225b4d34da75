"""Loading the catalog: the shipped file, idempotence, price versions and the
price in force at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proxy.catalog_import import catalog_import
from proxy.models import CatalogModel, ModelKind, ModelPrice, Provider
from proxy.selectors import price_at
from tests.support.catalog import catalog_rows, model_entry

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
T1 = T0 + timedelta(days=30)
USD = 1_000_000_000

SHIPPED_PRICES = {
    # id: (input, cached input, cache write, output), nanos per 1M tokens
    "openai/gpt-5": (1_250_000_000, 125_000_000, 1_250_000_000, 10 * USD),
    "openai/gpt-5-mini": (250_000_000, 25_000_000, 250_000_000, 2 * USD),
    "openai/gpt-5-nano": (50_000_000, 5_000_000, 50_000_000, 400_000_000),
    "openai/gpt-4.1": (2 * USD, 500_000_000, 2 * USD, 8 * USD),
    "openai/gpt-4o-mini": (150_000_000, 75_000_000, 150_000_000, 600_000_000),
    "openai/text-embedding-3-small": (20_000_000, 20_000_000, 20_000_000, 0),
    "anthropic/claude-sonnet-4-5": (3 * USD, 300_000_000, 3_750_000_000, 15 * USD),
    "anthropic/claude-haiku-4-5": (USD, 100_000_000, 1_250_000_000, 5 * USD),
    "anthropic/claude-opus-4-1": (15 * USD, 1_500_000_000, 18_750_000_000, 75 * USD),
    "deepseek/deepseek-chat": (280_000_000, 28_000_000, 280_000_000, 420_000_000),
    "deepseek/deepseek-reasoner": (280_000_000, 28_000_000, 280_000_000, 420_000_000),
    "google/gemini-2.5-pro": (1_250_000_000, 125_000_000, 1_250_000_000, 10 * USD),
    "google/gemini-2.5-flash": (300_000_000, 30_000_000, 300_000_000, 2_500_000_000),
}


def _prices(model_id: str, when: datetime) -> tuple[int, int, int, int]:
    price = price_at(model_id=model_id, when=when)
    return (
        price.input_nanos,
        price.cached_input_nanos,
        price.cache_write_nanos,
        price.output_nanos,
    )


def test_shipped_catalog_loads_with_its_published_prices(shipped):
    report = catalog_import(data=shipped, now=T0)

    assert sorted(report.providers_created) == [
        "anthropic",
        "deepseek",
        "google",
        "openai",
    ]
    assert sorted(report.models_created) == sorted(SHIPPED_PRICES)
    assert ModelPrice.objects.count() == len(SHIPPED_PRICES)
    for model_id, prices in SHIPPED_PRICES.items():
        assert _prices(model_id, T0) == prices, model_id

    gpt5 = price_at(model_id="openai/gpt-5", when=T0)
    assert gpt5.input_nanos == 1_250_000_000
    assert gpt5.output_nanos == 10_000_000_000
    assert gpt5.effective_from == T0

    embedding = CatalogModel.objects.get(id="openai/text-embedding-3-small")
    assert embedding.kind == ModelKind.EMBEDDING
    assert embedding.max_output_tokens == 0
    assert embedding.tokenizer == "cl100k_base"
    assert CatalogModel.objects.get(id="openai/gpt-5").tokenizer == "o200k_base"

    anthropic = Provider.objects.get(name="anthropic")
    assert anthropic.base_url == "https://api.anthropic.com/v1"
    assert anthropic.api_key_env == "ANTHROPIC_API_KEY"
    assert Provider.objects.get(name="google").api_key_env == "GEMINI_API_KEY"
    assert Provider.objects.get(name="deepseek").read_timeout_seconds == 300


def test_every_shipped_price_is_a_quoted_string(shipped):
    for entry in shipped["models"]:
        for key, value in entry["prices_per_million_usd"].items():
            assert isinstance(value, str), (entry["id"], key)


def test_loading_the_same_file_twice_changes_nothing(shipped):
    catalog_import(data=shipped, now=T0)
    before = catalog_rows()

    report = catalog_import(data=shipped, now=T1)

    assert catalog_rows() == before
    assert not report.changed
    assert report.providers_created == report.models_created == []
    assert report.providers_updated == report.models_updated == {}
    assert report.prices_changed == []
    assert len(report.models_unchanged) == len(SHIPPED_PRICES)
    assert "nothing changed" in report.summary()


def test_a_changed_price_is_a_new_version_and_the_old_one_is_kept(small):
    catalog_import(data=small, now=T0)
    model_entry(small, "openai/gpt-5")["prices_per_million_usd"]["output"] = "12.5"

    report = catalog_import(data=small, now=T1)

    assert report.prices_changed == ["openai/gpt-5"]
    assert report.models_updated == {}
    versions = list(
        ModelPrice.objects.filter(model_id="openai/gpt-5").order_by("effective_from")
    )
    assert [(v.effective_from, v.output_nanos) for v in versions] == [
        (T0, 10_000_000_000),
        (T1, 12_500_000_000),
    ]
    # The other prices of the new version are the file's, as before.
    assert versions[1].input_nanos == 1_250_000_000
    assert versions[1].cached_input_nanos == 125_000_000
    # The other model kept its single version.
    assert ModelPrice.objects.filter(model_id="acme/embed-1").count() == 1


def test_price_at_picks_the_version_in_force_at_that_time(small):
    catalog_import(data=small, now=T0)
    model_entry(small, "openai/gpt-5")["prices_per_million_usd"]["input"] = "1.5"
    catalog_import(data=small, now=T1)

    def input_at(when):
        return price_at(model_id="openai/gpt-5", when=when).input_nanos

    assert input_at(T0) == 1_250_000_000
    assert input_at(T1 - timedelta(microseconds=1)) == 1_250_000_000
    assert input_at(T1) == 1_500_000_000
    assert input_at(T1 + timedelta(days=365)) == 1_500_000_000
    with pytest.raises(ModelPrice.DoesNotExist, match="openai/gpt-5 has no price"):
        price_at(model_id="openai/gpt-5", when=T0 - timedelta(seconds=1))
    with pytest.raises(ModelPrice.DoesNotExist):
        price_at(model_id="openai/nope", when=T1)


def test_price_at_honours_a_version_scheduled_for_later(small):
    catalog_import(data=small, now=T0)
    later = T1 + timedelta(days=7)
    ModelPrice.objects.create(
        model_id="openai/gpt-5",
        effective_from=later,
        input_nanos=USD,
        cached_input_nanos=USD,
        cache_write_nanos=USD,
        output_nanos=USD,
    )

    assert price_at(model_id="openai/gpt-5", when=T1).input_nanos == 1_250_000_000
    assert price_at(model_id="openai/gpt-5", when=later).input_nanos == USD
    # Reloading the unchanged file at T1 sees the price in force then: no change.
    assert catalog_import(data=small, now=T1).prices_changed == []


def test_cache_prices_default_to_the_input_price(small):
    catalog_import(data=small, now=T0)

    gpt5 = price_at(model_id="openai/gpt-5", when=T0)
    assert gpt5.cache_write_nanos == gpt5.input_nanos == 1_250_000_000
    embed = price_at(model_id="acme/embed-1", when=T0)
    assert embed.cached_input_nanos == embed.cache_write_nanos == 20_000_000
    assert embed.output_nanos == 0


def test_whole_number_prices_may_be_unquoted(small):
    model_entry(small, "openai/gpt-5")["prices_per_million_usd"] = {
        "input": 3,
        "output": "15",
        "cache_write": "3.75",
    }
    catalog_import(data=small, now=T0)

    price = price_at(model_id="openai/gpt-5", when=T0)
    assert price.input_nanos == 3 * USD
    assert price.cached_input_nanos == 3 * USD
    assert price.cache_write_nanos == 3_750_000_000
    assert price.output_nanos == 15 * USD


def test_changed_model_and_provider_fields_are_updated(small):
    catalog_import(data=small, now=T0)
    entry = model_entry(small, "openai/gpt-5")
    entry.update(upstream="gpt-5-2025-08-07", context_length=272000, active=False)
    small["providers"][1].update(
        base_url="http://127.0.0.1:9998/v1", read_timeout_seconds=60
    )

    report = catalog_import(data=small, now=T1)

    assert report.models_updated == {
        "openai/gpt-5": ["upstream", "context_length", "active"]
    }
    assert report.providers_updated == {"acme": ["base_url", "read_timeout_seconds"]}
    assert report.prices_changed == []
    model = CatalogModel.objects.get(id="openai/gpt-5")
    assert (model.upstream, model.context_length, model.active) == (
        "gpt-5-2025-08-07",
        272000,
        False,
    )
    acme = Provider.objects.get(name="acme")
    assert acme.base_url == "http://127.0.0.1:9998/v1"
    assert acme.read_timeout_seconds == 60
    assert acme.connect_timeout_seconds == 2
    # Optional keys left out take their defaults again: the file is the truth.
    entry.pop("active")
    assert catalog_import(data=small, now=T1).models_updated == {
        "openai/gpt-5": ["active"]
    }
    assert CatalogModel.objects.get(id="openai/gpt-5").active is True


def test_models_absent_from_the_file_are_left_alone_and_reported(small):
    catalog_import(data=small, now=T0)
    small["models"] = [model_entry(small, "openai/gpt-5")]
    small["providers"] = [small["providers"][0]]

    report = catalog_import(data=small, now=T1)

    assert report.models_not_in_file == ["acme/embed-1"]
    assert "acme/embed-1" in report.summary()
    embed = CatalogModel.objects.get(id="acme/embed-1")
    assert embed.active is True
    assert Provider.objects.filter(name="acme").exists()
    assert price_at(model_id="acme/embed-1", when=T1).input_nanos == 20_000_000


def test_a_file_may_add_models_to_a_provider_already_loaded(small):
    catalog_import(data=small, now=T0)
    more = {
        "models": [
            {
                "id": "acme/chat-2",
                "provider": "acme",
                "upstream": "chat-2",
                "context_length": 32000,
                "max_output_tokens": 4000,
                "prices_per_million_usd": {"input": "0.1", "output": "0.2"},
            }
        ]
    }

    report = catalog_import(data=more, now=T1)

    assert report.models_created == ["acme/chat-2"]
    assert CatalogModel.objects.get(id="acme/chat-2").provider.name == "acme"
