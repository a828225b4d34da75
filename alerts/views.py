"""The console's Alerts page (/console/alerts): the settings form, the keys it
watches, and the alerts sent lately."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts.access import account_required
from accounts.models import Account
from alerts.errors import AlertSettingsInvalid
from alerts.forms import AlertSettingsForm
from alerts.models import AlertKind
from alerts.selectors import alert_settings_get, alerts_recent, limited_keys
from alerts.services import alert_settings_save
from apikeys.models import LimitReset
from billing.ledger.selectors import balance_get
from money import format_usd, usd, usd_plain

FIELDS = {"threshold": "low_balance_threshold", "percent": "key_usage_percent"}


def _alert_text(alert) -> str:
    if alert.kind == AlertKind.LOW_BALANCE:
        return (
            f"Balance {usd(alert.balance_nanos, precise=True)} fell below "
            f"{format_usd(alert.threshold_nanos)}"
        )
    name = alert.api_key.name if alert.api_key else "a key"
    return (
        f"“{name}” used {usd(alert.key_used_nanos, precise=True)} of its "
        f"{format_usd(alert.key_limit_nanos)} limit ({alert.key_percent}% alert)"
    )


@never_cache
@account_required
def alert_settings(request, account: Account):
    row = alert_settings_get(account=account)
    initial = {
        "low_balance_enabled": row.low_balance_enabled,
        "low_balance_threshold": usd_plain(row.low_balance_threshold_nanos),
        "key_usage_enabled": row.key_usage_enabled,
        "key_usage_percent": str(row.key_usage_percent),
    }
    if request.method == "POST":
        form = AlertSettingsForm(request.POST, initial=initial)
        if form.is_valid():
            data = form.cleaned_data
            try:
                row = alert_settings_save(
                    account=account,
                    low_balance_enabled=data["low_balance_enabled"],
                    low_balance_threshold_nanos=data["low_balance_threshold"],
                    key_usage_enabled=data["key_usage_enabled"],
                    key_usage_percent=data["key_usage_percent"],
                )
            except AlertSettingsInvalid as exc:
                form.add_error(FIELDS[exc.field], exc.message)
            else:
                messages.success(request, "Alert settings saved.")
                return redirect("console:alerts")
    else:
        form = AlertSettingsForm(initial=initial)
    balance = balance_get(account=account).total_nanos
    keys = limited_keys(account=account)
    context = {
        "nav": "alerts",
        "form": form,
        "settings": row,
        "balance": usd(balance, precise=True),
        "below_threshold": row.low_balance_enabled
        and balance < row.low_balance_threshold_nanos,
        "threshold": format_usd(row.low_balance_threshold_nanos),
        "keys": [
            {
                "key": key,
                "used": usd(key.used_nanos, precise=True),
                "limit": format_usd(key.limit_nanos),
                "reset": ""
                if key.limit_reset == LimitReset.NONE
                else LimitReset(key.limit_reset).label.lower(),
            }
            for key in keys
        ],
        "alerts": [
            {"alert": alert, "text": _alert_text(alert)}
            for alert in alerts_recent(account=account)
        ],
    }
    return render(request, "console/alerts.html", context)
