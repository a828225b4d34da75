"""REST: GET /api/v1/transactions, the transaction history with the invoice
of each top-up row.

At the top floor because it composes the ledger (the rows), payments (which
top-up a row is, and its invoice) and invoices (their download).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from accounts.access import AccountRequired
from billing.ledger.selectors import transactions_list
from billing.payments.selectors import topup_invoice_ids
from money.fields import UsdField


class TransactionSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    amount = UsdField(source="amount_nanos")
    type = serializers.CharField(source="kind")
    method = serializers.CharField(source="method_label")
    description = serializers.CharField()
    invoice_url = serializers.SerializerMethodField()

    def get_invoice_url(self, row) -> str | None:
        """The API download of a top-up row's invoice; null for other rows.

        The invoices of the whole page are looked up once, when its first row
        is shown (the child serializer is shared by the rows of a list)."""
        if not hasattr(self, "_invoice_ids"):
            account = self.context.get("account")
            page = self.parent.instance if self.parent is not None else [row]
            self._invoice_ids = (
                topup_invoice_ids(account=account, rows=page)
                if account is not None
                else {}
            )
        invoice_id = self._invoice_ids.get(row.id)
        if invoice_id is None:
            return None
        url = reverse("api-invoice-pdf", kwargs={"invoice_id": invoice_id})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class TransactionListView(AccountRequired, GenericAPIView):
    serializer_class = TransactionSerializer

    def get_queryset(self):
        return transactions_list(account=self.account)

    def get_serializer_context(self):
        # The rows' invoices are looked up in the account's top-ups.
        return {**super().get_serializer_context(), "account": self.account}

    @extend_schema(responses=TransactionSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
