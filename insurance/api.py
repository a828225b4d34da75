"""REST: ``GET /api/v1/insurance`` (what AI insurance paid the account: the
summary, the covered requests page by page, the latest claims),
``GET /api/v1/insurance/claims`` (every claim, paginated) and
``GET, POST /api/v1/requests/{id}/claim`` (a request's claim; filing one with
``{"reason"}``).

Refusals of a claim (past 7 days, claimed already, paid already) come from the
services and are answered by agipower.api_errors: 400 or 409 with
``{"error": {"code", "message"}}``; a missing reason is a 400 naming
``reason``; another account's request is 404."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from accounts.access import AccountRequired
from accounts.validators import plain_text_multiline
from insurance.selectors import (
    KIND_LABELS,
    claim_payout,
    claims_list,
    insurance_summary,
    payouts_list,
    request_cover,
)
from insurance.services import REASON_MAX_LENGTH, claim_file
from money.fields import UsdField
from proxy.models import RequestLog

CLAIMS_SHOWN = 20
LOG_ID = OpenApiParameter(
    "log_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The request's id (its X-Request-Id)",
)


class PayoutSerializer(serializers.Serializer):
    request_id = serializers.UUIDField(help_text="The covered request's id")
    request_created_at = serializers.DateTimeField(help_text="When it was made")
    model = serializers.CharField()
    rule = serializers.CharField(
        source="kind",
        help_text="stream_failure, empty_output, truncated_output, high_latency, "
        "or claim",
    )
    rule_label = serializers.SerializerMethodField()
    cost = UsdField(source="cost_nanos", help_text="What the request cost")
    payout_percent = serializers.IntegerField()
    payout = UsdField(source="amount_nanos")
    paid_at = serializers.DateTimeField(source="created_at")
    transaction_id = serializers.CharField(
        source="entry_id", help_text="The history's row that paid it"
    )

    def get_rule_label(self, payout) -> str:
        return KIND_LABELS.get(payout.kind, payout.kind)


class ClaimSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request_id = serializers.UUIDField()
    request_created_at = serializers.DateTimeField()
    model = serializers.CharField()
    cost = UsdField(source="cost_nanos")
    reason = serializers.CharField()
    status = serializers.CharField(help_text="pending, accepted or declined")
    decision_reason = serializers.CharField(
        help_text="An operator's reason for declining; or, accepted, a note"
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    payout = serializers.SerializerMethodField(
        help_text="What the request was paid back (accepted claims); null if nothing"
    )
    created_at = serializers.DateTimeField()

    def get_payout(self, claim) -> str | None:
        payout = claim_payout(claim)
        return (
            None
            if payout is None
            else UsdField().to_representation(payout.amount_nanos)
        )


class ClaimRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH,
        validators=[plain_text_multiline],
        help_text="What went wrong (poor quality, a wrong answer...)",
    )


class GroupSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    total = UsdField(source="total_nanos")


class RuleGroupSerializer(GroupSerializer):
    rule = serializers.CharField(source="key")
    label = serializers.CharField()


class ModelGroupSerializer(GroupSerializer):
    model = serializers.CharField(source="key")


class PayoutPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PayoutSerializer(many=True)


class ClaimPageSerializer(PayoutPageSerializer):
    results = ClaimSerializer(many=True)


class InsuranceSerializer(serializers.Serializer):
    total_compensation = UsdField()
    count = serializers.IntegerField(help_text="Requests paid back")
    average_payout = UsdField()
    by_rule = RuleGroupSerializer(many=True)
    by_model = ModelGroupSerializer(many=True)
    payouts = PayoutPageSerializer(
        help_text="The covered requests, newest first; paged by limit and offset"
    )
    claims = ClaimPageSerializer(
        help_text=f"The latest {CLAIMS_SHOWN} claims; next pages all of them"
    )


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class RefusalSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class InsuranceView(AccountRequired, GenericAPIView):
    serializer_class = PayoutSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="Payouts a page"),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses=InsuranceSerializer,
    )
    def get(self, request):
        summary = insurance_summary(account=self.account)
        page = self.paginate_queryset(payouts_list(account=self.account))
        paginator = self.paginator
        claims = claims_list(account=self.account)
        claims_count = claims.count()
        claims_url = request.build_absolute_uri(reverse("api-insurance-claims"))
        return Response(
            {
                "total_compensation": UsdField().to_representation(summary.total_nanos),
                "count": summary.count,
                "average_payout": UsdField().to_representation(summary.average_nanos),
                "by_rule": RuleGroupSerializer(summary.by_rule, many=True).data,
                "by_model": ModelGroupSerializer(summary.by_model, many=True).data,
                "payouts": {
                    "count": paginator.count,
                    "next": paginator.get_next_link(),
                    "previous": paginator.get_previous_link(),
                    "results": PayoutSerializer(page, many=True).data,
                },
                "claims": {
                    "count": claims_count,
                    "next": replace_query_param(
                        replace_query_param(claims_url, "limit", CLAIMS_SHOWN),
                        "offset",
                        CLAIMS_SHOWN,
                    )
                    if claims_count > CLAIMS_SHOWN
                    else None,
                    "previous": None,
                    "results": ClaimSerializer(claims[:CLAIMS_SHOWN], many=True).data,
                },
            }
        )


class ClaimListView(AccountRequired, GenericAPIView):
    serializer_class = ClaimSerializer

    def get_queryset(self):
        return claims_list(account=self.account)

    @extend_schema(responses=ClaimSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class RequestClaimView(AccountRequired, GenericAPIView):
    """A request's claim: one per request, within 7 days of it."""

    serializer_class = ClaimSerializer
    pagination_class = None

    def _log_id(self, log_id: str) -> uuid.UUID:
        try:
            return uuid.UUID(log_id)
        except ValueError:
            raise NotFound("No such request.") from None

    @extend_schema(
        parameters=[LOG_ID],
        responses=ClaimSerializer,
        operation_id="requests_claim_retrieve",
    )
    def get(self, request, log_id: str):
        cover = request_cover(account=self.account, request_id=self._log_id(log_id))
        if cover.claim is None:
            raise NotFound("This request has no claim.")
        return Response(ClaimSerializer(cover.claim).data)

    @extend_schema(
        parameters=[LOG_ID],
        request=ClaimRequestSerializer,
        responses={
            201: ClaimSerializer,
            409: OpenApiResponse(
                RefusalSerializer,
                description="The request was claimed already, or paid already",
            ),
        },
        operation_id="requests_claim_create",
    )
    def post(self, request, log_id: str):
        request_id = self._log_id(log_id)
        data = ClaimRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            claim = claim_file(
                account=self.account,
                log_id=request_id,
                reason=data.validated_data["reason"],
            )
        except RequestLog.DoesNotExist:
            raise NotFound("No such request.") from None
        return Response(ClaimSerializer(claim).data, status=status.HTTP_201_CREATED)
