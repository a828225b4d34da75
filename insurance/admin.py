"""Operators' insurance: the coverage rules (edited here), the payouts made
(read-only: written only by the daily run and accepted claims) and the claims,
accepted or declined (with a reason the customer sees) by the actions of
their list."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from accounts.validators import plain_text_multiline
from billing.ledger.admin import ReadOnlyAdmin, usd_column
from insurance.errors import InsuranceError
from insurance.models import Claim, ClaimStatus, CoverageRule, Payout
from insurance.services import REASON_MAX_LENGTH, claim_accept, claim_decline


@admin.register(CoverageRule)
class CoverageRuleAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "model_shown",
        "enabled",
        "payout_percent",
        "ttft_ms",
        "latency_ms",
        "truncated_percent",
        "updated_at",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("model",)
    ordering = ("model", "kind")

    @admin.display(description="model", ordering="model")
    def model_shown(self, rule):
        return rule.model or "(every model)"


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "request_created_at",
        "account",
        "request_id",
        "model",
        "kind",
        usd_column("cost_nanos", "cost", 6),
        "payout_percent",
        usd_column("amount_nanos", "payout", 6),
        "entry",
        "claim",
    )
    list_filter = ("kind",)
    list_select_related = ("account__owner", "entry")
    search_fields = ("account__owner__email", "=request_id", "model")
    date_hierarchy = "request_created_at"
    ordering = ("-request_created_at", "-id")


class DeclineForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=REASON_MAX_LENGTH,
        validators=[plain_text_multiline],
        help_text="Shown to the customer.",
    )


@admin.register(Claim)
class ClaimAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "account",
        "request_id",
        "model",
        usd_column("cost_nanos", "cost", 6),
        "status",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    list_select_related = ("account__owner", "decided_by")
    search_fields = ("account__owner__email", "=request_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    actions = ("accept_selected", "decline_selected")
    fields = (
        "account",
        "request_id",
        "request_created_at",
        "model",
        usd_column("cost_nanos", "cost", 9),
        "reason",
        "status",
        "decision_reason",
        "decided_by",
        "decided_at",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm("insurance.change_claim")

    @admin.action(
        description="Accept selected claims (pay their cost)", permissions=["decide"]
    )
    def accept_selected(self, request, queryset):
        accepted = 0
        for claim in queryset.filter(status=ClaimStatus.PENDING).order_by("id"):
            try:
                claim_accept(claim_id=claim.pk, actor=request.user)
            except InsuranceError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                accepted += 1
        self._report_skipped(request, queryset)
        self.message_user(request, f"{accepted} claim(s) accepted.", messages.SUCCESS)

    @admin.action(description="Decline selected claims…", permissions=["decide"])
    def decline_selected(self, request, queryset):
        form = DeclineForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            declined = 0
            for claim in queryset.filter(status=ClaimStatus.PENDING).order_by("id"):
                try:
                    claim_decline(
                        claim_id=claim.pk,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                    )
                except InsuranceError as exc:
                    self.message_user(request, str(exc), messages.WARNING)
                else:
                    declined += 1
            self._report_skipped(request, queryset)
            self.message_user(
                request, f"{declined} claim(s) declined.", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Decline claims",
            "opts": self.model._meta,
            "claims": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return render(request, "admin/insurance/decline.html", context)

    def _report_skipped(self, request, queryset) -> None:
        decided = queryset.exclude(status=ClaimStatus.PENDING).count()
        if decided:
            self.message_user(
                request,
                f"{decided} claim(s) skipped: decided already.",
                messages.WARNING,
            )
