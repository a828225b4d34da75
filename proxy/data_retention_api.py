"""``GET, PUT /api/v1/data-retention``: the account's switch that keeps the
bodies of its requests and answers (proxy/body_retention.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from proxy.body_retention import (
    DAYS_MAX,
    DAYS_MIN,
    BodiesBeingDeleted,
    body_retention_get,
    body_retention_set,
)


class DataRetentionSerializer(serializers.Serializer):
    store_bodies = serializers.BooleanField(
        help_text="Keep the bodies of requests and of their answers. Turning it "
        "off deletes every body kept (they are no longer shown at once, and "
        "deleted within minutes); it may be turned on again once they are "
        "(409 until then)."
    )
    retention_days = serializers.IntegerField(
        min_value=DAYS_MIN,
        max_value=DAYS_MAX,
        required=False,
        help_text=f"How long a body is kept, {DAYS_MIN} to {DAYS_MAX} days; it "
        "applies to the bodies kept from then on. Unchanged when left out.",
    )

    @staticmethod
    def of(retention) -> dict:
        return {"store_bodies": retention.enabled, "retention_days": retention.days}


class DataRetentionView(AccountRequired, APIView):
    @extend_schema(responses=DataRetentionSerializer)
    def get(self, request):
        return Response(
            DataRetentionSerializer.of(body_retention_get(account=self.account))
        )

    @extend_schema(
        request=DataRetentionSerializer,
        responses={
            200: DataRetentionSerializer,
            409: OpenApiResponse(
                description="Turned on while the bodies kept before are still "
                "being deleted"
            ),
        },
    )
    def put(self, request):
        data = DataRetentionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        days = data.validated_data.get("retention_days")
        if days is None:
            days = body_retention_get(account=self.account).days
        try:
            retention = body_retention_set(
                account=self.account,
                store_bodies=data.validated_data["store_bodies"],
                retention_days=days,
            )
        except BodiesBeingDeleted as busy:
            return Response({"store_bodies": [str(busy)]}, status=409)
        return Response(DataRetentionSerializer.of(retention))
