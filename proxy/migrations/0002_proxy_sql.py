"""History: this migration once ran proxy/sql/proxy_v1.sql as that file was on
the day it ran. The proxy's functions are now installed after every migrate,
whenever the database differs from the file (billing/sql_install.py), so this
migration does nothing."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("proxy", "0001_initial"),
        ("billing", "0003_hold_api_key"),
        ("apikeys", "0001_initial"),
    ]

    operations = []
