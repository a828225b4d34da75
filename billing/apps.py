from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks
        from django.db.models.signals import post_migrate

        from billing import receivers  # noqa: F401 (connects them)
        from billing.ledger.sql_install import sql_check, sql_install_after_migrate

        # The SQL of every app (<app>/sql/*.sql) reaches the database after
        # each migrate, and `check --database` says where it differs.
        post_migrate.connect(sql_install_after_migrate, dispatch_uid="sql_install")
        checks.register(sql_check, checks.Tags.database)
