"""Operators' view of payments: top-ups (with a refund form), auto top-up's
cap per account, payments held for a mismatched amount, refunds (customers' own
too) and disputes."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.validators import plain_text_multiline
from billing.errors import BillingError
from billing.ledger.admin import ReadOnlyAdmin, usd_column
from billing.payments import stripe_admin  # noqa: F401 (dj-stripe's searches, fixed)
from billing.payments.models import (
    AutoTopUp,
    PaymentMismatch,
    SelfRefund,
    TopUp,
    TopUpDispute,
    TopUpRefund,
    TopUpStatus,
)
from billing.payments.services import (
    autotopup_cap,
    autotopup_cap_set,
    autotopup_unpause,
    paid_text,
    refundable_nanos,
    topup_refund,
)
from money import MoneyError, format_usd, usd_plain, usd_to_nanos


class RefundForm(forms.Form):
    amount = forms.CharField(help_text="USD, whole cents")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), validators=[plain_text_multiline]
    )

    def clean_amount(self) -> int:
        try:
            return usd_to_nanos(self.cleaned_data["amount"])
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "account",
        usd_column("amount_nanos", "amount"),
        usd_column("bonus_nanos", "bonus"),
        "status",
        "method",
        "automatic",
        usd_column("refunded_nanos", "refunded"),
        "disputed",
        "refund_link",
    )
    list_filter = ("status", "method", "automatic", "disputed")
    search_fields = ("account__owner__email", "payment_intent_id")
    list_select_related = ("account__owner",)

    @admin.display(description="")
    def refund_link(self, topup):
        if topup.status != TopUpStatus.SUCCEEDED:
            return ""
        url = reverse("admin:billing_topup_refund", args=[topup.pk])
        return format_html('<a href="{}">Refund</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:topup_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="billing_topup_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request, topup_id: int):
        if not request.user.is_superuser and not request.user.has_perm(
            "billing.change_topup"
        ):
            raise PermissionDenied
        topup = get_object_or_404(
            TopUp.objects.select_related("account__owner"), pk=topup_id
        )
        refundable = refundable_nanos(topup)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                topup_refund(
                    topup=topup,
                    amount_nanos=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    f"Refunded {format_usd(form.cleaned_data['amount'])} of top-up "
                    f"{topup.pk}; its credits were taken back.",
                    messages.SUCCESS,
                )
                return redirect("admin:billing_topup_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund top-up {topup.pk} of {topup.account.owner.email}",
            "topup": topup,
            "refundable": format_usd(refundable),
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/refund.html", context)


class AutoTopUpCapForm(forms.ModelForm):
    max_usd_per_day = forms.CharField(
        required=False,
        label="Max USD per 24 hours",
        help_text="charged automatically in any 24 hours; empty: the default",
    )

    class Meta:
        model = AutoTopUp
        fields = ("max_charges_per_day",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.max_nanos_per_day is not None:
            self.initial["max_usd_per_day"] = usd_plain(self.instance.max_nanos_per_day)

    def clean_max_usd_per_day(self) -> int | None:
        value = self.cleaned_data["max_usd_per_day"].strip()
        if not value:
            return None
        try:
            return usd_to_nanos(value)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(AutoTopUp)
class AutoTopUpAdmin(admin.ModelAdmin):
    """Customers set auto top-up in the console; operators change only an
    account's cap of automatic charges per 24 hours."""

    form = AutoTopUpCapForm
    list_display = (
        "account",
        "enabled",
        usd_column("threshold_nanos", "threshold"),
        usd_column("amount_nanos", "amount"),
        "armed",
        "in_flight",
        "cap",
        "paused_reason",
        "paused_at",
        "paused_by_operator_only",
    )
    list_filter = ("enabled", "armed", "paused_by_operator_only")
    actions = ("unpause",)
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner",)
    readonly_fields = (
        "account",
        "enabled",
        usd_column("threshold_nanos", "threshold", 9),
        usd_column("amount_nanos", "amount", 9),
        "payment_method_id",
        "armed",
        "in_flight",
        "paused_reason",
        "paused_at",
        "paused_by_operator_only",
        "updated_at",
        "cap",
    )

    def get_fields(self, request, obj=None):
        return [*self.readonly_fields, "max_charges_per_day", "max_usd_per_day"]

    @admin.display(description="cap per 24 hours")
    def cap(self, row) -> str:
        return str(autotopup_cap(row))

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        autotopup_cap_set(
            account=obj.account,
            max_charges_per_day=form.cleaned_data["max_charges_per_day"],
            max_nanos_per_day=form.cleaned_data["max_usd_per_day"],
            actor=request.user,
        )

    @admin.action(
        description="Resume auto top-up (lifts any pause, a dispute's too)",
        permissions=["change"],
    )
    def unpause(self, request, queryset):
        count = 0
        for row in queryset.select_related("account"):
            if row.paused_at is not None:
                autotopup_unpause(account=row.account, actor=request.user)
                count += 1
        self.message_user(request, f"Auto top-up resumed on {count} account(s).")


@admin.register(PaymentMismatch)
class PaymentMismatchAdmin(admin.ModelAdmin):
    """Payments Stripe reported for another amount or currency than their
    top-up's: nothing was credited. Operators settle each in Stripe (refund) or
    here (grant what is due), then mark it resolved with a note."""

    list_display = (
        "id",
        "created_at",
        "topup",
        "account_email",
        "payment_intent_id",
        "expected",
        "paid",
        "resolved",
    )
    list_filter = ("resolved",)
    search_fields = ("payment_intent_id", "topup__account__owner__email")
    list_select_related = ("topup__account__owner",)
    fields = (
        "topup",
        "payment_intent_id",
        "expected",
        "paid",
        "created_at",
        "resolved",
        "note",
    )
    readonly_fields = ("topup", "payment_intent_id", "expected", "paid", "created_at")

    @admin.display(description="account")
    def account_email(self, row) -> str:
        return row.topup.account.owner.email

    @admin.display(description="expected")
    def expected(self, row) -> str:
        return paid_text(row.expected_cents, row.expected_currency)

    @admin.display(description="paid")
    def paid(self, row) -> str:
        return paid_text(row.paid_cents, row.paid_currency)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TopUpRefund)
class TopUpRefundAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_refund_id",
        "created_at",
        "topup",
        usd_column("amount_nanos", "amount"),
        "actor",
        "reason",
    )
    search_fields = ("stripe_refund_id", "topup__account__owner__email")
    list_select_related = ("topup", "actor")


@admin.register(SelfRefund)
class SelfRefundAdmin(ReadOnlyAdmin):
    """Customers' own refunds of fresh top-ups (the console's "Request
    refund"): what went back, the fee kept, and how Stripe ended it."""

    list_display = (
        "id",
        "created_at",
        "account_email",
        "topup",
        usd_column("amount_nanos", "paid back"),
        usd_column("fee_nanos", "fee"),
        "status",
        "stripe_refund_id",
        "closed_at",
    )
    list_filter = ("status",)
    search_fields = ("stripe_refund_id", "topup__account__owner__email")
    list_select_related = ("topup__account__owner",)

    @admin.display(description="account")
    def account_email(self, row) -> str:
        return row.topup.account.owner.email


@admin.register(TopUpDispute)
class TopUpDisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_dispute_id",
        "created_at",
        "topup",
        usd_column("amount_nanos", "amount"),
        "status",
        "closed_at",
    )
    list_filter = ("status",)
    search_fields = ("stripe_dispute_id", "topup__account__owner__email")
    list_select_related = ("topup",)
