from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = "Proxy and model catalog"
    default_auto_field = "django.db.models.BigAutoField"
