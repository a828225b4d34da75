"""Operators: gift cards (their codes are never here: only the last four
characters), promotion batches with the action that mints their codes (a CSV
download, the only time the codes are shown), redemptions, and lockouts for
wrong codes (with an action to lift one)."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone

from billing.ledger.admin import ReadOnlyAdmin, usd_column
from gifts.errors import GiftError
from gifts.models import (
    GiftCard,
    PromotionBatch,
    PromotionKind,
    RedeemGuard,
    Redemption,
)
from gifts.promotions import promotion_check, promotion_mint
from gifts.redemption import redeem_unlock
from money import MoneyError, format_usd, usd_plain, usd_to_nanos


@admin.register(GiftCard)
class GiftCardAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "buyer",
        usd_column("amount_nanos", "amount"),
        "recipient_email",
        "status",
        "code_last4",
        "paid_at",
        "emailed_at",
        "redeemed_at",
        "refunded_at",
    )
    list_filter = ("status",)
    list_select_related = ("buyer__owner",)
    search_fields = ("buyer__owner__email", "recipient_email", "code_last4")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    exclude = ("code_digest",)


class PromotionBatchForm(forms.ModelForm):
    amount = forms.CharField(help_text="USD credited per redemption, e.g. 10.00")

    class Meta:
        model = PromotionBatch
        fields = ("name", "kind", "count", "max_redemptions", "expires_at", "disabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["amount"].initial = usd_plain(self.instance.amount_nanos)

    def clean(self):
        data = super().clean()
        try:
            self.instance.amount_nanos = usd_to_nanos(data.get("amount") or "")
        except MoneyError as exc:
            self.add_error("amount", str(exc))
            return data
        try:
            promotion_check(
                amount_nanos=self.instance.amount_nanos,
                kind=data.get("kind") or "",
                count=data.get("count") or 0,
                max_redemptions=data.get("max_redemptions") or 0,
                expires_at=data.get("expires_at"),
            )
        except GiftError as exc:
            field, _, message = str(exc).partition(": ")
            field = {"amount": "amount"}.get(field, field)
            self.add_error(field if field in self.fields else None, message or str(exc))
        return data


@admin.register(PromotionBatch)
class PromotionBatchAdmin(admin.ModelAdmin):
    form = PromotionBatchForm
    list_display = (
        "name",
        usd_column("amount_nanos", "amount"),
        "kind",
        "count",
        "max_redemptions",
        "expires_at",
        "minted_at",
        "redeemed",
        "disabled",
    )
    list_filter = ("kind", "disabled")
    search_fields = ("name",)
    actions = ["mint_codes"]
    readonly_fields = ("minted_at", "created_by", "created_at")

    @admin.display(description="redeemed")
    def redeemed(self, batch) -> int:
        return batch.redemptions.count()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.minted_at is not None:
            # Minted: what its codes are worth no longer changes.
            return (*self.readonly_fields, "kind", "count", "max_redemptions")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        if obj.kind == PromotionKind.SHARED:
            obj.count = 1
        else:
            obj.max_redemptions = 1
        super().save_model(request, obj, form, change)
        if not change:
            messages.info(
                request,
                "Now select the batch and run “Mint codes”: its codes download "
                "as a CSV, the only time they are shown.",
            )

    @admin.action(description="Mint codes (download them once, as CSV)")
    def mint_codes(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Mint one batch at a time.", messages.ERROR)
            return None
        batch = queryset.get()
        try:
            codes = promotion_mint(batch=batch, actor=request.user)
        except GiftError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        response = HttpResponse(content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="promotion-{batch.pk}-{stamp}.csv"'
        )
        response["Cache-Control"] = "no-store"
        writer = csv.writer(response)
        writer.writerow(["code", "amount", "uses", "expires_at"])
        for code in codes:
            writer.writerow(
                [
                    code,
                    format_usd(batch.amount_nanos),
                    batch.uses_per_code,
                    batch.expires_at.isoformat(),
                ]
            )
        return response


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "kind",
        usd_column("amount_nanos", "amount"),
        "gift_card",
        "batch",
        "entry",
    )
    list_filter = ("kind",)
    list_select_related = ("account__owner", "gift_card", "batch", "entry")
    search_fields = ("account__owner__email",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")


@admin.register(RedeemGuard)
class RedeemGuardAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "failures",
        "last_failure_at",
        "locked_until",
        "lockouts",
    )
    list_select_related = ("account__owner",)
    search_fields = ("account__owner__email",)
    ordering = ("-locked_until",)
    actions = ["unlock"]

    def has_change_permission(self, request, obj=None):
        # For the action only: the rows themselves are not edited here.
        return obj is None and request.user.is_staff

    @admin.action(description="Lift the pause (let them redeem again)")
    def unlock(self, request, queryset):
        for guard in queryset.select_related("account"):
            redeem_unlock(account=guard.account)
        self.message_user(request, f"{queryset.count()} account(s) may redeem again.")
