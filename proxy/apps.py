from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = "Proxy and model catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from proxy.retention import partitions_after_migrate

        # After billing's receiver has installed this app's SQL (billing comes
        # first in INSTALLED_APPS, so its receiver runs first): the request
        # logs' months ahead exist as soon as the database does.
        post_migrate.connect(
            partitions_after_migrate, sender=self, dispatch_uid="proxy_partitions"
        )
