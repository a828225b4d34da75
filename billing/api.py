"""REST: balances, the credits breakdown and the transaction history."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import account_for_user
from billing.money import MoneyError, format_usd, nanos_to_usd, usd_to_nanos
from billing.selectors import balance_get, breakdown_get, transactions_list
from invoices.selectors import invoice_ids_for_transactions


@extend_schema_field(
    {"type": "string", "format": "decimal", "example": "120.000000000"}
)
class UsdField(serializers.Field):
    """Nano-USD out as an exact decimal string ("120.000000000")."""

    def to_representation(self, value: int) -> str:
        return nanos_to_usd(value)


AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]{1,9})?$"


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT_PATTERN,
        "example": "5.00",
        "description": "USD as a decimal string of the digits 0-9 with up to nine "
        "places; a whole JSON number is accepted too",
    }
)
class UsdAmountField(serializers.Field):
    """A USD amount in, parsed by ``billing.money.usd_to_nanos`` (the one
    grammar of amounts), and the field's own bounds; out as ``UsdField``.

    A JSON number with a fraction (5.5) arrives as a float, which cannot carry
    money exactly, so it is refused rather than rounded. A whole JSON number
    (5) is exact and accepted."""

    default_error_messages = {
        "float": 'Send amounts as decimal strings, e.g. "5.50", not as JSON '
        "numbers with a fraction.",
        "invalid": 'Must be an amount in USD as a decimal string, e.g. "5.50".',
        "money": "{message}",
        "min_value": "Must be at least {limit}.",
        "max_value": "Must be at most {limit}.",
    }

    def __init__(self, *, min_nanos: int = 0, max_nanos: int | None = None, **kwargs):
        self.min_nanos = min_nanos
        self.max_nanos = max_nanos
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, float):
            self.fail("float")
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        try:
            nanos = usd_to_nanos(data)
        except MoneyError as exc:
            self.fail("money", message=str(exc))
        if nanos < self.min_nanos:
            self.fail(
                "min_value", limit=format_usd(self.min_nanos, _places(self.min_nanos))
            )
        if self.max_nanos is not None and nanos > self.max_nanos:
            self.fail(
                "max_value", limit=format_usd(self.max_nanos, _places(self.max_nanos))
            )
        return nanos

    def to_representation(self, value: int) -> str:
        return nanos_to_usd(value)


def _places(nanos: int) -> int:
    """Cents, or as many places as the bound needs ($0.000000001)."""
    return 2 if nanos % 10_000_000 == 0 else 9


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
