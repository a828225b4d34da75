"""Importing the model catalog from its YAML form (``manage.py load_catalog``).

Importing is declarative for what the file lists (each listed provider and
model ends up as the file says, optional keys included, their defaults
applied) and leaves alone what it does not list. The file is checked whole
first (``proxy.catalog_file``): a file with one bad entry changes nothing.

A price is never changed in place: when the file's price differs from the
current one, a new ``ModelPrice`` version starts at ``now``, so requests made
before keep the price of their time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from proxy.catalog_file import Prices, catalog_specs
from proxy.models import CatalogModel, ModelPrice, Provider
from proxy.selectors import price_current


@dataclass
class ImportReport:
    """What an import did. Lists hold model ids and provider names."""

    providers_created: list[str] = field(default_factory=list)
    # name -> the fields that changed
    providers_updated: dict[str, list[str]] = field(default_factory=dict)
    providers_unchanged: list[str] = field(default_factory=list)
    models_created: list[str] = field(default_factory=list)
    models_updated: dict[str, list[str]] = field(default_factory=dict)
    models_unchanged: list[str] = field(default_factory=list)
    # Existing models that got a new price version (new models not included).
    prices_changed: list[str] = field(default_factory=list)
    # In the database but not in the file: left as they were.
    models_not_in_file: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.providers_created
            or self.providers_updated
            or self.models_created
            or self.models_updated
            or self.prices_changed
        )

    def summary(self) -> str:
        def details(updated: dict[str, list[str]]) -> str:
            return "".join(
                f"\n    {name}: {', '.join(fields)}" for name, fields in updated.items()
            )

        lines = [
            f"providers: {len(self.providers_created)} created, "
            f"{len(self.providers_updated)} updated, "
            f"{len(self.providers_unchanged)} unchanged"
            + details(self.providers_updated),
            f"models: {len(self.models_created)} created, "
            f"{len(self.models_updated)} updated, "
            f"{len(self.models_unchanged)} unchanged" + details(self.models_updated),
            f"prices changed: {len(self.prices_changed)}"
            + "".join(f"\n    {model_id}" for model_id in self.prices_changed),
        ]
        if self.models_not_in_file:
            lines.append(
                f"left alone (in the database, not in the file): "
                f"{', '.join(self.models_not_in_file)}"
            )
        if not self.changed:
            lines.append("nothing changed")
        return "\n".join(lines)


# --- Writing --------------------------------------------------------------------


def _changed_fields(instance, values: dict[str, Any]) -> list[str]:
    return [name for name, value in values.items() if getattr(instance, name) != value]


@transaction.atomic
def catalog_import(*, data: dict, now: datetime | None = None) -> ImportReport:
    """Make the providers and models listed in ``data`` (the parsed YAML) what it
    says; a changed price becomes a new price version effective ``now``."""
    now = now or timezone.now()
    provider_specs, model_specs = catalog_specs(data)
    report = ImportReport()

    # Lock the rows we may update, so two loads run one after another.
    existing = {
        p.name: p
        for p in Provider.objects.select_for_update().filter(
            name__in=[s.name for s in provider_specs]
        )
    }
    for spec in provider_specs:
        provider = existing.get(spec.name)
        if provider is None:
            Provider.objects.create(name=spec.name, created_at=now, **spec.values)
            report.providers_created.append(spec.name)
            continue
        changed = _changed_fields(provider, spec.values)
        if changed:
            for name in changed:
                setattr(provider, name, spec.values[name])
            provider.save(update_fields=changed)
            report.providers_updated[spec.name] = changed
        else:
            report.providers_unchanged.append(spec.name)

    providers = {
        p.name: p
        for p in Provider.objects.filter(name__in={s.provider for s in model_specs})
    }
    models = {
        m.id: m
        for m in CatalogModel.objects.select_for_update().filter(
            id__in=[s.id for s in model_specs]
        )
    }
    for spec in model_specs:
        values = {**spec.values, "provider_id": providers[spec.provider].id}
        model = models.get(spec.id)
        if model is None:
            model = CatalogModel.objects.create(id=spec.id, created_at=now, **values)
            _price_add(model=model, prices=spec.prices, now=now)
            report.models_created.append(spec.id)
            continue
        changed = _changed_fields(model, values)
        if changed:
            for name in changed:
                setattr(model, name, values[name])
            model.save(update_fields=changed)
            report.models_updated[spec.id] = [
                "provider" if name == "provider_id" else name for name in changed
            ]
        current = price_current(model_id=spec.id, when=now)
        if current is None or Prices.of(current) != spec.prices:
            _price_add(model=model, prices=spec.prices, now=now)
            report.prices_changed.append(spec.id)
        if not changed and spec.id not in report.prices_changed:
            report.models_unchanged.append(spec.id)

    report.models_not_in_file = list(
        CatalogModel.objects.exclude(id__in=[s.id for s in model_specs])
        .order_by("id")
        .values_list("id", flat=True)
    )
    return report


def _price_add(*, model: CatalogModel, prices: Prices, now: datetime) -> ModelPrice:
    return ModelPrice.objects.create(
        model=model,
        effective_from=now,
        created_at=now,
        input_nanos=prices.input_nanos,
        cached_input_nanos=prices.cached_input_nanos,
        cache_write_nanos=prices.cache_write_nanos,
        output_nanos=prices.output_nanos,
    )
