"""Operators' view of API keys: read-only, except actions that disable keys
with a reason and enable them again (each recorded as a key action with the
operator). A key's page lists its history; the digest is never shown."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from accounts.validators import plain_text_multiline
from apikeys.models import ApiKey, KeyAction
from apikeys.services import key_disable_by_operator, key_enable_by_operator
from money import format_usd


class DisableKeysForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        validators=[plain_text_multiline],
        help_text="Recorded on each key with your name, e.g. “leaked in a public "
        "repository”.",
    )


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Not deleted"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


def _limit(limit_nanos: int | None, reset: str) -> str:
    if not limit_nanos:
        return "—"
    every = "" if reset == "none" else f" {reset}"
    return f"{format_usd(limit_nanos, 9)}{every}"


class KeyActionInline(admin.TabularInline):
    """The key's history, newest first: every change of its status, credit
    limit or existence, by whom and why. Read-only, as the table itself is."""

    model = KeyAction
    verbose_name_plural = "history"
    extra = 0
    can_delete = False
    ordering = ("-at", "-id")
    fields = (
        "at",
        "action",
        "actor",
        "reason",
        "status_before",
        "status_after",
        "limit_before",
        "limit_after",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_view_permission(self, request, obj=None):
        # Whoever may see the key sees its history.
        return request.user.has_perm("apikeys.view_apikey")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="limit before")
    def limit_before(self, action: KeyAction) -> str:
        return _limit(action.limit_nanos_before, action.limit_reset_before)

    @admin.display(description="limit after")
    def limit_after(self, action: KeyAction) -> str:
        return _limit(action.limit_nanos_after, action.limit_reset_after)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "account_email",
        "name",
        "prefix",
        "kind",
        "status",
        "created_at",
        "last_used_at",
        "used_usd",
        "deleted_at",
    )
    list_filter = ("status", "kind", DeletedFilter)
    search_fields = ("account__owner__email", "prefix", "name")
    list_select_related = ("account__owner",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    # Explicit, so that the digest never appears: it is what a key is checked
    # against, and has no use to a person.
    fields = (
        "account",
        "kind",
        "name",
        "prefix",
        "status",
        "disabled_reason",
        "disabled_by",
        "created_at",
        "last_used_at",
        "deleted_at",
        "used",
        "limit",
        "limit_reset",
        "period_start",
        "period_used",
        "held",
    )
    readonly_fields = fields
    inlines = [KeyActionInline]
    actions = ["disable_selected", "enable_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_disable_permission(self, request) -> bool:
        return request.user.has_perm("apikeys.change_apikey")

    @admin.display(description="account", ordering="account__owner__email")
    def account_email(self, key: ApiKey) -> str:
        return key.account.owner.email

    @admin.display(description="used (USD)", ordering="used_nanos")
    def used_usd(self, key: ApiKey) -> str:
        return format_usd(key.used_nanos)

    @admin.display(description="used (USD)")
    def used(self, key: ApiKey) -> str:
        return format_usd(key.used_nanos, 9)

    @admin.display(description="credit limit")
    def limit(self, key: ApiKey) -> str:
        return format_usd(key.limit_nanos, 9) if key.limit_nanos else "—"

    @admin.display(description="used this period")
    def period_used(self, key: ApiKey) -> str:
        return format_usd(key.period_used_nanos, 9)

    @admin.display(description="held by requests in flight")
    def held(self, key: ApiKey) -> str:
        return format_usd(key.held_nanos, 9)

    @admin.action(description="Enable selected keys", permissions=["disable"])
    def enable_selected(self, request, queryset):
        """Lift a block an operator placed (customers cannot)."""
        keys = list(queryset.filter(deleted_at=None))
        for key in keys:
            key_enable_by_operator(api_key=key, operator=request.user)
        self.message_user(
            request,
            f"Enabled {len(keys)} key{'s' if len(keys) != 1 else ''}.",
            messages.SUCCESS,
        )

    @admin.action(description="Disable selected keys", permissions=["disable"])
    def disable_selected(self, request, queryset):
        """Asks for a reason on a page of its own, then disables each key
        through the service, which records the operator and the reason."""
        form = DisableKeysForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            keys = list(queryset)
            for key in keys:
                key_disable_by_operator(
                    api_key=key, operator=request.user, reason=reason
                )
            self.message_user(
                request,
                f"Disabled {len(keys)} key{'s' if len(keys) != 1 else ''}.",
                messages.SUCCESS,
            )
            return None  # back to the list
        context = {
            **self.admin_site.each_context(request),
            "title": "Disable API keys",
            "opts": self.model._meta,
            "keys": queryset.select_related("account__owner"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "disable_selected",
        }
        return TemplateResponse(
            request, "admin/apikeys/apikey/disable_keys.html", context
        )
