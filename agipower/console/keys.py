"""Console pages of API keys under /console/keys (namespace "keys"): the list,
create (the key shown once), edit, enable/disable, delete, and a key's details
with its latest requests (the proxy's logs, all of them a link away in Logs),
which is why they live at the top floor."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.access import account_required
from accounts.models import Account
from agipower.console.logs import LogRow
from apikeys.errors import ApiKeyError
from apikeys.forms import KeyCreateForm, KeyEditForm
from apikeys.models import ApiKey, KeyKind, KeyStatus, LimitReset
from apikeys.selectors import key_for_account, keys_for_account
from apikeys.services import key_create, key_delete, key_update
from money import usd, usd_plain
from proxy.filters import LogFilters
from proxy.selectors import request_logs_page

# A key's page shows its latest requests; all of them are in Logs (by cursor).
KEY_LATEST_LOGS = 10


@dataclass(frozen=True)
class KeyRow:
    key: ApiKey
    used: str
    limit: str | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyRow:
        limit = None
        if key.limit_nanos:
            limit = usd(key.limit_nanos)
            if key.limit_reset != LimitReset.NONE:
                limit += f" {key.get_limit_reset_display().lower()}"
        return cls(key=key, used=usd(key.used_nanos, precise=True), limit=limit)


def _key_or_404(account: Account, key_id: int) -> ApiKey:
    try:
        return key_for_account(account=account, key_id=key_id, kind=None)
    except ApiKey.DoesNotExist:
        raise Http404("No such API key") from None


def _list_page(request, account: Account, *, created=None, status: int = 200):
    payg = keys_for_account(account=account, kind=KeyKind.PAYG)
    management = keys_for_account(account=account, kind=KeyKind.MANAGEMENT)
    context = {
        "nav": "keys",
        "rows": [KeyRow.of(key) for key in payg],
        "management_rows": [KeyRow.of(key) for key in management],
        "management_form": KeyCreateForm(initial={"kind": KeyKind.MANAGEMENT}),
        "created": created,
    }
    return render(request, "console/keys.html", context, status=status)


@account_required
def key_list(request, account: Account):
    return _list_page(request, account)


@never_cache
@account_required
def key_new(request, account: Account):
    """The create form; a successful POST answers with the list and the new
    key in full, this once. It is not stored anywhere (not in the session
    either), so reloading cannot show it again."""
    if request.method == "POST":
        form = KeyCreateForm(request.POST)
        if form.is_valid():
            try:
                created = key_create(
                    account=account,
                    name=form.cleaned_data["name"],
                    kind=form.cleaned_data["kind"],
                )
            except ApiKeyError as exc:
                form.add_error(None, str(exc))
            else:
                return _list_page(request, account, created=created, status=201)
    else:
        kind = request.GET.get("kind")
        form = KeyCreateForm(
            initial={"kind": kind if kind in KeyKind.values else KeyKind.PAYG}
        )
    kind = form["kind"].value()
    context = {
        "nav": "keys",
        "form": form,
        "is_management": kind == KeyKind.MANAGEMENT,
    }
    return render(request, "console/keys_new.html", context)


@account_required
def key_edit(request, account: Account, key_id: int):
    api_key = _key_or_404(account, key_id)
    initial = {
        "name": api_key.name,
        "limit": usd_plain(api_key.limit_nanos) if api_key.limit_nanos else "",
        "limit_reset": api_key.limit_reset,
    }
    if request.method == "POST":
        form = KeyEditForm(request.POST, initial=initial, kind=api_key.kind)
        if form.is_valid():
            changes = {"name": form.cleaned_data["name"]}
            if "limit" in form.cleaned_data:
                changes["limit_nanos"] = form.cleaned_data["limit"]
                changes["limit_reset"] = form.cleaned_data["limit_reset"]
            try:
                key_update(api_key=api_key, actor=request.user, **changes)
            except ApiKey.DoesNotExist:
                raise Http404("No such API key") from None
            except ApiKeyError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved “{changes['name']}”.")
                return redirect("keys:list")
    else:
        form = KeyEditForm(initial=initial, kind=api_key.kind)
    return render(
        request,
        "console/keys_edit.html",
        {"nav": "keys", "form": form, "api_key": api_key},
    )


@require_POST
@account_required
def key_status(request, account: Account, key_id: int):
    """The Enabled/Disabled toggle: a small POST form per row."""
    api_key = _key_or_404(account, key_id)
    new_status = request.POST.get("status")
    if new_status not in KeyStatus.values:
        messages.error(request, "Choose enabled or disabled.")
        return redirect("keys:list")
    try:
        key_update(api_key=api_key, status=new_status, actor=request.user)
    except ApiKey.DoesNotExist:
        raise Http404("No such API key") from None
    except ApiKeyError:
        # Disabled by support: only support may enable it again.
        messages.error(
            request,
            f"“{api_key.name}” was disabled by support "
            f"({api_key.disabled_reason or 'no reason given'}) and stays disabled. "
            "Contact support to enable it.",
        )
    else:
        label = "enabled" if new_status == KeyStatus.ENABLED else "disabled"
        messages.success(request, f"“{api_key.name}” is {label}.")
    if request.POST.get("next") == "detail":
        return redirect("keys:detail", api_key.pk)
    return redirect("keys:list")


@account_required
def key_delete_view(request, account: Account, key_id: int):
    """GET asks for confirmation; POST deletes."""
    api_key = _key_or_404(account, key_id)
    if request.method == "POST":
        key_delete(api_key=api_key, actor=request.user)
        messages.success(
            request, f"Deleted “{api_key.name}”. It no longer works anywhere."
        )
        return redirect("keys:list")
    return render(
        request,
        "console/keys_confirm_delete.html",
        {"nav": "keys", "api_key": api_key},
    )


@account_required
def key_detail(request, account: Account, key_id: int):
    api_key = _key_or_404(account, key_id)
    rows, more = None, False
    if api_key.kind == KeyKind.PAYG:
        page = request_logs_page(
            account=account,
            filters=LogFilters(key_ids=(api_key.pk,)),
            limit=KEY_LATEST_LOGS,
        )
        rows = [LogRow.of(log) for log in page.rows]
        more = page.next_cursor is not None
    context = {
        "nav": "keys",
        "api_key": api_key,
        "row": KeyRow.of(api_key),
        "rows": rows,
        "more": more,
        "logs_url": f"{reverse('console:logs')}?key={api_key.pk}",
    }
    return render(request, "console/keys_detail.html", context)
