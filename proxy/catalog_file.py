"""The model catalog's YAML form, read and checked (``catalog_specs``).

The file is checked as a whole before anything is written
(``proxy.catalog_import``): a file with one bad entry changes nothing, and the
error names every problem found, each with its entry and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from money import MoneyError, usd_to_nanos
from proxy.models import CatalogModel, ModelKind, ModelPrice, Provider

TOKENIZERS = ("o200k_base", "cl100k_base")
PRICE_KEYS = ("input", "output", "cached_input", "cache_write")

# Provider.name is a SlugField; a model id is "<provider>/<name upstream or alias>".
_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MODEL_ID = re.compile(r"^([^/\s]+)/(\S+)$")
# Only the name of a variable is stored; this also stops a pasted key (sk-...).
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_PROVIDER_KEYS = {
    "name",
    "base_url",
    "api_key_env",
    "connect_timeout_seconds",
    "read_timeout_seconds",
}
_MODEL_KEYS = {
    "id",
    "provider",
    "upstream",
    "kind",
    "context_length",
    "max_output_tokens",
    "tokenizer",
    "image_tokens_max",
    "prices_per_million_usd",
    "active",
}
_PROVIDER_DEFAULTS = {"connect_timeout_seconds": 10.0, "read_timeout_seconds": 300.0}
_ID_MAX = CatalogModel._meta.get_field("id").max_length
_UPSTREAM_MAX = CatalogModel._meta.get_field("upstream").max_length
_NAME_MAX = Provider._meta.get_field("name").max_length
_URL_MAX = Provider._meta.get_field("base_url").max_length
_ENV_MAX = Provider._meta.get_field("api_key_env").max_length
_POSITIVE_INT_MAX = 2_147_483_647  # PositiveIntegerField on PostgreSQL
_IMAGE_TOKENS_DEFAULT = CatalogModel._meta.get_field("image_tokens_max").default


class CatalogError(Exception):
    """A catalog that cannot be loaded; nothing was written.

    ``problems`` lists every problem found, each naming the entry and field.
    """

    code = "catalog_invalid"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "the catalog was not loaded, nothing was written:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class Prices:
    """Per 1M tokens, in nano-USD."""

    input_nanos: int
    cached_input_nanos: int
    cache_write_nanos: int
    output_nanos: int

    @classmethod
    def of(cls, price: ModelPrice) -> Prices:
        return cls(
            input_nanos=price.input_nanos,
            cached_input_nanos=price.cached_input_nanos,
            cache_write_nanos=price.cache_write_nanos,
            output_nanos=price.output_nanos,
        )


# --- Reading and checking the file ---------------------------------------------


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    values: dict[str, Any]


@dataclass(frozen=True)
class ModelSpec:
    id: str
    provider: str
    values: dict[str, Any]
    prices: Prices


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(
    entry: dict, key: str, where: str, problems: _Problems, *, max_length: int
) -> str | None:
    value = entry.get(key)
    if value is None:
        problems.add(where, f"{key} is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(where, f"{key} must be a non-empty string, not {value!r}")
        return None
    value = value.strip()
    if len(value) > max_length:
        problems.add(where, f"{key} is longer than {max_length} characters")
        return None
    return value


def _unknown_keys(entry: dict, allowed: set[str], where: str, problems: _Problems):
    # A misspelt optional key would otherwise be silently ignored.
    for key in sorted(set(entry) - allowed, key=str):
        problems.add(
            where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _provider_spec(entry: Any, index: int, problems: _Problems) -> ProviderSpec | None:
    where = f"providers[{index}]"
    if not isinstance(entry, dict):
        problems.add(where, "must be a mapping of name, base_url, api_key_env")
        return None
    if isinstance(entry.get("name"), str):
        where = f"provider {entry['name']!r}"
    _unknown_keys(entry, _PROVIDER_KEYS, where, problems)
    count = len(problems.items)

    name = _text(entry, "name", where, problems, max_length=_NAME_MAX)
    if name is not None and not _PROVIDER_NAME.match(name):
        problems.add(
            where,
            f"name {name!r} must be lowercase letters, digits, '-' or '_' "
            "(it is the first part of model ids)",
        )
    base_url = _text(entry, "base_url", where, problems, max_length=_URL_MAX)
    if base_url is not None:
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            problems.add(where, f"base_url {base_url!r} is not an http(s) URL")
    api_key_env = entry.get("api_key_env")
    if api_key_env is None:
        problems.add(
            where,
            "api_key_env is missing (the name of the environment variable holding "
            'the key; "" for an upstream that needs none)',
        )
    elif not isinstance(api_key_env, str) or (
        api_key_env and not ENV_VAR_NAME.match(api_key_env)
    ):
        problems.add(
            where,
            "api_key_env must be the name of an environment variable such as "
            "OPENAI_API_KEY, never the key itself",
        )
    elif len(api_key_env) > _ENV_MAX:
        problems.add(where, f"api_key_env is longer than {_ENV_MAX} characters")
    timeouts = {}
    for key, default in _PROVIDER_DEFAULTS.items():
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.add(where, f"{key} must be a positive number of seconds")
        else:
            timeouts[key] = float(value)

    if len(problems.items) > count:
        return None
    return ProviderSpec(
        name=name, values={"base_url": base_url, "api_key_env": api_key_env, **timeouts}
    )


def _price(value: Any, key: str, where: str, problems: _Problems) -> int | None:
    label = f"prices_per_million_usd.{key}"
    if isinstance(value, float):
        problems.add(
            where,
            f"{label} is the unquoted number {value!r}; write prices as quoted "
            f'decimal strings, e.g. {key}: "{value}" (a float cannot hold a price '
            "exactly)",
        )
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        problems.add(where, f'{label} must be a decimal string such as "1.25"')
        return None
    try:
        # Negative prices get their own message below.
        nanos = usd_to_nanos(value, signed=True)
    except MoneyError as error:
        problems.add(where, f"{label}: {error}")
        return None
    if nanos < 0:
        problems.add(where, f"{label} must not be negative, got {value!r}")
        return None
    return nanos


def _prices(entry: dict, where: str, problems: _Problems) -> Prices | None:
    prices = entry.get("prices_per_million_usd")
    if not isinstance(prices, dict):
        problems.add(
            where,
            "prices_per_million_usd is missing or not a mapping "
            '(e.g. {input: "1.25", output: "10"})',
        )
        return None
    for key in sorted(set(prices) - set(PRICE_KEYS), key=str):
        problems.add(
            where,
            f"prices_per_million_usd has an unknown key {key!r} "
            f"(allowed: {', '.join(PRICE_KEYS)})",
        )
    nanos: dict[str, int | None] = {}
    for key in PRICE_KEYS:
        if key in prices:
            nanos[key] = _price(prices[key], key, where, problems)
        elif key in ("input", "output"):
            problems.add(where, f"prices_per_million_usd.{key} is missing")
            nanos[key] = None
    if any(value is None for value in nanos.values()):
        return None
    # Upstreams that do not price cache reads or writes bill them as input.
    return Prices(
        input_nanos=nanos["input"],
        cached_input_nanos=nanos.get("cached_input", nanos["input"]),
        cache_write_nanos=nanos.get("cache_write", nanos["input"]),
        output_nanos=nanos["output"],
    )


def model_id_problem(model_id: str, provider_name: str) -> str | None:
    """Why ``model_id`` cannot be the id of a model of ``provider_name``, or None."""
    match = _MODEL_ID.match(model_id)
    if not match:
        return f"id {model_id!r} must look like 'provider/model', e.g. 'openai/gpt-5'"
    if match.group(1) != provider_name:
        return (
            f"id {model_id!r} starts with {match.group(1)!r} but its provider is "
            f"{provider_name!r}"
        )
    return None


def _model_spec(
    entry: Any, index: int, providers: set[str], problems: _Problems
) -> ModelSpec | None:
    where = f"models[{index}]"
    if not isinstance(entry, dict):
        problems.add(where, "must be a mapping with id, provider, upstream, ...")
        return None
    if isinstance(entry.get("id"), str):
        where = f"model {entry['id']!r}"
    _unknown_keys(entry, _MODEL_KEYS, where, problems)
    count = len(problems.items)

    model_id = _text(entry, "id", where, problems, max_length=_ID_MAX)
    provider = _text(entry, "provider", where, problems, max_length=_NAME_MAX)
    if provider is not None and provider not in providers:
        problems.add(
            where,
            f"unknown provider {provider!r}: list it under providers "
            f"(known: {', '.join(sorted(providers)) or 'none'})",
        )
    if model_id is not None and provider is not None:
        problem = model_id_problem(model_id, provider)
        if problem:
            problems.add(where, problem)
    upstream = _text(entry, "upstream", where, problems, max_length=_UPSTREAM_MAX)

    kind = entry.get("kind", ModelKind.CHAT.value)
    if kind not in ModelKind.values:
        problems.add(
            where, f"kind must be one of {', '.join(ModelKind.values)}, not {kind!r}"
        )
    context_length = entry.get("context_length")
    if not _is_int(context_length) or not 0 < context_length <= _POSITIVE_INT_MAX:
        problems.add(
            where,
            f"context_length must be a positive whole number of tokens, "
            f"not {context_length!r}",
        )
    max_output = entry.get("max_output_tokens")
    if not _is_int(max_output) or not 0 <= max_output <= _POSITIVE_INT_MAX:
        problems.add(
            where,
            f"max_output_tokens must be a whole number of tokens, not {max_output!r}",
        )
    elif max_output == 0 and kind == ModelKind.CHAT:
        problems.add(
            where,
            "max_output_tokens must be positive for a chat model (0 is for embeddings)",
        )
    elif _is_int(context_length) and max_output > context_length:
        problems.add(
            where,
            f"max_output_tokens ({max_output}) exceeds context_length "
            f"({context_length})",
        )
    tokenizer = entry.get("tokenizer", TOKENIZERS[0])
    if tokenizer not in TOKENIZERS:
        problems.add(
            where,
            f"tokenizer must be one of {', '.join(TOKENIZERS)}, not {tokenizer!r}",
        )
    # Absent means the default, so that reloading a file without the key sets
    # a model back to it, like every other optional key.
    image_tokens_max = entry.get("image_tokens_max", _IMAGE_TOKENS_DEFAULT)
    if not _is_int(image_tokens_max) or not 0 < image_tokens_max <= _POSITIVE_INT_MAX:
        problems.add(
            where,
            "image_tokens_max must be a positive whole number of tokens (the "
            f"most one image may cost on this model), not {image_tokens_max!r}",
        )
    active = entry.get("active", True)
    if not isinstance(active, bool):
        problems.add(where, f"active must be true or false, not {active!r}")
    prices = _prices(entry, where, problems)

    if len(problems.items) > count:
        return None
    return ModelSpec(
        id=model_id,
        provider=provider,
        values={
            "upstream": upstream,
            "kind": kind,
            "context_length": context_length,
            "max_output_tokens": max_output,
            "tokenizer": tokenizer,
            "image_tokens_max": image_tokens_max,
            "active": active,
        },
        prices=prices,
    )


def catalog_specs(data: Any) -> tuple[list[ProviderSpec], list[ModelSpec]]:
    """The providers and models of ``data`` (the parsed YAML), every entry
    checked; raises CatalogError naming every problem found."""
    problems = _Problems()
    if not isinstance(data, dict):
        raise CatalogError(["the catalog must be a mapping with providers and models"])
    _unknown_keys(data, {"providers", "models"}, "catalog", problems)
    raw_providers = data.get("providers")
    raw_models = data.get("models")
    raw_providers = [] if raw_providers is None else raw_providers
    raw_models = [] if raw_models is None else raw_models
    if not isinstance(raw_providers, list):
        problems.add("catalog", "providers must be a list")
        raw_providers = []
    if not isinstance(raw_models, list):
        problems.add("catalog", "models must be a list")
        raw_models = []

    providers: list[ProviderSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw_providers):
        spec = _provider_spec(entry, index, problems)
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.add(f"provider {name!r}", "listed twice")
            seen.add(name)
        if spec is not None:
            providers.append(spec)

    # Providers already in the database are known too. ``seen`` includes file
    # entries with problems of their own, so that their models are not blamed.
    known = seen | set(Provider.objects.values_list("name", flat=True))
    models: list[ModelSpec] = []
    ids: set[str] = set()
    for index, entry in enumerate(raw_models):
        spec = _model_spec(entry, index, known, problems)
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(model_id, str):
            if model_id in ids:
                problems.add(f"model {model_id!r}", "duplicate id: listed twice")
            ids.add(model_id)
        if spec is not None:
            models.append(spec)

    if problems.items:
        raise CatalogError(problems.items)
    return providers, models
