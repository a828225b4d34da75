"""Reads for the Alerts page and API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from accounts.models import Account
from alerts.models import Alert, AlertSettings
from apikeys.models import KeyKind


def alert_settings_get(*, account: Account) -> AlertSettings:
    """The account's settings: its row, or (never saved) the defaults, unsaved."""
    return AlertSettings.objects.filter(account=account).first() or AlertSettings(
        account=account
    )


def alerts_recent(*, account: Account, limit: int = 10) -> list[Alert]:
    return list(
        Alert.objects.filter(account=account)
        .select_related("api_key")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class LimitedKey:
    id: int
    name: str
    prefix: str
    limit_nanos: int
    limit_reset: str
    used_nanos: int

    @property
    def percent(self) -> int:
        return self.used_nanos * 100 // self.limit_nanos


# The use of key ``k`` in its period of %(now)s, as the proxy counts it against
# the limit (proxy_hold_many in proxy/sql/proxy_v1.sql): nothing yet if its
# recorded period began before the current one.
KEY_PERIOD_USED = """
CASE WHEN apikey_period_start(k.limit_reset, %(now)s) > k.period_start
     THEN 0 ELSE k.period_used_nanos END"""

LIMITED_KEYS = """
SELECT k.id, k.name, k.prefix, k.limit_nanos, k.limit_reset, {key_period_used}
  FROM apikeys_apikey k
 WHERE k.account_id = %(account)s AND k.kind = %(payg)s AND k.deleted_at IS NULL
   AND k.limit_nanos IS NOT NULL
 ORDER BY k.created_at DESC, k.id DESC
""".replace("{key_period_used}", KEY_PERIOD_USED)


def limited_keys(*, account: Account, now: datetime | None = None) -> list[LimitedKey]:
    """The account's keys with a credit limit, and their use this period."""
    with connection.cursor() as cursor:
        cursor.execute(
            LIMITED_KEYS,
            {"now": now or timezone.now(), "account": account.pk, "payg": KeyKind.PAYG},
        )
        return [LimitedKey(*row) for row in cursor.fetchall()]
