"""REST: saved cards, top-ups, auto top-up and the billing profile."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from accounts.models import BillingProfile
from accounts.services import billing_profile_save
from billing.models import SelfRefundStatus, TopUp, TopUpMethod
from billing.payments import services as payments
from billing.payments import stripe_gateway as gateway
from money.fields import UsdAmountField, UsdField


class CardSerializer(serializers.Serializer):
    id = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()
    default = serializers.BooleanField()


class PaymentMethodListView(AccountRequired, APIView):
    @extend_schema(responses=CardSerializer(many=True))
    def get(self, request):
        cards = gateway.cards_list(account=self.account)
        return Response(CardSerializer(cards, many=True).data)

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "SetupIntent",
                {
                    "setup_intent": serializers.CharField(),
                    "client_secret": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request):
        """Start saving a card: confirm the answer's client secret with
        Stripe.js (confirmCardSetup)."""
        intent = gateway.setup_intent_create(account=self.account)
        return Response(
            {"setup_intent": intent.id, "client_secret": intent.client_secret},
            status=status.HTTP_201_CREATED,
        )


class CardUpdateSerializer(serializers.Serializer):
    default = serializers.BooleanField(help_text="Only true: make it the default")

    def validate_default(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("only true is accepted")
        return value


class PaymentMethodDetailView(AccountRequired, APIView):
    @extend_schema(responses=CardSerializer)
    def get(self, request, pm_id: str):
        card = gateway.card_get(account=self.account, payment_method_id=pm_id)
        return Response(CardSerializer(card).data)

    @extend_schema(
        request=CardUpdateSerializer,
        responses=CardSerializer,
    )
    def patch(self, request, pm_id: str):
        account = self.account
        data = CardUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gateway.card_set_default(account=account, payment_method_id=pm_id)
        return Response(
            CardSerializer(
                gateway.card_get(account=account, payment_method_id=pm_id)
            ).data
        )

    @extend_schema(responses={204: None})
    def delete(self, request, pm_id: str):
        gateway.card_detach(account=self.account, payment_method_id=pm_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TopUpRequestSerializer(serializers.Serializer):
    amount = UsdAmountField()
    payment_method = serializers.CharField(required=False, allow_blank=False)
    method = serializers.ChoiceField(
        choices=TopUpMethod.values, default=TopUpMethod.CARD
    )
    # Checked by the top-up itself: an address on this site only.
    return_url = serializers.CharField(required=False, max_length=2000)


class TopUpSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = UsdField(source="amount_nanos")
    bonus = UsdField(source="bonus_nanos")
    payment_intent = serializers.CharField(source="payment_intent_id")
    status = serializers.CharField()
    method = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()


class TopUpCreateView(AccountRequired, APIView):
    @extend_schema(
        request=TopUpRequestSerializer,
        responses={
            201: inline_serializer(
                "TopUpStarted",
                {
                    **TopUpSerializer().get_fields(),
                    "client_secret": serializers.CharField(),
                    "next_action": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def post(self, request):
        """Top up. With a saved ``payment_method`` the server confirms the
        payment at once; ``status`` "requires_action" means Stripe.js must
        finish 3-D Secure with ``client_secret``. Otherwise confirm with Stripe.js
        (Alipay: with its redirect). Credits arrive when Stripe says the payment
        succeeded: ``status`` "succeeded"."""
        data = TopUpRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        started = payments.topup_start(
            account=self.account,
            amount_nanos=data.validated_data["amount"],
            method=data.validated_data["method"],
            payment_method_id=data.validated_data.get("payment_method"),
            return_url=data.validated_data.get("return_url"),
        )
        body = {
            **TopUpSerializer(started.topup).data,
            "client_secret": started.client_secret,
            "next_action": started.next_action,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TopUpDetailView(AccountRequired, APIView):
    @extend_schema(responses=TopUpSerializer)
    def get(self, request, topup_id: int):
        """The top-up; asks Stripe if it is still pending (after 3-D Secure or a
        redirect), so the answer is current."""
        topup = get_object_or_404(TopUp, pk=topup_id, account=self.account)
        if topup.status != "succeeded" and topup.payment_intent_id:
            topup = payments.topup_check(topup=topup)
        return Response(TopUpSerializer(topup).data)


class SelfRefundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SelfRefundStatus.values)
    amount = UsdField(source="amount_nanos", help_text="paid back to the card")
    fee = UsdField(source="fee_nanos", help_text="kept by the platform")
    top_up = serializers.IntegerField(source="topup_id")
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()


class TopUpRefundView(AccountRequired, APIView):
    @extend_schema(request=None, responses={201: SelfRefundSerializer})
    def post(self, request, topup_id: int):
        """Refund a top-up of the last 24 hours to its card: its amount less
        what was spent since and what was refunded already, less a 5% fee. Its
        credits (and its bonus) are taken at once; ``status`` is "refunding"
        until Stripe confirms ("refunded"), or "failed"/"canceled", which gives
        the credits back. Refused with the reason (400; 409 while another
        refund of it is in progress)."""
        topup = get_object_or_404(TopUp, pk=topup_id, account=self.account)
        refund = payments.self_refund_request(topup=topup, actor=request.user)
        return Response(
            SelfRefundSerializer(refund).data, status=status.HTTP_201_CREATED
        )


class AutoTopUpSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    threshold = UsdAmountField(source="threshold_nanos")
    amount = UsdAmountField(source="amount_nanos")
    payment_method = serializers.CharField(
        source="payment_method_id", allow_blank=True, required=False, default=""
    )
    paused_reason = serializers.CharField(read_only=True)
    paused_at = serializers.DateTimeField(read_only=True, allow_null=True)
    # True: saving the settings does not resume it; our team has to.
    paused_by_operator_only = serializers.BooleanField(read_only=True)


class AutoTopUpView(AccountRequired, APIView):
    @extend_schema(responses=AutoTopUpSerializer)
    def get(self, request):
        row = payments.autotopup_get(account=self.account)
        return Response(AutoTopUpSerializer(row).data)

    @extend_schema(request=AutoTopUpSerializer, responses=AutoTopUpSerializer)
    def put(self, request):
        data = AutoTopUpSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = payments.autotopup_configure(account=self.account, **data.validated_data)
        return Response(AutoTopUpSerializer(row).data)


class BillingProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingProfile
        fields = [
            "name",
            "country",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "postal_code",
            "tax_id",
        ]

    def validate_country(self, value: str) -> str:
        value = value.strip().upper()
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("a two-letter country code, e.g. US")
        return value


class BillingProfileView(AccountRequired, APIView):
    @extend_schema(responses=BillingProfileSerializer)
    def get(self, request):
        profile = BillingProfile.objects.filter(account=self.account).first()
        if profile is None:
            raise NotFound("No billing profile yet.")
        return Response(BillingProfileSerializer(profile).data)

    @extend_schema(request=BillingProfileSerializer, responses=BillingProfileSerializer)
    def put(self, request):
        data = BillingProfileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = billing_profile_save(account=self.account, **data.validated_data)
        return Response(BillingProfileSerializer(profile).data)
