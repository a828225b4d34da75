"""Operators' view of the ledger: read-only journal, lots and holds, and a form
on each account to grant gifts, compensations, referrals and adjustments.

``ReadOnlyAdmin`` and ``usd_column`` serve the admin of every app above too."""

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
from billing.ledger.grants import GRANT_SOURCES, credit_grant
from billing.ledger.models import (
    CreditLot,
    Hold,
    LedgerEntry,
    LotMovement,
    LotSource,
    Pool,
    ReconciliationRun,
    Wallet,
)
from money import MoneyError, format_usd, usd_to_nanos


def usd_column(field: str, label: str, places: int = 2):
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
            usd_column(name, _label(self.model, name), 9)
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
        usd_column("amount_nanos", "amount"),
        usd_column("topup_balance_nanos", "top-up after"),
        usd_column("bonus_balance_nanos", "bonus after"),
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
        usd_column("amount_nanos", "amount"),
        usd_column("remaining_nanos", "remaining"),
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
        usd_column("amount_nanos", "held"),
        usd_column("charged_nanos", "charged"),
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
