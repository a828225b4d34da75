"""REST: ``GET /api/v1/referrals``, the account's referral program.

``{"code", "link", "signups", "earned", "rewards_count", "rewards"}``: the
link to share, how many signed up with it (self-referrals not counted), what
it earned (USD, net of revoked rewards), and its newest 50 rewards."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from money.fields import UsdField
from referrals.models import RewardStatus
from referrals.selectors import referral_rewards, referral_summary
from referrals.services import referral_code_for


class RewardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    referee = serializers.CharField(help_text="The referred account's email, masked")
    top_up = UsdField(source="topup_nanos", help_text="The top-up that earned it")
    status = serializers.ChoiceField(choices=RewardStatus.choices)
    amount = UsdField(source="amount_nanos", help_text="Granted")
    revoked = UsdField(source="revoked_nanos", help_text="Taken back")
    note = serializers.CharField()


class ReferralsSerializer(serializers.Serializer):
    code = serializers.CharField()
    link = serializers.CharField(help_text="{SITE_URL}/signup?ref=CODE")
    signups = serializers.IntegerField()
    earned = UsdField(source="earned_nanos", help_text="Net of revoked rewards")
    rewards_count = serializers.IntegerField()
    rewards = RewardSerializer(many=True, help_text="The newest 50")


class ReferralsView(AccountRequired, APIView):
    @extend_schema(responses=ReferralsSerializer)
    def get(self, request):
        summary = referral_summary(
            account=self.account, code=referral_code_for(account=self.account)
        )
        data = {
            **summary.__dict__,
            "rewards": referral_rewards(account=self.account),
        }
        return Response(ReferralsSerializer(data).data)
