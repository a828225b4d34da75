import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="paid_at",
            field=models.DateTimeField(
                blank=True, help_text="When the payment succeeded", null=True
            ),
        ),
        # Invoice.topup goes in 0003, after billing's 0008 copies each link to
        # TopUp.invoice. Nullable from here, so that undoing 0003 can add the
        # column back empty for billing's 0008 to fill again.
        migrations.AlterField(
            model_name="invoice",
            name="topup",
            field=models.OneToOneField(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="invoice",
                to="billing.topup",
            ),
        ),
    ]
