"""REST: buy gift cards, list them, see a bearer card's code once, refund one,
and redeem any code.

``POST /api/v1/gift-cards {amount, recipient_email?, payment_method?}`` → 201
with the purchase; ``code`` is there (once) when a saved card paid at once
for a bearer card, else ``POST /api/v1/gift-cards/{id}/code`` shows it once
after payment. ``POST /api/v1/gift-codes/redeem {code}`` → 200
``{amount, type}``, type "gift" or "discount". Another account's cards: 404.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from gifts import services
from gifts.errors import GiftCardNotFound
from gifts.rules import MAX_CARD_NANOS, MIN_CARD_NANOS
from gifts.selectors import (
    gift_card_code_shown,
    gift_card_of,
    gift_card_status,
    gift_cards_of,
)
from money.fields import UsdAmountField, UsdField


class GiftCardRequestSerializer(serializers.Serializer):
    amount = UsdAmountField(
        min_nanos=MIN_CARD_NANOS,
        max_nanos=MAX_CARD_NANOS,
        help_text="Whole dollars, $5 to $500",
    )
    recipient_email = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=254,
        help_text="Only the account with this email may redeem it; we email "
        "the code there. Without it, a bearer card whose code you see once.",
    )
    payment_method = serializers.CharField(required=False, allow_blank=False)


class GiftCardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = UsdField(source="amount_nanos")
    status = serializers.SerializerMethodField()
    recipient_email = serializers.CharField()
    code_hint = serializers.SerializerMethodField(
        help_text="The code's last four characters, once it was made"
    )
    payment_intent = serializers.CharField(source="topup.payment_intent_id")
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField()
    emailed_at = serializers.DateTimeField()
    redeemed_at = serializers.DateTimeField()
    refunded_at = serializers.DateTimeField()
    refund = UsdField(source="refund_nanos")
    refund_fee = UsdField(source="refund_fee_nanos")
    refundable = serializers.SerializerMethodField()
    invoice_url = serializers.SerializerMethodField(
        help_text="The purchase's invoice (PDF), once paid"
    )

    def get_invoice_url(self, card) -> str | None:
        invoice_id = card.topup.invoice_id
        if invoice_id is None:
            return None
        url = reverse("api-invoice-pdf", kwargs={"invoice_id": invoice_id})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    def get_status(self, card) -> str:
        return gift_card_status(card)

    def get_code_hint(self, card) -> str:
        return gift_card_code_shown(card)

    def get_refundable(self, card) -> bool:
        return not services.gift_card_refund_refusal(card)


class GiftCardStartedSerializer(GiftCardSerializer):
    client_secret = serializers.CharField()
    next_action = serializers.CharField(allow_null=True)
    code = serializers.CharField(
        allow_null=True, help_text="Shown here once if the payment went through"
    )


class GiftCardListView(AccountRequired, GenericAPIView):
    serializer_class = GiftCardSerializer

    def get_queryset(self):
        return gift_cards_of(account=self.account)

    @extend_schema(responses=GiftCardSerializer(many=True))
    def get(self, request):
        """The gift cards you bought, newest first."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            GiftCardSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        request=GiftCardRequestSerializer,
        responses={201: GiftCardStartedSerializer},
    )
    def post(self, request):
        """Buy a gift card (no bonus). With a saved ``payment_method`` the
        server confirms the payment at once; ``status`` "pending" with a
        ``next_action`` means Stripe.js must finish 3-D Secure with
        ``client_secret``; without one, confirm the payment with Stripe.js.
        ``code`` is shown here once when the payment went through at once."""
        data = GiftCardRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        started = services.gift_card_start(
            account=self.account,
            amount_nanos=data.validated_data["amount"],
            recipient_email=data.validated_data.get("recipient_email"),
            payment_method_id=data.validated_data.get("payment_method"),
        )
        body = {
            **GiftCardSerializer(started.card, context={"request": request}).data,
            "client_secret": started.client_secret,
            "next_action": started.next_action,
            "code": started.code,
        }
        return Response(body, status=status.HTTP_201_CREATED)


def _card(view, card_id: int):
    card = gift_card_of(account=view.account, card_id=card_id)
    if card is None:
        raise GiftCardNotFound("No such gift card.")
    return card


class GiftCardDetailView(AccountRequired, APIView):
    @extend_schema(responses=GiftCardSerializer)
    def get(self, request, card_id: int):
        """The card; asks Stripe if its payment is still pending."""
        card = services.gift_card_refresh(card=_card(self, card_id))
        return Response(GiftCardSerializer(card, context={"request": request}).data)


class GiftCardCodeView(AccountRequired, APIView):
    @extend_schema(
        request=None,
        responses={
            200: inline_serializer("GiftCardCode", {"code": serializers.CharField()})
        },
    )
    def post(self, request, card_id: int):
        """A paid bearer card's code: shown once (409 afterwards)."""
        card = services.gift_card_refresh(card=_card(self, card_id))
        code = services.gift_card_code_reveal(account=self.account, card_id=card.pk)
        return Response({"code": code})


class GiftCardRefundView(AccountRequired, APIView):
    @extend_schema(request=None, responses=GiftCardSerializer)
    def post(self, request, card_id: int):
        """Refund an unredeemed card within 24 hours of purchase: 95% of its
        price goes back to the card that paid (a 5% fee); the code is void."""
        card = services.gift_card_refund(
            account=self.account, card_id=_card(self, card_id).pk
        )
        card = gift_card_of(account=self.account, card_id=card.pk)
        return Response(GiftCardSerializer(card, context={"request": request}).data)


class RedeemRequestSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=100, help_text="AGIP-XXXX-XXXX-XXXX")


class RedeemedSerializer(serializers.Serializer):
    amount = UsdField(source="amount_nanos")
    type = serializers.ChoiceField(choices=["gift", "discount"])
    balance = UsdField(source="balance_nanos", help_text="The total balance now")


class RedeemView(AccountRequired, APIView):
    @extend_schema(request=RedeemRequestSerializer, responses=RedeemedSerializer)
    def post(self, request):
        """Redeem a gift card's or a promotion's code: its amount is credited
        to the bonus pool. Wrong codes: after 5, 429 with Retry-After for 15
        minutes."""
        data = RedeemRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        redeemed = services.code_redeem(
            account=self.account, code=data.validated_data["code"]
        )
        return Response(RedeemedSerializer(redeemed).data)
