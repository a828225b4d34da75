from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).resolve().parent.parent / "sql" / "proxy_v1.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [
        ("proxy", "0001_initial"),
        ("billing", "0003_hold_api_key"),
        ("apikeys", "0001_initial"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
