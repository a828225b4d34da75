"""REST: GET /api/v1/transactions, the transaction history with the invoice
of each top-up row, and GET /api/v1/transactions.csv, the same rows streamed
as CSV (PostgreSQL writes it: money.csv_stream).

At the top floor because it composes the ledger (the rows), payments (which
top-up a row is, and its invoice) and invoices (their download).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from accounts.access import AccountRequired
from billing.ledger.selectors import transactions_list, transactions_sql
from billing.payments.selectors import topup_invoice_ids
from money.csv_stream import (
    CsvNegotiation,
    csv_copy,
    csv_response,
    range_filename,
    safe_text_sql,
    usd_sql,
    utc_sql,
)
from money.fields import UsdField
from proxy.filters import date_range_from


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


TRANSACTION_COLUMNS = (
    "id",
    "created_at",
    "type",
    "amount_usd",
    "method",
    "description",
    "invoice_url",
)


class TransactionCsvView(AccountRequired, GenericAPIView):
    """The transaction history as CSV, newest first, streamed: the rows of
    GET /api/v1/transactions (usage one row per UTC day), in ``from``..``to``
    when given. Amounts are exact USD decimals."""

    content_negotiation_class = CsvNegotiation
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.STR,
                description="ISO 8601 date or date-time (UTC unless an offset is "
                "given), inclusive",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.STR,
                description="ISO 8601 date or date-time, inclusive: a date "
                "includes its whole day",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="A header row, then a row per transaction"
            )
        },
        operation_id="transactions_csv",
    )
    def get(self, request):
        since, before = date_range_from(request.query_params)
        sql, params = _transactions_sql(
            account=self.account,
            since=since,
            before=before,
            invoice_url=request.build_absolute_uri(
                reverse("api-invoice-pdf", kwargs={"invoice_id": _INVOICE_MARK})
            ),
        )
        return csv_response(
            request,
            csv_copy(sql=sql, params=params, header=TRANSACTION_COLUMNS),
            filename=range_filename("transactions", since, before),
        )


_INVOICE_MARK = 987654321


def _transactions_sql(*, account, since, before, invoice_url) -> tuple[str, dict]:
    """The history's own rows (``transactions_sql``), formatted; a top-up's
    invoice found as ``topup_invoice_ids`` finds it (its entry, or its payment
    intent as the row's reference)."""
    rows, params = transactions_sql(account=account)
    url_head, url_tail = invoice_url.split(str(_INVOICE_MARK))
    sql = f"""
        SELECT r.id, {utc_sql("r.created_at")}, r.kind, {usd_sql("r.amount_nanos")},
               {safe_text_sql("r.method")},
               {safe_text_sql("r.description")},
               CASE WHEN invoice.id IS NOT NULL
                    THEN %(url_head)s || invoice.id || %(url_tail)s END
          FROM ({rows}) AS r
          LEFT JOIN LATERAL (
              SELECT t.invoice_id AS id
                FROM billing_topup t
               WHERE r.kind = 'topup' AND t.account_id = %(account)s
                 AND t.invoice_id IS NOT NULL
                 AND (t.entry_id::text = r.id
                      OR (r.reference <> '' AND t.payment_intent_id = r.reference))
               ORDER BY t.entry_id::text = r.id DESC
               LIMIT 1
          ) AS invoice ON true
         WHERE (%(since)s::timestamptz IS NULL OR r.created_at >= %(since)s)
           AND (%(before)s::timestamptz IS NULL OR r.created_at < %(before)s)
         ORDER BY r.created_at DESC, r.id DESC
    """  # noqa: S608 - constant SQL; values are parameters
    params |= {
        "account": account.pk,
        "since": since,
        "before": before,
        "url_head": url_head,
        "url_tail": url_tail,
    }
    return sql, params
