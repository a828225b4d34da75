"""Billing never names API keys: a hold says what else it counts against in its
caller's own terms (``owner``; the proxy writes "apikey:<id>") instead of a
foreign key to ``apikeys.ApiKey``. The key of each hold is copied over here;
the foreign key goes in the next migration."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_topup_invoice_from_invoice_topup")]

    operations = [
        migrations.AddField(
            model_name="hold",
            name="owner",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunSQL(
            "UPDATE billing_hold SET owner = 'apikey:' || api_key_id"
            " WHERE api_key_id IS NOT NULL",
            reverse_sql="UPDATE billing_hold"
            " SET api_key_id = substr(owner, 8)::bigint"
            " WHERE owner LIKE 'apikey:%'",
        ),
    ]
