"""REST: balances and the credits breakdown (the transaction history, which
links invoices, is at the top: ``agipower.api_transactions``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from billing.ledger.selectors import balance_get, breakdown_get
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


class BalanceView(AccountRequired, APIView):
    @extend_schema(responses=BalanceSerializer)
    def get(self, request):
        balance = balance_get(account=self.account)
        return Response(BalanceSerializer(balance).data)


class BreakdownView(AccountRequired, APIView):
    @extend_schema(responses=BreakdownSerializer)
    def get(self, request):
        lines = breakdown_get(account=self.account)
        return Response(BreakdownSerializer(lines).data)
