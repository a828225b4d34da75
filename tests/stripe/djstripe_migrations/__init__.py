"""dj-stripe's tables for the test database, made in about a second.

dj-stripe's own migrations take ~30 s (one of them removes 514 fields). Leaving
the app unmigrated (``MIGRATION_MODULES = {"djstripe": None}``) does not work:
Django creates an unmigrated app's tables before any migration runs, and
``djstripe_customer.subscriber`` points at ``accounts_account``, which does not
exist yet. So the test session (``tests/conftest.py``) points dj-stripe's
MIGRATION_MODULES here: one migration, after the subscriber's app, that creates
the tables straight from dj-stripe's current models.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ModelState


def _djstripe_models():
    return global_apps.get_app_config("djstripe").get_models()


class DjstripeTablesCreate(Operation):
    """Every dj-stripe model at once: in the migration state and as tables."""

    reversible = False
    reduces_to_sql = False

    def deconstruct(self):
        return self.__class__.__qualname__, [], {}

    def state_forwards(self, app_label, state):
        for model in _djstripe_models():
            model_state = ModelState.from_model(model)
            state.models[app_label, model_state.name_lower] = model_state
        # Render the state again once, when next needed: adding ~80 related
        # models one by one re-renders their relations each time (~4 s).
        state.__dict__.pop("apps", None)
        state._relations = None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        # The real models, not historical ones: they are what the tests use.
        for model in _djstripe_models():
            schema_editor.create_model(model)

    def describe(self):
        return "Create dj-stripe's tables from its current models (tests only)"
