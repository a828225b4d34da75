"""AI insurance in tests: the shipped coverage rules put back.

The defaults are rows written by a data migration (insurance 0002); a test
that commits is followed by Django's flush, which empties every table, and the
tests after it would find no rule. ``shipped_rules_ensure`` writes them again
with that migration's own function, so tests judge by what ships."""

from __future__ import annotations

import importlib

from django.apps import apps

_defaults = importlib.import_module("insurance.migrations.0002_default_rules_log_index")


def shipped_rules_ensure() -> None:
    _defaults.rules_install(apps, None)
