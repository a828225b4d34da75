"""``manage.py load_catalog FILE``: its summary, its errors, its dry run."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from proxy.models import CatalogModel, ModelPrice, Provider
from tests.support.catalog import SHIPPED, catalog_rows, model_entry

pytestmark = pytest.mark.django_db


def _load(path, *args) -> str:
    out = StringIO()
    call_command("load_catalog", str(path), *args, stdout=out)
    return out.getvalue()


def test_loading_the_shipped_catalog_prints_what_it_created():
    output = _load(SHIPPED)

    assert f"loaded {SHIPPED}:" in output
    assert "providers: 4 created, 0 updated, 0 unchanged" in output
    assert "models: 13 created, 0 updated, 0 unchanged" in output
    assert "prices changed: 0" in output
    assert ModelPrice.objects.count() == CatalogModel.objects.count() == 13


def test_loading_it_again_prints_that_nothing_changed():
    _load(SHIPPED)

    output = _load(SHIPPED)

    assert "providers: 0 created, 0 updated, 4 unchanged" in output
    assert "models: 0 created, 0 updated, 13 unchanged" in output
    assert "prices changed: 0" in output
    assert "nothing changed" in output
    assert ModelPrice.objects.count() == 13


def test_the_summary_names_what_changed(tmp_path):
    _load(SHIPPED)
    data = yaml.safe_load(SHIPPED.read_text())
    model_entry(data, "openai/gpt-5")["prices_per_million_usd"]["output"] = "9.5"
    model_entry(data, "deepseek/deepseek-chat")["max_output_tokens"] = 4000
    data["providers"][0]["read_timeout_seconds"] = 900
    data["models"] = [m for m in data["models"] if m["id"] != "openai/gpt-4.1"]
    changed = tmp_path / "catalog.yaml"
    changed.write_text(yaml.safe_dump(data))

    output = _load(changed)

    assert "providers: 0 created, 1 updated, 3 unchanged" in output
    assert "    openai: read_timeout_seconds" in output
    assert "models: 0 created, 1 updated, 10 unchanged" in output
    assert "    deepseek/deepseek-chat: max_output_tokens" in output
    assert "prices changed: 1\n    openai/gpt-5" in output
    assert "left alone (in the database, not in the file): openai/gpt-4.1" in output
    assert ModelPrice.objects.filter(model_id="openai/gpt-5").count() == 2


def test_an_unquoted_price_in_the_file_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "catalog.yaml"
    text = SHIPPED.read_text().replace('input: "1.25"', "input: 1.25", 1)
    path.write_text(text)

    with pytest.raises(CommandError) as refused:
        _load(path)

    message = str(refused.value)
    assert "the catalog was not loaded, nothing was written" in message
    assert "model 'openai/gpt-5': prices_per_million_usd.input is the unquoted" in (
        message
    )
    assert 'e.g. input: "1.25"' in message
    assert not Provider.objects.exists()


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("providers: [\n")

    with pytest.raises(CommandError, match="is not valid YAML"):
        _load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot read .*nope.yaml"):
        _load(tmp_path / "nope.yaml")


def test_a_dry_run_shows_the_changes_and_writes_nothing():
    output = _load(SHIPPED, "--dry-run")

    assert "dry run of" in output
    assert "models: 13 created" in output
    assert catalog_rows() == {"providers": [], "models": [], "prices": []}
