import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_autotopup_cap_and_payment_records"),
        ("invoices", "0002_invoice_paid_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="topup",
            name="invoice",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="invoices.invoice",
            ),
        ),
    ]
