"""Key actions: the history of each API key's status, credit limit and deletion,
by its owner or an operator, append-only (``apikeys/sql/apikeys_v1.sql``)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apikeys", "0002_remove_apikey_held"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="KeyAction",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("enabled", "Enabled by its owner"),
                            ("disabled", "Disabled by its owner"),
                            ("operator_enabled", "Enabled by an operator"),
                            ("operator_disabled", "Disabled by an operator"),
                            ("limit_changed", "Credit limit changed"),
                            ("deleted", "Deleted"),
                        ],
                        max_length=20,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=500)),
                (
                    "status_before",
                    models.CharField(
                        choices=[("enabled", "Enabled"), ("disabled", "Disabled")],
                        max_length=8,
                    ),
                ),
                (
                    "status_after",
                    models.CharField(
                        choices=[("enabled", "Enabled"), ("disabled", "Disabled")],
                        max_length=8,
                    ),
                ),
                ("limit_nanos_before", models.BigIntegerField(blank=True, null=True)),
                ("limit_nanos_after", models.BigIntegerField(blank=True, null=True)),
                (
                    "limit_reset_before",
                    models.CharField(
                        choices=[
                            ("none", "Never"),
                            ("daily", "Daily"),
                            ("weekly", "Weekly"),
                            ("monthly", "Monthly"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "limit_reset_after",
                    models.CharField(
                        choices=[
                            ("none", "Never"),
                            ("daily", "Daily"),
                            ("weekly", "Weekly"),
                            ("monthly", "Monthly"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        help_text="Who acted: an operator, or the key's owner",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "api_key",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="actions",
                        to="apikeys.apikey",
                    ),
                ),
            ],
            options={
                "verbose_name": "key action",
                "indexes": [
                    models.Index(fields=["api_key", "at"], name="keyaction_key_at")
                ],
            },
        ),
    ]
