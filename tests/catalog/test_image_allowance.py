"""A model's image allowance (``image_tokens_max``): what one image counts in
a request's hold, read from the catalog file and used by the prompt bound."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.conf import settings

from proxy.catalog_file import CatalogError
from proxy.catalog_import import catalog_import
from proxy.models import CatalogModel
from proxy.pricing import IMAGE_TOKEN_ALLOWANCE, chat_prompt_bound

pytestmark = pytest.mark.django_db

SHIPPED = Path(settings.BASE_DIR) / "proxy" / "catalog.yaml"


def catalog(**model) -> dict:
    """One provider, one chat model with ``model``'s keys on top."""
    return {
        "providers": [
            {
                "name": "openai",
                "base_url": "https://api.openai.com/v1",
                "api_key_env": "OPENAI_API_KEY",
            }
        ],
        "models": [
            {
                "id": "openai/gpt-4o-mini",
                "provider": "openai",
                "upstream": "gpt-4o-mini",
                "context_length": 128000,
                "max_output_tokens": 16384,
                "prices_per_million_usd": {"input": "0.15", "output": "0.60"},
                **model,
            }
        ],
    }


def allowance(model_id: str = "openai/gpt-4o-mini") -> int:
    return CatalogModel.objects.get(id=model_id).image_tokens_max


def test_a_model_without_the_key_gets_the_default():
    catalog_import(data=catalog())
    assert allowance() == IMAGE_TOKEN_ALLOWANCE == 2_000


def test_the_key_loads_and_reloads_idempotently():
    report = catalog_import(data=catalog(image_tokens_max=48_169))
    assert report.models_created == ["openai/gpt-4o-mini"]
    assert allowance() == 48_169

    again = catalog_import(data=catalog(image_tokens_max=48_169))
    assert not again.changed
    assert again.models_unchanged == ["openai/gpt-4o-mini"]

    changed = catalog_import(data=catalog(image_tokens_max=50_000))
    assert changed.models_updated == {"openai/gpt-4o-mini": ["image_tokens_max"]}
    assert allowance() == 50_000

    # A file without the key sets the model back to the default.
    dropped = catalog_import(data=catalog())
    assert dropped.models_updated == {"openai/gpt-4o-mini": ["image_tokens_max"]}
    assert allowance() == IMAGE_TOKEN_ALLOWANCE


@pytest.mark.parametrize("value", [0, -1, 1.5, "2000", True, None, 2**31])
def test_a_bad_value_is_refused_naming_the_model(value):
    catalog_import(data=catalog(image_tokens_max=9_000))

    with pytest.raises(CatalogError) as refused:
        catalog_import(data=catalog(image_tokens_max=value))

    [problem] = refused.value.problems
    assert problem.startswith("model 'openai/gpt-4o-mini': image_tokens_max must be")
    assert repr(value) in problem
    assert allowance() == 9_000  # nothing was written


def test_the_shipped_catalog_covers_gpt_4o_mini_high_detail_images():
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    catalog_import(data=data)
    # OpenAI's documented worst case: 2,833 + 5,667 for each of 8 512px tiles.
    assert allowance("openai/gpt-4o-mini") == 2_833 + 8 * 5_667 == 48_169
    assert allowance("openai/gpt-5-mini") >= 2_489  # 1536 patches x 1.62
    assert allowance("openai/gpt-5-nano") >= 3_779  # 1536 patches x 2.46
    assert allowance("openai/gpt-5") == IMAGE_TOKEN_ALLOWANCE
    assert not catalog_import(data=data).changed


def test_the_prompt_bound_counts_the_allowance_given_per_image():
    request = {
        "request_bytes": 10_000,
        "images": 10,
        "image_url_bytes": 4_000,
        "files": 0,
        "context_length": 128_000,
    }
    assert chat_prompt_bound(**request) == 6_000 + 10 * IMAGE_TOKEN_ALLOWANCE
    assert chat_prompt_bound(**request, image_tokens_max=48_169) == (
        6_000 + 10 * 48_169
    )
    # Not cut at the context length: 481,690 image tokens exceed 128,000.
    assert chat_prompt_bound(**request, image_tokens_max=48_169) > 128_000
