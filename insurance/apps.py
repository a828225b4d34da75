from django.apps import AppConfig


class InsuranceConfig(AppConfig):
    name = "insurance"
    verbose_name = "AI insurance"
    default_auto_field = "django.db.models.BigAutoField"
