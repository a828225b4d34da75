"""``python manage.py load_catalog FILE``: load providers, models and prices."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from proxy.catalog_file import CatalogError
from proxy.catalog_import import catalog_import


class _DryRun(Exception):
    """Raised to roll back the load of a dry run."""


class Command(BaseCommand):
    help = (
        "Load the model catalog from a YAML file (the format of proxy/catalog.yaml). "
        "Idempotent: a changed price becomes a new price version effective now; "
        "models absent from the file are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the catalog YAML file")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the file and show what would change, writing nothing",
        )

    def handle(self, *args, file: str, dry_run: bool, **options):
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CommandError(f"{path} is not valid YAML: {error}") from None

        try:
            with transaction.atomic():
                report = catalog_import(data=data)
                if dry_run:
                    raise _DryRun
        except CatalogError as error:
            raise CommandError(f"{path}: {error}") from None
        except _DryRun:
            self.stdout.write(f"dry run of {path}, nothing written:")
        else:
            self.stdout.write(f"loaded {path}:")
        self.stdout.write(report.summary())
