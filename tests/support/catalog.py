"""The catalog in tests: the shipped file, a small catalog to bend into bad
shapes, one model's entry, and a snapshot of every catalog row."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from proxy.models import CatalogModel, ModelPrice, Provider

SHIPPED = Path(settings.BASE_DIR) / "proxy" / "catalog.yaml"

SMALL = {
    "providers": [
        {
            "name": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key_env": "OPENAI_API_KEY",
        },
        {
            "name": "acme",
            "base_url": "http://127.0.0.1:9999/v1",
            "api_key_env": "ACME_API_KEY",
            "connect_timeout_seconds": 2,
            "read_timeout_seconds": 30.5,
        },
    ],
    "models": [
        {
            "id": "openai/gpt-5",
            "provider": "openai",
            "upstream": "gpt-5",
            "context_length": 400000,
            "max_output_tokens": 128000,
            "prices_per_million_usd": {
                "input": "1.25",
                "cached_input": "0.125",
                "output": "10",
            },
        },
        {
            "id": "acme/embed-1",
            "provider": "acme",
            "upstream": "embed-1",
            "kind": "embedding",
            "context_length": 8191,
            "max_output_tokens": 0,
            "tokenizer": "cl100k_base",
            "prices_per_million_usd": {"input": "0.02", "output": "0"},
        },
    ],
}


def model_entry(data: dict, model_id: str) -> dict:
    return next(m for m in data["models"] if m["id"] == model_id)


def catalog_rows() -> dict[str, list[dict]]:
    """Every catalog row, to show that something wrote nothing."""
    return {
        "providers": list(Provider.objects.order_by("name").values()),
        "models": list(CatalogModel.objects.order_by("id").values()),
        "prices": list(ModelPrice.objects.order_by("model", "effective_from").values()),
    }
