"""REST: balances, the credits breakdown and the transaction history."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import account_for_user
from billing.ledger.selectors import balance_get, breakdown_get, transactions_list
from invoices.selectors import invoice_ids_for_transactions
from money.fields import UsdField


class BalanceSerializer(serializers.Serializer):
    total_credits = UsdField(source="total_nanos")
    top_up_credits = UsdField(source="topup_nanos")
    bonus_credits = UsdField(source="bonus_nanos")
    held_credits = UsdField(source="held_nanos")
    currency = serializers.SerializerMethodField()

    def get_currency(self, balance) -> str:
        return "USD"


class BreakdownSerializer(serializers.Serializer):
    """Signed USD strings; expired, usage and refunds are negative and all the
    lines sum to the total balance."""

    top_ups = UsdField()
    bonuses = UsdField()
    gifts = UsdField()
    referrals = UsdField()
    compensations = UsdField()
    adjustments = UsdField()
    expired = UsdField()
    usage = UsdField()
    refunds = UsdField()
    total = UsdField()


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
            request = self.context.get("request")
            page = self.parent.instance if self.parent is not None else [row]
            self._invoice_ids = (
                invoice_ids_for_transactions(user=request.user, rows=page)
                if request is not None
                else {}
            )
        invoice_id = self._invoice_ids.get(row.id)
        if invoice_id is None:
            return None
        url = reverse("api-invoice-pdf", kwargs={"invoice_id": invoice_id})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class BalanceView(APIView):
    @extend_schema(responses=BalanceSerializer)
    def get(self, request):
        balance = balance_get(account=account_for_user(request.user))
        return Response(BalanceSerializer(balance).data)


class BreakdownView(APIView):
    @extend_schema(responses=BreakdownSerializer)
    def get(self, request):
        lines = breakdown_get(account=account_for_user(request.user))
        return Response(BreakdownSerializer(lines).data)


class TransactionListView(GenericAPIView):
    serializer_class = TransactionSerializer

    def get_queryset(self):
        return transactions_list(account=account_for_user(self.request.user))

    @extend_schema(responses=TransactionSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
