"""A bad catalog is refused as a whole, with a message that names the entry and
the field, and nothing is written."""

from __future__ import annotations

import pytest

from proxy.catalog_file import CatalogError
from proxy.catalog_import import catalog_import
from tests.support.catalog import catalog_rows, model_entry

pytestmark = pytest.mark.django_db


def _gpt5(data):
    return model_entry(data, "openai/gpt-5")


def _prices(data):
    return _gpt5(data)["prices_per_million_usd"]


def _acme(data):
    return data["providers"][1]


def _duplicate(data):
    data["models"].append(dict(_gpt5(data)))


def _duplicate_provider(data):
    data["providers"].append(dict(_acme(data)))


BAD = {
    "unknown provider": (
        lambda d: _gpt5(d).update(provider="openia", id="openia/gpt-5"),
        "model 'openia/gpt-5': unknown provider 'openia'",
    ),
    "id without a provider part": (
        lambda d: _gpt5(d).update(id="gpt-5"),
        "model 'gpt-5': id 'gpt-5' must look like 'provider/model'",
    ),
    "id with an empty model part": (
        lambda d: _gpt5(d).update(id="openai/"),
        "must look like 'provider/model'",
    ),
    "id of another provider": (
        lambda d: _gpt5(d).update(id="acme/gpt-5"),
        "model 'acme/gpt-5': id 'acme/gpt-5' starts with 'acme' but its provider "
        "is 'openai'",
    ),
    "negative price": (
        lambda d: _prices(d).update(output="-1"),
        "model 'openai/gpt-5': prices_per_million_usd.output must not be negative",
    ),
    "missing input price": (
        lambda d: _prices(d).pop("input"),
        "model 'openai/gpt-5': prices_per_million_usd.input is missing",
    ),
    "missing output price": (
        lambda d: _prices(d).pop("output"),
        "prices_per_million_usd.output is missing",
    ),
    "missing prices": (
        lambda d: _gpt5(d).pop("prices_per_million_usd"),
        "model 'openai/gpt-5': prices_per_million_usd is missing",
    ),
    "price that is not a number": (
        lambda d: _prices(d).update(input="cheap"),
        "prices_per_million_usd.input: 'cheap' is not a decimal amount",
    ),
    "price finer than a nano": (
        lambda d: _prices(d).update(input="0.0000000001"),
        "more than 9 decimal places",
    ),
    "unknown price key": (
        lambda d: _prices(d).update(reasoning="1"),
        "unknown key 'reasoning'",
    ),
    "bad URL": (
        lambda d: _acme(d).update(base_url="not a url"),
        "provider 'acme': base_url 'not a url' is not an http(s) URL",
    ),
    "URL of another scheme": (
        lambda d: _acme(d).update(base_url="ftp://example.com/v1"),
        "base_url 'ftp://example.com/v1' is not an http(s) URL",
    ),
    "missing base_url": (
        lambda d: _acme(d).pop("base_url"),
        "provider 'acme': base_url is missing",
    ),
    "a key where its variable's name belongs": (
        lambda d: _acme(d).update(api_key_env="sk-live-abc123"),
        "api_key_env must be the name of an environment variable",
    ),
    "non-positive timeout": (
        lambda d: _acme(d).update(read_timeout_seconds=0),
        "read_timeout_seconds must be a positive number",
    ),
    "zero context_length": (
        lambda d: _gpt5(d).update(context_length=0),
        "model 'openai/gpt-5': context_length must be a positive whole number",
    ),
    "negative context_length": (
        lambda d: _gpt5(d).update(context_length=-5),
        "context_length must be a positive whole number",
    ),
    "context_length as text": (
        lambda d: _gpt5(d).update(context_length="400k"),
        "context_length must be a positive whole number of tokens, not '400k'",
    ),
    "no output for a chat model": (
        lambda d: _gpt5(d).update(max_output_tokens=0),
        "max_output_tokens must be positive for a chat model",
    ),
    "more output than context": (
        lambda d: _gpt5(d).update(max_output_tokens=500000),
        "max_output_tokens (500000) exceeds context_length (400000)",
    ),
    "duplicate ids": (_duplicate, "model 'openai/gpt-5': duplicate id"),
    "duplicate providers": (_duplicate_provider, "provider 'acme': listed twice"),
    "unknown kind": (
        lambda d: _gpt5(d).update(kind="image"),
        "kind must be one of chat, embedding, not 'image'",
    ),
    "unknown tokenizer": (
        lambda d: _gpt5(d).update(tokenizer="p50k_base"),
        "tokenizer must be one of o200k_base, cl100k_base",
    ),
    "misspelt key": (
        lambda d: _gpt5(d).update(contxt_length=1),
        "model 'openai/gpt-5': unknown key 'contxt_length'",
    ),
    "missing upstream": (
        lambda d: _gpt5(d).pop("upstream"),
        "model 'openai/gpt-5': upstream is missing",
    ),
    "active that is not a boolean": (
        lambda d: _gpt5(d).update(active="yes"),
        "active must be true or false",
    ),
}


@pytest.mark.parametrize("change, message", BAD.values(), ids=BAD.keys())
def test_a_bad_catalog_is_refused_and_writes_nothing(small, change, message):
    change(small)

    with pytest.raises(CatalogError) as refused:
        catalog_import(data=small)

    assert message in str(refused.value)
    assert catalog_rows() == {"providers": [], "models": [], "prices": []}


def test_an_unquoted_decimal_price_is_refused_with_a_hint_to_quote_it(small):
    _prices(small)["input"] = 1.25

    with pytest.raises(CatalogError) as refused:
        catalog_import(data=small)

    assert (
        "model 'openai/gpt-5': prices_per_million_usd.input is the unquoted number "
        '1.25; write prices as quoted decimal strings, e.g. input: "1.25"'
    ) in str(refused.value)


def test_one_bad_model_keeps_the_good_changes_of_the_same_file_out(small):
    catalog_import(data=small)
    before = catalog_rows()
    _prices(small)["output"] = "11"  # a good change...
    _acme(small)["base_url"] = "http://127.0.0.1:9/v1"  # ...another...
    model_entry(small, "acme/embed-1")["context_length"] = 0  # ...and a bad one

    with pytest.raises(CatalogError, match="model 'acme/embed-1': context_length"):
        catalog_import(data=small)

    assert catalog_rows() == before


def test_every_problem_is_reported_at_once(small):
    _prices(small)["output"] = "-1"
    _acme(small)["base_url"] = "nope"
    _duplicate(small)

    with pytest.raises(CatalogError) as refused:
        catalog_import(data=small)

    assert len(refused.value.problems) == 4  # the duplicate repeats the bad price
    assert str(refused.value).startswith(
        "the catalog was not loaded, nothing was written:"
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (None, "the catalog must be a mapping"),
        ([], "the catalog must be a mapping"),
        ({"providers": {}, "models": []}, "providers must be a list"),
        ({"modles": []}, "catalog: unknown key 'modles'"),
        ({"models": ["openai/gpt-5"]}, "models[0]: must be a mapping"),
    ],
)
def test_a_catalog_of_the_wrong_shape_is_refused(data, message):
    with pytest.raises(CatalogError, match=message.replace("[", r"\[")):
        catalog_import(data=data)
