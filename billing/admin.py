"""Operators' view of the ledger: read-only journal, lots and holds, and a form
on each account to grant gifts, compensations, referrals and adjustments."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import Account
from accounts.validators import plain_text_multiline
from billing.errors import BillingError
from billing.ledger.services import GRANT_SOURCES, credit_grant
from billing.models import (
    AutoTopUp,
    CreditLot,
    Hold,
    LedgerEntry,
    LotMovement,
    LotSource,
    PaymentMismatch,
    Pool,
    ReconciliationRun,
    TopUp,
    TopUpDispute,
    TopUpRefund,
    TopUpStatus,
    Wallet,
)
from billing.payments import stripe_admin  # noqa: F401 (dj-stripe's searches, fixed)
from billing.payments.services import (
    autotopup_cap,
    autotopup_cap_set,
    paid_text,
    refundable_nanos,
    topup_refund,
)
from money import MoneyError, format_usd, usd_plain, usd_to_nanos


def _usd(field: str, label: str, places: int = 2):
    """A list column: "$25.00" (detail pages show every nano, see below)."""

    def show(obj) -> str:
        value = getattr(obj, field)
        return "—" if value is None else format_usd(value, places)

    show.short_description = label
    show.admin_order_field = field
    return show


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows changed only through their services (the ledger, request logs),
    never by editing them in admin.

    On a row's own page every ``*_nanos`` field reads as dollars with all nine
    places ("$25.000000000"), not as a raw count of nanos."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        return [
            _usd(name, _label(self.model, name), 9)
            if isinstance(name, str) and name.endswith("_nanos")
            else name
            for name in super().get_fields(request, obj)
        ]


def _label(model, name: str) -> str:
    """ "amount" for amount_nanos (a verbose name of its own is kept)."""
    try:
        label = str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        label = name
    return label.removesuffix("_nanos").removesuffix(" nanos")


class MovementInline(admin.TabularInline):
    model = LotMovement
    fields = ("lot", "delta")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="delta")
    def delta(self, movement):
        return format_usd(movement.delta_nanos, 9)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "account",
        "kind",
        _usd("amount_nanos", "amount"),
        _usd("topup_balance_nanos", "top-up after"),
        _usd("bonus_balance_nanos", "bonus after"),
        "actor",
        "description",
    )
    list_filter = ("kind",)
    search_fields = (
        "account__owner__email",
        "reference",
        "idempotency_key",
        "description",
    )
    date_hierarchy = "created_at"
    list_select_related = ("account__owner", "actor")
    inlines = [MovementInline]


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "source",
        "pool",
        _usd("amount_nanos", "amount"),
        _usd("remaining_nanos", "remaining"),
        "expires_at",
        "created_at",
    )
    list_filter = ("source", "pool")
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner",)
    inlines = [MovementInline]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "state",
        _usd("amount_nanos", "held"),
        _usd("charged_nanos", "charged"),
        "created_at",
        "expires_at",
        "reference",
    )
    list_filter = ("state",)
    search_fields = ("account__owner__email", "reference")
    list_select_related = ("account__owner",)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", "accounts_checked", "drift_count")
    readonly_fields = (
        "started_at",
        "finished_at",
        "accounts_checked",
        "drift_count",
        "drifts",
    )


class GrantForm(forms.Form):
    source = forms.ChoiceField(
        choices=[(s.value, s.label) for s in LotSource if s in GRANT_SOURCES]
    )
    amount = forms.CharField(
        help_text="USD, e.g. 25 or 0.50; an adjustment may be negative to take "
        "credits back"
    )
    pool = forms.ChoiceField(
        choices=Pool.choices,
        initial=Pool.BONUS,
        help_text="Only an adjustment may use the top-up pool",
    )
    expires_at = forms.DateTimeField(required=False, help_text="Optional, UTC")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), validators=[plain_text_multiline]
    )
    # One key per rendered form: submitting it twice grants once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput)

    def clean_amount(self) -> int:
        try:
            # An adjustment may take credits back; the grant says which may.
            return usd_to_nanos(self.cleaned_data["amount"], signed=True)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None


def _may_grant(user) -> bool:
    return user.is_superuser or user.has_perm("billing.add_ledgerentry")


class WalletInline(admin.StackedInline):
    model = Wallet
    can_delete = False
    fields = ("total", "topup", "bonus", "held", "updated_at")
    readonly_fields = fields

    def total(self, wallet):
        return format_usd(wallet.total_nanos, 9)

    def topup(self, wallet):
        return format_usd(wallet.topup_nanos, 9)

    def bonus(self, wallet):
        return format_usd(wallet.bonus_nanos, 9)

    def held(self, wallet):
        return format_usd(wallet.held_nanos, 9)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("id", "__str__", "owner", "created_at", "balance", "grant_link")
    list_display_links = ("id", "__str__")
    search_fields = ("owner__email", "owner__full_name", "name")
    list_select_related = ("owner", "wallet")
    readonly_fields = ("owner", "created_at")
    inlines = [WalletInline]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="total balance")
    def balance(self, account):
        return format_usd(account.wallet.total_nanos)

    @admin.display(description="")
    def grant_link(self, account):
        url = reverse("admin:accounts_account_grant", args=[account.pk])
        return format_html('<a href="{}">Grant credits</a>', url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # "Grant credits" on the account's own page (its object tools).
        extra_context = {**(extra_context or {}), "may_grant": _may_grant(request.user)}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:account_id>/grant/",
                self.admin_site.admin_view(self.grant_view),
                name="accounts_account_grant",
            ),
            *super().get_urls(),
        ]

    def grant_view(self, request, account_id: int):
        if not _may_grant(request.user):
            raise PermissionDenied
        account = get_object_or_404(
            Account.objects.select_related("owner"), pk=account_id
        )
        if request.method == "POST":
            form = GrantForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    entry = credit_grant(
                        account=account,
                        source=data["source"],
                        amount_nanos=data["amount"],
                        pool=data["pool"],
                        expires_at=data["expires_at"],
                        reason=data["reason"],
                        actor=request.user,
                        idempotency_key=f"admin:{data['idempotency_key']}",
                    )
                except BillingError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"{entry.get_kind_display()} of "
                        f"{format_usd(entry.amount_nanos)} "
                        f"recorded for {account.owner.email} (entry {entry.pk}).",
                        messages.SUCCESS,
                    )
                    return redirect("admin:accounts_account_change", account.pk)
        else:
            form = GrantForm(initial={"idempotency_key": uuid.uuid4().hex})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Grant credits to {account.owner.email}",
            "account": account,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/grant.html", context)


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
        _usd("amount_nanos", "amount"),
        _usd("bonus_nanos", "bonus"),
        "status",
        "method",
        "automatic",
        _usd("refunded_nanos", "refunded"),
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
        _usd("threshold_nanos", "threshold"),
        _usd("amount_nanos", "amount"),
        "armed",
        "in_flight",
        "cap",
        "paused_reason",
        "paused_at",
    )
    list_filter = ("enabled", "armed")
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner",)
    readonly_fields = (
        "account",
        "enabled",
        _usd("threshold_nanos", "threshold", 9),
        _usd("amount_nanos", "amount", 9),
        "payment_method_id",
        "armed",
        "in_flight",
        "paused_reason",
        "paused_at",
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
        _usd("amount_nanos", "amount"),
        "actor",
        "reason",
    )
    search_fields = ("stripe_refund_id", "topup__account__owner__email")
    list_select_related = ("topup", "actor")


@admin.register(TopUpDispute)
class TopUpDisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_dispute_id",
        "created_at",
        "topup",
        _usd("amount_nanos", "amount"),
        "status",
        "closed_at",
    )
    list_filter = ("status",)
    search_fields = ("stripe_dispute_id", "topup__account__owner__email")
    list_select_related = ("topup",)
