"""Invoices name no top-ups: the top-up points at its invoice now (billing's
0008 copied each link)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0002_invoice_paid_at"),
        ("billing", "0008_topup_invoice_from_invoice_topup"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="invoice",
            name="topup",
        ),
    ]
