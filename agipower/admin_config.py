"""Django's admin, with AGIPower's admin site as ``admin.site``."""

from django.contrib.admin.apps import AdminConfig


class OperatorsAdminConfig(AdminConfig):
    default_site = "agipower.admin_site.OperatorsAdminSite"
