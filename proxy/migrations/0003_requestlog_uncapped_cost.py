from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("proxy", "0002_proxy_sql"),
    ]

    operations = [
        migrations.AddField(
            model_name="requestlog",
            name="over_reported",
            field=models.BooleanField(
                default=False,
                db_default=False,
                help_text="The usage cost more than the request's hold: it was "
                "charged the hold",
            ),
        ),
        migrations.AddField(
            model_name="requestlog",
            name="uncapped_cost_nanos",
            field=models.BigIntegerField(
                default=0,
                db_default=0,
                help_text="What the usage reported costs, before the cap at the hold",
            ),
        ),
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(
                condition=models.Q(("over_reported", True)),
                fields=["-created_at"],
                name="log_over_reported",
            ),
        ),
    ]
