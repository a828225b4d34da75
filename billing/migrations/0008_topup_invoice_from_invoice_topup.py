"""Top-ups point at their invoice (``TopUp.invoice``) instead of invoices at
their top-up (``Invoice.topup``, removed next by invoices): copy each link
over, and each invoice's date of payment (the top-up's ``succeeded_at``)."""

from django.db import migrations
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce


def topups_point_at_their_invoice(apps, schema_editor):
    TopUp = apps.get_model("billing", "TopUp")
    Invoice = apps.get_model("invoices", "Invoice")
    invoices = Invoice.objects.filter(topup_id=OuterRef("pk"))
    TopUp.objects.filter(invoice__isnull=True).update(
        invoice_id=Subquery(invoices.values("pk")[:1])
    )
    succeeded_at = TopUp.objects.filter(pk=OuterRef("topup_id"))
    Invoice.objects.filter(paid_at__isnull=True).update(
        paid_at=Coalesce(
            Subquery(succeeded_at.values("succeeded_at")[:1]), F("issued_at")
        )
    )


def invoices_point_at_their_topup(apps, schema_editor):
    TopUp = apps.get_model("billing", "TopUp")
    Invoice = apps.get_model("invoices", "Invoice")
    topups = TopUp.objects.filter(invoice_id=OuterRef("pk"))
    Invoice.objects.update(topup_id=Subquery(topups.values("pk")[:1]))


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_topup_invoice"),
    ]

    operations = [
        migrations.RunPython(
            topups_point_at_their_invoice, invoices_point_at_their_topup
        ),
    ]
